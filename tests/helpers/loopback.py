"""The suite's fakes of outside services (the push service, Telegram's Bot API) are HTTP
servers on 127.0.0.1, each run in a thread while a `with` block lasts: that part, once. And
a server that never answers, as a hung node."""

import socket
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


class SilentServer:
    """A node that has hung: it accepts connections and reads what it is sent, and never
    answers, so every caller waits for its own timeout (`url` while `with` lasts)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def callers(self) -> int:
        """How many connections it holds: callers left waiting."""
        return len(self._held)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join()
        for held in self._held:
            held.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                accepted, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(accepted)  # never read from, never answered
