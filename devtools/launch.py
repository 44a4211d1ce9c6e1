"""`make run`: the whole system on one machine.

Starts embedded PostgreSQL and Valkey where DATABASE_URL / REDIS_URL are unset, migrates,
loads the demo data, then runs the web server, a Celery worker and Celery beat together.
Ctrl-C stops all of it.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from devtools.embedded import STATE_DIR, embedded_services


def _manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "kibo", *args]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(port: str, processes: list[subprocess.Popen]) -> None:
    """Wait for the web server to answer and a worker to reply to a ping, for up to a minute.

    Returns early when a process has died."""
    deadline = time.monotonic() + 60
    web_up = worker_up = False
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        if not web_up:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                web_up = True
            except OSError:
                pass
        if not worker_up:
            ping = _celery("inspect", "ping", "--timeout", "1")
            worker_up = subprocess.run(ping, capture_output=True).returncode == 0
        if web_up and worker_up:
            return
        time.sleep(0.5)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kibo.settings.local")
    port = os.environ.get("KIBO_PORT", "8000")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C
        signal.signal(signum, lambda *_: sys.exit(0))
    with embedded_services("dev", keep_chain_state=True):
        subprocess.run(_manage("migrate", "--noinput", "-v", "0"), check=True)
        seeded = subprocess.run(
            _manage("seed_demo"), check=True, capture_output=True, text=True
        ).stdout
        processes = [
            subprocess.Popen(_manage("runserver", "--noreload", f"127.0.0.1:{port}")),
            subprocess.Popen(
                _celery("worker", "--concurrency", "2")  # every queue
            ),
            subprocess.Popen(
                _celery(
                    "beat",
                    "--schedule",
                    str(STATE_DIR / "celerybeat-schedule"),
                )
            ),
        ]
        try:
            _wait_until_ready(port, processes)
            if all(process.poll() is None for process in processes):
                rpc = os.environ["KIBO_RPC_URL_LOCAL"]
                print(
                    f"\n{seeded.strip()}\n\n"
                    f"To pay as a user, add the local chain to a browser wallet (network RPC "
                    f"{rpc}, chain id 31337, currency ETH), import the demo wallet's key above, "
                    "and sign in. To work the order board as an ally, do the same in a second "
                    "browser window with the Bolivian ally's key.\n"
                    f"Kibo is running at http://127.0.0.1:{port}/ (staff: "
                    f"http://127.0.0.1:{port}/admin/). Ctrl-C stops everything.\n",
                    flush=True,
                )
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            print("A Kibo process stopped; stopping the others.", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, SystemExit):
            return 0
        finally:
            _stop(processes)


if __name__ == "__main__":
    sys.exit(main())
