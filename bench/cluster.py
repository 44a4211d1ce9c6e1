"""`make cluster`: Kibo as production runs it on several machines, on this one, under load,
losing a worker, the beat leader and a web server while money moves.

It starts its own services (devtools.embedded, fresh under .kibo/cluster-*): PostgreSQL and
a streaming replica of it (KIBO_EMBEDDED_REPLICA), PgBouncer in transaction mode, RabbitMQ,
Valkey and anvil. It migrates (directly, as
`migrate` does in production), makes CLUSTER_ALLIES Bolivian allies as staff approve them
and CLUSTER_PAYERS payers holding test USDT, and shortens the order timers (TIMERS). Then
what Deploy describes, each process in a process group of its own as on a machine of its
own: two gunicorns behind nginx (Debian's, the one proxy), three workers with their own
hostnames and queues (only `worker-chain` holds the escrow key), and two beats, one leading.

locust (bench/locustfile.py) runs the allies and payers through nginx for CLUSTER_SECONDS
after a ramp: allies poll the board, take orders, pay them and upload receipts (a tenth of
them stall, so timers run out); payers pay QRs on chain, one after another. At a quarter of
the run the signing worker is killed with SIGKILL, at half the beat leader, at three
quarters a web server; each is started again CLUSTER_RESTART_SECONDS later, as a supervisor
(systemd, compose) would. When the load stops, the system finishes what is in flight (for
at most CLUSTER_DRAIN_SECONDS). Then it checks every payout and refund against the chain
(bench/exactly_once.py), runs `escrow_reconcile`, and prints the figures. It exits non-zero
when a payment was not made exactly once, escrow does not reconcile, the drain did not end,
a kill did not happen within the run, or no standby took the lead.

    CLUSTER_SECONDS          the load after its ramp (240)            --seconds
    CLUSTER_ALLIES           allies (300)                             --allies
    CLUSTER_PAYERS           payers (40)                              --payers
    CLUSTER_WEB_WORKERS      gunicorn's workers per web server (2)    --web-workers
    CLUSTER_RESTART_SECONDS  a killed process is back after (10)      --restart-seconds
    CLUSTER_DRAIN_SECONDS    the drain, at most (300)                 --drain-seconds
    CLUSTER_SEED             the wallets' seed (1)                    --seed
    CLUSTER_NAME             its directories under .kibo/ (cluster)
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import psycopg

from bench.load import (
    ally_sessions,
    cores_used,
    cpu_seconds,
    load_plan,
    locust_start,
    payers_funded,
    percentiles,
    print_figures,
    read_stats,
    server_ms,
)
from bench.pages import gunicorn_command
from devtools.embedded import STATE_DIR, embedded_services, free_port
from kibo.beat import LOCK_KEY
from kibo.env import BASE_DIR

# Its services live under .kibo/<name>-*, its processes' logs in .kibo/<name>.
NAME = os.environ.get("CLUSTER_NAME", "cluster")
# The order timers for the run (SYSTEM_CONFIG, minutes): short, so that orders nobody takes
# or pays run out, and their refunds go out, within the run and its drain.
TIMERS = {
    "PENDING_PAYMENT_TIMEOUT_MINUTES": "1",
    "AVAILABLE_TIMEOUT_MINUTES": "1",
    "TAKEN_TIMEOUT_MINUTES": "1",
    # payouts wait a little for the payer's word, then beat's transfer sweep lets them go
    "RELEASE_HOLD_MINUTES": "0.25",
    "RELEASE_HOLD_MINUTES_NEW_ALLY": "0.25",
}
# What the allies do (bench/locustfile.py): at one poll in twenty, an ally whose board shows
# orders takes one (of 300 allies, three a second try); it pays it in 5-20 s. One ally in ten
# takes orders and never pays them.
WORK = {"take_chance": 0.05, "pay_seconds": [5, 20], "stall_share": 0.1}
# What every Kibo process of the run is given. Every simulated phone comes from 127.0.0.1,
# so the limits per client address (KIBO_RATE_*) are lifted: they would refuse the crowd.
RUN_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "kibo.settings.local",
    "DJANGO_DEBUG": "false",
    "KIBO_DB_PGBOUNCER": "true",
    "KIBO_EMBEDDED_RABBITMQ": "true",
    "KIBO_EMBEDDED_REPLICA": "true",
    "KIBO_TRUSTED_PROXY_HOPS": "1",  # nginx
    "KIBO_LOG_LEVEL": "WARNING",
    "KIBO_RATE_DEPOSIT_REPORTS_PER_MINUTE": "10000",
    "KIBO_RATE_UPLOADS_PER_MINUTE": "10000",
}
# The cluster starts its own of each; none of the shell's is used.
OWN_SERVICES = (
    "DATABASE_URL",
    "DATABASE_REPLICA_URL",
    "REDIS_URL",
    "KIBO_BROKER_URL",
    "KIBO_RPC_URL_LOCAL",
    "KIBO_BEAT_LOCK_DATABASE_URL",
)
# Keys only the process that uses one is given: the signer, the notifier.
KEYS = ("KIBO_ESCROW_PRIVATE_KEY", "KIBO_VAPID_PRIVATE_KEY")
LEADS = "beat leads"  # what kibo.beat logs when a beat takes the scheduler lock
# Which part of the system a process is, by its command line (the first marker found).
PARTS = {
    "gunicorn": "web",
    "kibo worker": "workers",
    "kibo beat": "beats",
    "pgbouncer": "PgBouncer",
    "postgres": "PostgreSQL",
    "rabbit": "RabbitMQ",
    "epmd": "RabbitMQ",
    "valkey": "cache",
    "anvil": "chain",
    "nginx": "proxy",
}
LOG_FORMAT = '$msec $status $request_time $request_method $uri "$upstream_addr"'
SETTLE_SECONDS = 10  # the first seconds after a kill, shown on their own
MID_TRANSFER_SECONDS = 5  # the signing worker is killed once a transfer is in flight


def _options(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster", description=__doc__.split("\n\n")[0]
    )
    for flag, name, default, meaning in (
        ("--seconds", "CLUSTER_SECONDS", 240, "the load after its ramp"),
        ("--allies", "CLUSTER_ALLIES", 300, "allies polling, taking and paying orders"),
        ("--payers", "CLUSTER_PAYERS", 40, "payers paying QRs one after another"),
        ("--web-workers", "CLUSTER_WEB_WORKERS", 2, "gunicorn's workers per web server"),
        ("--restart-seconds", "CLUSTER_RESTART_SECONDS", 10, "a killed process is back after"),
        ("--drain-seconds", "CLUSTER_DRAIN_SECONDS", 300, "the drain after the load, at most"),
        ("--seed", "CLUSTER_SEED", 1, "the wallets' seed"),
    ):
        parser.add_argument(flag, type=int, default=int(env(name, default)), help=meaning)
    return parser.parse_args(argv)


# --- the processes ----------------------------------------------------------------------


@dataclass
class Service:
    """One process of the cluster, as if on a machine of its own: a process group of its
    own (a SIGKILL takes it and every child, as losing the machine would), its output in
    its log."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    log_from: int = 0  # where this start's lines begin in the log

    def start(self) -> None:
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                cwd=BASE_DIR,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def said(self, text: str) -> bool:
        """Whether it has logged `text` since it last started."""
        with self.log.open("rb") as log:
            log.seek(self.log_from)
            return text.encode() in log.read()

    def tail(self) -> str:
        return self.log.read_bytes()[-2000:].decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL to it and every process it started: no cleanup, no goodbye."""
        self._signal_group(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM to its main process, as a supervisor stops it; then nothing of it stays."""
        if self.process is None:
            return
        if self.alive():
            self.process.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):  # nothing of it is left
            os.killpg(self.process.pid, signum)


def _env(**keys: str) -> dict[str, str]:
    """A Kibo process's environment: the run's settings, and only the keys named."""
    return {**{k: v for k, v in os.environ.items() if k not in KEYS}, **keys}


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "kibo", *args]


def _nginx(home: Path, port: int, web_ports: list[int]) -> list[str]:
    """nginx in the foreground, as deploy/nginx/kibo.conf proxies (less TLS), in front of
    both web servers. A request a web server cannot take (its port refuses, or it does not
    answer in time) goes to the other, unless it was already sent and is not idempotent (a
    POST): that one fails, as it would in production. Bodies and answers stay in memory,
    so the workers (nobody, when we are root) write no temporary file."""
    home.mkdir()
    upstreams = "\n".join(
        f"        server 127.0.0.1:{web} max_fails=1 fail_timeout=10s;" for web in web_ports
    )
    (home / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format timed '{LOG_FORMAT}';
    access_log {home}/access.log timed;
    client_max_body_size 8m;
    client_body_buffer_size 8m;
    proxy_max_temp_file_size 0;
    upstream kibo_web {{
        least_conn;
{upstreams}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://kibo_web;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
    )
    return [
        "/usr/sbin/nginx",
        "-p",
        str(home),
        "-c",
        str(home / "nginx.conf"),
        "-e",
        str(home / "error.log"),
    ]


@dataclass
class Cluster:
    run: Path
    proxy_port: int
    proxy: Service
    webs: list[Service]
    workers: dict[str, Service]  # by the queues' kind: chain, sweeps, notices
    beats: list[Service]

    @property
    def services(self) -> list[Service]:
        return [self.proxy, *self.webs, *self.beats, *self.workers.values()]

    @property
    def access_log(self) -> Path:
        return self.run / "nginx" / "access.log"

    @property
    def web_access_logs(self) -> list[Path]:
        return [Path(web.command[web.command.index("--access-logfile") + 1]) for web in self.webs]

    def stop(self) -> None:
        """The proxy first, so no request comes in; the workers last, to finish theirs."""
        for service in self.services:
            service.stop()


def _cluster(run: Path, *, web_workers: int) -> Cluster:

    web_ports = [free_port(), free_port()]
    proxy_port = free_port()
    assert len({*web_ports, proxy_port}) == 3, "three ports, each free"
    return Cluster(
        run=run,
        proxy_port=proxy_port,
        proxy=Service(
            "proxy",
            _nginx(run / "nginx", proxy_port, web_ports),
            {"PATH": os.environ["PATH"]},
            run / "proxy.log",
        ),
        webs=[
            Service(
                f"web-{n}",
                gunicorn_command(  # as Deploy runs it, its access log timing the work
                    port,
                    access_log=run / f"web-{n}-access.log",
                    workers=web_workers,
                    config="deploy/gunicorn.conf.py",
                ),
                _env(),
                run / f"web-{n}.log",
            )
            for n, port in enumerate(web_ports, 1)
        ],
        workers={
            kind: Service(
                f"worker-{kind}",
                _celery("worker", "--hostname", f"{kind}@%h", "--queues", queues),
                _env(**keys),
                run / f"worker-{kind}.log",
            )
            for kind, queues, keys in (
                ("chain", "chain,returns", _key("KIBO_ESCROW_PRIVATE_KEY")),
                ("sweeps", "sweeps,celery", {}),
                ("notices", "notices", _key("KIBO_VAPID_PRIVATE_KEY")),
            )
        },
        beats=[
            Service(
                f"beat-{n}",
                _celery("beat", "--schedule", str(run / f"beat-{n}.schedule")),
                _env(),
                run / f"beat-{n}.log",
            )
            for n in (1, 2)
        ],
    )


def _key(name: str) -> dict[str, str]:
    return {name: os.environ[name]}


def _wait(what: str, ready, service: Service | None = None, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline or (service is not None and not service.alive()):
            tail = service.tail() if service else ""
            raise RuntimeError(f"{what} did not start:\n{tail}")
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(cluster: Cluster) -> None:
    """Start everything, and wait until each web server and the proxy answer, each worker
    replies to a ping and one beat leads."""
    from kibo.celery import app

    for service in cluster.services:
        service.start()
    for web in cluster.webs:
        port = web.command[web.command.index("--bind") + 1].rsplit(":", 1)[1]
        _wait(web.name, lambda port=port: _answers(f"http://127.0.0.1:{port}/livez/"), web)
    proxy = f"http://127.0.0.1:{cluster.proxy_port}/livez/"
    _wait("nginx", lambda: _answers(proxy), cluster.proxy)
    names = {f"{kind}@{socket.gethostname()}" for kind in cluster.workers}  # --hostname

    def all_reply() -> bool:
        replies = app.control.ping(destination=list(names), timeout=1) or []
        return names <= {name for reply in replies for name in reply}

    _wait("the workers", all_reply)
    _wait("a leading beat", lambda: any(beat.said(LEADS) for beat in cluster.beats))


# --- the run's data -----------------------------------------------------------------------


def _migrate() -> None:
    """`migrate` reaches PostgreSQL itself, never through PgBouncer (README: Deploy)."""
    direct = {"DATABASE_URL": os.environ["KIBO_EMBEDDED_POSTGRES_URL"], "KIBO_DB_PGBOUNCER": ""}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env={**os.environ, **direct},
        check=True,
    )


def _seed(*, allies: int, payers: int, seed: int) -> dict:
    """The run's timers and prices, its allies (approved by staff, as the admin does) and
    payers; returns the plan locust's users follow."""
    from allies.services import ally_application_decide, ally_apply
    from allies.views import BOARD_POLL_SECONDS
    from bench.dataset import wallet
    from devtools.management.commands.seed_demo import DEMO_RATES
    from kibo.models import Country, User
    from kibo.services import config_set
    from quotes.models import LocalRate
    from quotes.services import quotes_refresh

    for key, value in {**TIMERS, "QUOTE_SOURCES": "local"}.items():
        config_set(key=key, value=value)
    for (token, fiat), rate in DEMO_RATES.items():  # beat refreshes the quotes from these
        LocalRate.objects.create(token=token, fiat=fiat, rate=Decimal(rate))
    quotes_refresh(force=True)
    staff = User.objects.create_superuser(wallet(seed, "cluster-staff", 0), username="cluster")
    for n in range(allies):
        user = User.objects.create_user(wallet(seed, "cluster-ally", n), country=Country.BOLIVIA)
        application = ally_apply(
            user=user, country=Country.BOLIVIA, display_name=f"Aliado {n}", bank="Banco"
        )
        ally_application_decide(application_id=application.pk, staff=staff, approve=True)
    plan = load_plan(
        allies=ally_sessions(allies),
        payers=payers_funded(payers, seed=seed),
        poll_seconds=BOARD_POLL_SECONDS,
    )
    return {**plan, "repeat": True, "work": WORK}


# --- the load, and the kills ------------------------------------------------------------


@dataclass
class Kill:
    what: str
    at: float  # wall clock
    then: str  # what happened next
    service: Service
    leaderless_seconds: float | None = None
    back: float | None = None  # wall clock: started again


@dataclass
class Run:
    """What happened while the load ran, for the report."""

    started: float  # wall clock: locust started
    ramp: int
    seconds: int
    ended: float = 0.0  # wall clock: locust stopped
    kills: list[Kill] = field(default_factory=list)
    cores: dict[str, float] = field(default_factory=dict)
    replica_lag: list[tuple[float, int]] = field(default_factory=list)  # seconds, bytes
    replica_reads: int = 0  # transactions the replica served during the load
    locust_prefix: str = ""


def _in_flight() -> dict[str, int]:
    """Transfers between their record and their confirmation, by status."""
    from django.db.models import Count

    from escrow.models import Transfer

    unfinished = Transfer.objects.filter(status__in=Transfer.UNFINISHED)
    return dict(unfinished.values_list("status").annotate(n=Count("id")).order_by())


def _kill_worker(cluster: Cluster) -> Kill:
    """The signing worker, the one whose loss could pay twice or not at all, once a transfer
    is on its way (waiting up to MID_TRANSFER_SECONDS for one). The task it had goes back to
    RabbitMQ (acks late); what it signed was stored before it was sent; beat's transfer
    sweep picks up the rest. It is the only copy of its kind (one signer, one nonce
    sequence), so a supervisor starting it again is what production relies on."""
    worker = cluster.workers["chain"]
    deadline = time.monotonic() + MID_TRANSFER_SECONDS
    while not (in_flight := _in_flight()) and time.monotonic() < deadline:
        time.sleep(0.02)
    at = time.time()
    worker.kill()
    then = ", ".join(f"{n} {status.lower()}" for status, n in in_flight.items())
    return Kill(worker.name, at, f"transfers in flight: {then or 'none'}", worker)


def _lock_holder(connection: psycopg.Connection) -> int | None:
    """The PostgreSQL backend holding beat's leader lock, if one does."""

    row = connection.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid::bigint = %s AND objid::bigint = %s",
        LOCK_KEY,
    ).fetchone()
    return row[0] if row else None


def _kill_beat_leader(cluster: Cluster) -> Kill:
    """The leading beat. The scheduler is without a leader until the standby holds the lock
    (pg_locks); its log saying so is watched too."""
    leader = next(beat for beat in cluster.beats if beat.alive() and beat.said(LEADS))
    standby = next(beat for beat in cluster.beats if beat is not leader)
    direct = os.environ["KIBO_EMBEDDED_POSTGRES_URL"]
    with psycopg.connect(direct, autocommit=True) as connection:
        held_by = _lock_holder(connection)
        at, killed = time.time(), time.monotonic()
        leader.kill()
        locked = logged = None  # seconds after the kill
        while (locked is None or logged is None) and time.monotonic() - killed < 60:
            if locked is None and _lock_holder(connection) not in (None, held_by):
                locked = time.monotonic() - killed
            if logged is None and standby.said(LEADS):
                logged = time.monotonic() - killed
            time.sleep(0.02)
    if locked is None or logged is None:
        return Kill(leader.name, at, "no beat led for a minute", leader)
    then = f"{standby.name} held the lock {locked:.2f} s later, logged it at {logged:.2f} s"
    return Kill(leader.name, at, then, leader, locked)


def _kill_web(cluster: Cluster) -> Kill:
    web = cluster.webs[0]
    at = time.time()
    web.kill()
    return Kill(web.name, at, f"nginx sends every request to {cluster.webs[1].name}", web)


KILLS = ((1, _kill_worker), (2, _kill_beat_leader), (3, _kill_web))  # in quarters of the run


def _replica_lag() -> tuple[float, int] | None:
    """How far the replica is behind the primary (seconds of replay, bytes of WAL), while
    this checkout starts one."""
    if not os.environ.get("DATABASE_REPLICA_URL"):
        return None
    with psycopg.connect(os.environ["KIBO_EMBEDDED_POSTGRES_URL"], autocommit=True) as primary:
        row = primary.execute(
            "SELECT coalesce(extract(epoch FROM max(replay_lag)), 0),"
            " coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)"
            " FROM pg_stat_replication"
        ).fetchone()
    return (float(row[0]), int(row[1])) if row else None


def _cpu_seconds(locust) -> dict:
    """CPU seconds so far of each process of the run (bench.load.cpu_seconds), and of the
    whole machine under a pid of its own (-1), busy with anything: what the run's parts did
    not use of it, something else on the machine did."""

    every = psutil.cpu_times()
    busy = sum(every) - every.idle - getattr(every, "iowait", 0.0)
    return {**cpu_seconds(locust, PARTS), -1: ("the machine, busy", busy)}


def _replica_transactions() -> int:
    """The transactions the replica has served (reads: it takes no writes)."""
    with psycopg.connect(os.environ["DATABASE_REPLICA_URL"], autocommit=True) as replica:
        row = replica.execute("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")
        return int(row.fetchone()[0])


def _restart(kill: Kill) -> None:
    """What the supervisor does for a killed process."""
    kill.service.start()
    kill.back = time.time()


def _load(cluster: Cluster, plan: dict, *, seconds: int, restart_seconds: int) -> Run:
    """locust through nginx for `seconds` after its ramp, the kills at their quarters, each
    killed process started again `restart_seconds` later; the CPU each part used over the
    measured part, the replica's lag every few seconds."""

    work = cluster.run / "locust"
    work.mkdir()
    base = f"http://127.0.0.1:{cluster.proxy_port}"
    plan = {**plan, "measured_from": time.time(), "pay_within": 10}  # payers come at once
    with ExitStack() as stack:
        stderr = stack.enter_context(open(work / "stderr", "w+"))
        locust, ramp = locust_start(
            base, plan, seconds=seconds, work=work, stderr=stderr, reset_stats=False
        )
        stack.callback(lambda: locust.poll() is None and locust.kill())
        run = Run(started=time.time(), ramp=ramp, seconds=seconds, locust_prefix=str(work / "load"))
        replica_before = _replica_transactions() if os.environ.get("DATABASE_REPLICA_URL") else 0
        began = time.monotonic()
        kills = [(ramp + seconds * quarter / 4, kill) for quarter, kill in KILLS]
        restarts: list[tuple[float, Kill]] = []
        samples: list[tuple[float, dict]] = []
        lag_checked = 0.0
        while locust.poll() is None:
            elapsed = time.monotonic() - began
            if elapsed > ramp + seconds + 60:
                raise RuntimeError("locust did not stop by itself")
            if kills and elapsed >= kills[0][0]:
                run.kills.append(kills.pop(0)[1](cluster))
                restarts.append((time.monotonic() - began + restart_seconds, run.kills[-1]))
            if restarts and elapsed >= restarts[0][0]:
                _restart(restarts.pop(0)[1])
            if len(samples) < 2 and elapsed >= (ramp, ramp + seconds - 1)[len(samples)]:
                samples.append((time.monotonic(), _cpu_seconds(locust)))
            if elapsed - lag_checked >= 3 and (lag := _replica_lag()) is not None:
                run.replica_lag.append(lag)
                lag_checked = elapsed
            time.sleep(0.2)
        for _, kill in restarts:  # the run ended before their supervisor's turn
            _restart(kill)
        run.ended = time.time()
        if os.environ.get("DATABASE_REPLICA_URL"):
            run.replica_reads = _replica_transactions() - replica_before
        if not Path(f"{run.locust_prefix}_stats.csv").exists():
            stderr.seek(0)
            raise RuntimeError(f"locust did not run:\n{stderr.read()[-3000:]}")
    if len(samples) == 2:
        (start, before), (end, after) = samples
        run.cores = cores_used(before, after, end - start)
    return run


def _drain(seconds: int) -> float | None:
    """Wait until no order is open and no transfer is on its way (failed ones are the
    ledger's to report); the seconds it took, or None if it did not within `seconds`."""
    from escrow.models import Transfer
    from orders.models import OPEN_STATUSES, Order

    began = time.monotonic()
    told = began
    moving = Transfer.objects.filter(status__in=[*Transfer.UNFINISHED, Transfer.Status.HELD])
    while True:
        open_orders, transfers = (
            Order.objects.filter(status__in=OPEN_STATUSES).count(),
            moving.count(),
        )
        if not open_orders and not transfers:
            return time.monotonic() - began
        if time.monotonic() - began > seconds:
            return None
        if time.monotonic() - told >= 30:
            print(f"  draining: {open_orders} order(s) open, {transfers} transfer(s) on their way")
            told = time.monotonic()
        time.sleep(2)


def _reconcile() -> tuple[bool, str]:
    """`escrow_reconcile`, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "escrow_reconcile"],
        cwd=BASE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


# --- the report ---------------------------------------------------------------------------


@dataclass
class Window:
    label: str
    start: float  # wall clock
    end: float


def _windows(run: Run) -> list[Window]:
    """The measured part cut at each kill; then, on their own, the first seconds after each
    kill and after the killed process was started again (it warms up on the same cores)."""
    edges = [run.started + run.ramp, *(kill.at for kill in run.kills), run.ended]
    labels = ["before the kills", *(f"after {kill.what} was killed" for kill in run.kills)]
    windows = [
        Window(label, start, end)
        for label, start, end in zip(labels, edges[:-1], edges[1:], strict=True)
    ]
    for kill in run.kills:
        for moment, at in (("killed", kill.at), ("back", kill.back)):
            if at is not None:
                label = f"  first {SETTLE_SECONDS} s, {kill.what} {moment}"
                windows.append(Window(label, at, at + SETTLE_SECONDS))
    return windows


def _proxy_table(access_log: Path, run: Run) -> None:
    """Each window's requests as nginx saw them: answered (not 5xx, and the client did not
    give up: 499), their time in nginx, and how many a second web server had to take."""

    requests = []
    for line in access_log.read_text().splitlines():
        stamp, status, seconds, _method, _uri, upstreams = line.split(" ", 5)
        requests.append((float(stamp), int(status), float(seconds) * 1000, "," in upstreams))
    print(
        f"{'requests through nginx':<48} {'count':>7} {'answered':>9} {'p50':>6} {'p95':>6} "
        f"{'p99':>6} {'retried':>8}"
    )
    for window in _windows(run):
        inside = [r for r in requests if window.start <= r[0] < window.end]
        p50, p95, p99, count = percentiles(sorted(r[2] for r in inside))
        answered = sum(1 for r in inside if r[1] < 500 and r[1] != 499) / max(1, count)
        start, end = window.start - run.started, window.end - run.started
        label = f"{window.label} ({start:.0f}-{end:.0f} s)"
        print(
            f"{label:<48} {count:>7,} {answered:>8.2%} {p50:>6.0f} {p95:>6.0f} "
            f"{p99:>6.0f} {sum(r[3] for r in inside):>8,}"
        )


def _in_server_line(cluster: Cluster) -> None:
    """The same requests inside the web servers, from reading one to its answer written (the
    whole run): what the proxy adds is the wait for a free gunicorn worker."""

    for label, path in (("every request", None), ("the board polls", "/ally/board/")):
        times = sorted(t for log in cluster.web_access_logs for t in server_ms(log, path=path))
        p50, p95, p99, count = percentiles(times)
        print(
            f"{'  inside the web servers, ' + label:<48} {count:>7,} {'':>9} {p50:>6.0f} "
            f"{p95:>6.0f} {p99:>6.0f}"
        )


def _orders_line(drained: float | None) -> str:
    from django.db.models import Count, Q

    from orders.models import OPEN_STATUSES, Order, OrderStatus

    counts = Order.objects.aggregate(
        created=Count("id"),
        paid=Count("id", filter=Q(paid_at__isnull=False)),
        taken=Count("id", filter=Q(taken_at__isnull=False)),
        completed=Count("id", filter=Q(status=OrderStatus.COMPLETED)),
        refunded=Count("id", filter=Q(status=OrderStatus.REFUNDED)),
        expired_unpaid=Count("id", filter=Q(status=OrderStatus.EXPIRED, paid_at__isnull=True)),
        still_open=Count("id", filter=Q(status__in=OPEN_STATUSES)),
    )
    figures = ", ".join(f"{name.replace('_', ' ')} {n:,}" for name, n in counts.items())
    ended = f"drained in {drained:.0f} s" if drained is not None else "NOT DRAINED"
    return f"Orders: {figures} ({ended})"


def _ledger_lines(ledger) -> list[str]:
    from escrow.models import Transfer

    lines = [f"{'money out of escrow':<20} {'records':>8} {'confirmed':>10} {'once on chain':>14}"]
    for purpose, label in (
        (Transfer.Purpose.RELEASE, "payouts"),
        (Transfer.Purpose.REFUND, "refunds"),
        (Transfer.Purpose.RETURN, "returns"),
    ):
        statuses = ledger.records.get(purpose, {})
        lines.append(
            f"{label:<20} {sum(statuses.values()):>8,} "
            f"{statuses.get(Transfer.Status.CONFIRMED, 0):>10,} "
            f"{ledger.once_on_chain[purpose]:>14,}"
        )
    lines.append(
        f"token transfers out of escrow on chain: {ledger.sent_on_chain:,}; "
        + ("each a record's, each record once" if ledger.exactly_once else "PROBLEMS:")
    )
    lines += [f"  {problem}" for problem in ledger.problems[:20]]
    return lines


def _replica_line(run: Run) -> str:
    if not os.environ.get("DATABASE_REPLICA_URL"):
        return "Replica: none (devtools.embedded started none)"
    from orders.models import Order

    with psycopg.connect(os.environ["DATABASE_REPLICA_URL"], autocommit=True) as replica:
        recovering = replica.execute("SELECT pg_is_in_recovery()").fetchone()
        receiving = replica.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        orders = replica.execute("SELECT count(*) FROM orders").fetchone()
    worst = max(run.replica_lag, default=(0.0, 0))
    state = "a hot standby" if recovering and recovering[0] else "NOT IN RECOVERY"
    stream = receiving[0] if receiving else "no WAL receiver"
    return (
        f"Replica: {state}, {stream}; served {run.replica_reads:,} transactions during the "
        f"load, at most {worst[0] * 1000:.0f} ms / {worst[1]:,} bytes of WAL behind; "
        f"{orders[0] if orders else 0:,} orders on it, {Order.objects.count():,} on the primary"
    )


def _report(cluster: Cluster, run: Run, options, *, drained, ledger, reconciled) -> None:

    clean, said = reconciled
    print(
        f"\nCluster run: {options.allies} allies and {options.payers} payers through nginx to "
        f"two web servers of {options.web_workers} gunicorn workers, {run.seconds} s after a "
        f"{run.ramp} s ramp; each killed process back {options.restart_seconds} s later.\n"
    )
    for kill in run.kills:
        print(f"  {kill.at - run.started:5.0f} s  {kill.what} killed (SIGKILL): {kill.then}")
    leaderless = [k.leaderless_seconds for k in run.kills if k.leaderless_seconds is not None]
    if leaderless:
        print(f"  the scheduler was without a leader for {leaderless[0]:.2f} s")
    print(f"\n{_orders_line(drained)}\n")
    print("\n".join(_ledger_lines(ledger)))
    print(f"escrow_reconcile: {'clean' if clean else 'NOT CLEAN'}")
    print("\n".join(f"  {line}" for line in said.splitlines()))
    print(f"\n{_replica_line(run)}\n")
    _proxy_table(cluster.access_log, run)
    _in_server_line(cluster)
    print("\nlocust's view, the whole run:\n")
    print_figures(read_stats(run.locust_prefix))
    cores = dict(run.cores)
    busy = cores.pop("the machine, busy", 0.0)
    used = ", ".join(f"{part} {n:.2f}" for part, n in sorted(cores.items()))
    print(
        f"\nCPU over the measured part, in cores of {os.cpu_count()}: {used}; the machine was "
        f"busy {busy:.2f}, {busy - sum(cores.values()):.2f} of it with other processes"
    )


# --- the whole run ------------------------------------------------------------------------


def _environment(run: Path) -> None:
    for name in OWN_SERVICES:
        os.environ.pop(name, None)
    os.environ.update(RUN_SETTINGS, KIBO_MEDIA_ROOT=str(run / "media"))


def _fresh(run: Path) -> None:
    """A new database, cache and run directory: the checks count what this run did."""
    for old in (run, STATE_DIR / f"{NAME}-postgres", STATE_DIR / f"{NAME}-valkey"):
        shutil.rmtree(old, ignore_errors=True)
    run.mkdir(parents=True)


def _run(stack: ExitStack, options: argparse.Namespace, run_dir: Path) -> list[str]:
    """The whole run, its services and processes stopped by `stack`; what failed, if any."""
    stack.enter_context(embedded_services(NAME))
    # beat's leader lock is a session lock: PostgreSQL itself, not PgBouncer
    os.environ["KIBO_BEAT_LOCK_DATABASE_URL"] = os.environ["KIBO_EMBEDDED_POSTGRES_URL"]
    _migrate()
    import django

    django.setup()
    from bench.exactly_once import ledger_check

    print(f"Seeding {options.allies} allies and {options.payers} payers...", flush=True)
    plan = _seed(allies=options.allies, payers=options.payers, seed=options.seed)
    cluster = _cluster(run_dir, web_workers=options.web_workers)
    stack.callback(cluster.stop)
    _start(cluster)
    print(f"Running; the processes' logs are in {run_dir}", flush=True)
    run = _load(cluster, plan, seconds=options.seconds, restart_seconds=options.restart_seconds)
    print("Load over; draining...", flush=True)
    drained = _drain(options.drain_seconds)
    ledger = ledger_check(os.environ["KIBO_RPC_URL_LOCAL"])
    reconciled = _reconcile()
    _report(cluster, run, options, drained=drained, ledger=ledger, reconciled=reconciled)
    return [
        why
        for why, bad in (
            ("a payment was not made exactly once", not ledger.exactly_once),
            ("escrow does not reconcile", not reconciled[0]),
            ("orders or transfers were still under way", drained is None),
            ("the run ended before its three kills", len(run.kills) < len(KILLS)),
            ("no standby took the lead", not any(k.leaderless_seconds for k in run.kills)),
        )
        if bad
    ]


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    run_dir = STATE_DIR / NAME
    _fresh(run_dir)
    _environment(run_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: stop what we started
    try:
        with ExitStack() as stack:
            try:
                failed = _run(stack, options, run_dir)
            finally:
                # From here on it stops what it started: a second Ctrl-C (or a terminal's
                # SIGINT to the whole process group) must not cut that short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:
        print("\nInterrupted; everything the run started is stopped.", file=sys.stderr)
        return 130
    print("\nFAILED: " + "; ".join(failed) if failed else "\nEvery payment exactly once.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
