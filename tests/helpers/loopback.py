"""The suite's fakes of outside services (the push service, Telegram's Bot API) are HTTP
servers on 127.0.0.1, each run in a thread while a `with` block lasts: that part, once."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True  # a request still waiting (a long poll) must not hold up the end
    # A sender's burst of new connections (a worker's pool opens 16 at once) waits to be
    # accepted, as at a real service; socketserver's 5 would reset some of them.
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any):
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake  # what the handler answers for


class Loopback:
    """A fake service whose server runs while `with` lasts; `origin` is where it listens."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str):
        self._server = LoopbackServer(handler, self)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # so a test's stop is quick
