"""`make bench`: Kibo's hot pages and sweeps at a million orders, through HTTP.

Starts its own embedded PostgreSQL and Valkey (unless DATABASE_URL / REDIS_URL are set),
fills a fresh database with bench/dataset.py, starts gunicorn on loopback, signs in a
user, an ally and a staff member, and prints one table: each page's p50/p95/p99 through
HTTP, its SQL statements per request, the time of that SQL alone and the ratio of the two,
whether every statement on orders and logs uses an index (EXPLAIN ANALYZE), and the seed's
expectation and our goal. Then the load run with locust (bench/load.py) against the same
gunicorn, and the sweeps, in-process.

    BENCH_ORDERS   orders to fill (1,000,000)          BENCH_REQUESTS  per page (200)
    BENCH_SEED     the dataset's seed (1)            BENCH_SECONDS   per page, at most (20)
    BENCH_LOAD_SECONDS      the load run (60; 0: none)   BENCH_LOAD_ALLIES   polling (1,000)
    BENCH_LOAD_PAYERS       paying a QR (50)             BENCH_CAPACITY_SECONDS  (20)
    BENCH_AUDIT_ROWS        the audit log's size: older entries are added up to it
    BENCH_AUDIT_MONTHS      ... spread over this many monthly partitions (24)
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ORDERS = int(os.environ.get("BENCH_ORDERS", "1000000"))
AUDIT_ROWS = int(os.environ.get("BENCH_AUDIT_ROWS", "0"))
AUDIT_MONTHS = int(os.environ.get("BENCH_AUDIT_MONTHS", "24"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
# A slow page stops early: after this many seconds, once it has 10 samples.
SECONDS_PER_FIGURE = float(os.environ.get("BENCH_SECONDS", "20"))
SEED = int(os.environ.get("BENCH_SEED", "1"))
# The load run: allies polling the board as its page does, payers paying QRs.
LOAD_SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
LOAD_ALLIES = int(os.environ.get("BENCH_LOAD_ALLIES", "1000"))
LOAD_PAYERS = int(os.environ.get("BENCH_LOAD_PAYERS", "50"))
CAPACITY_SECONDS = int(os.environ.get("BENCH_CAPACITY_SECONDS", "20"))
# Prometheus, scraping the business figures (kibo.metrics) with its token.
METRICS_TOKEN = "bench-scraper"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
NAME = os.environ.get("BENCH_NAME", "bench")  # its embedded database is .kibo/<name>-postgres
# The tables that grow with the orders: a hot statement must reach them through an index.
INDEXED_TABLES = (
    "orders",
    "logs",
    "users",
    "transfers",
    "signed_transactions",
    "deposits",
    "escrow_accounts",
    "ally_penalties",
)


@dataclass
class Figure:
    label: str
    who: str  # "user", "ally", "staff" or "" for in-process work
    url: str = ""
    seed_ms: float | None = None  # what the seed's data model expects
    goal_ms: float | None = None  # p95 we hold ourselves to
    times_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    sql_ms: float | None = None
    scans: list[str] = field(default_factory=list)  # sequential scans of big tables
    status: int | None = None

    def pct(self, p: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def verdict(self) -> str:
        if self.goal_ms is None:
            return ""
        return "ok" if self.pct(95) <= self.goal_ms else "MISSED"


def percentile_row(figure: Figure) -> str:
    ratio = (
        f"{statistics.median(figure.times_ms) / figure.sql_ms:5.1f}x" if figure.sql_ms else "     "
    )
    queries = f"{figure.queries:>3}" if figure.queries is not None else "   "
    sql = f"{figure.sql_ms:7.2f}" if figure.sql_ms is not None else "       "
    index = "seq scan: " + ", ".join(figure.scans) if figure.scans else "indexed"
    seed = f"< {figure.seed_ms:g}" if figure.seed_ms else ""
    goal = f"<= {figure.goal_ms:g}" if figure.goal_ms else ""
    return (
        f"{figure.label:<44} {figure.pct(50):8.2f} {figure.pct(95):8.2f} {figure.pct(99):8.2f}"
        f"  {queries} {sql} {ratio}  {seed:>8} {goal:>8} {figure.verdict:<6}  {index}"
    )


HEADER = (
    f"{'measurement (ms)':<44} {'p50':>8} {'p95':>8} {'p99':>8}  {'sql':>3} {'sql ms':>7}"
    f" {'ratio':>5}  {'seed':>8} {'goal':>8} {'':<6}  plan"
)


ACCESS_LOG_FORMAT = "%(D)s %(U)s"  # microseconds inside the worker, path


def gunicorn_command(
    port: int, *, access_log: Path, workers: int = 2, config: str | None = None
) -> list[str]:
    """gunicorn on loopback, its access log timing each request inside its worker."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "kibo.wsgi",
        *(["-c", config] if config else []),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--access-logfile",
        str(access_log),
        "--access-logformat",
        ACCESS_LOG_FORMAT,
    ]


def _start_gunicorn(port: int, access_log: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        gunicorn_command(port, access_log=access_log),
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "kibo.settings.local"},
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz/", timeout=2)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def _explain_scans(cursor, sql: str) -> list[str]:
    """The big tables the statement reads with a sequential scan."""
    if not re.search(rf"\b(FROM|JOIN)\s+\"?({'|'.join(INDEXED_TABLES)})\b(?!_)", sql):
        return []
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
    lines = [row[0] for row in cursor.fetchall()]
    scanned = set()
    for at, line in enumerate(lines):
        match = re.search(r"Seq Scan on (\w+)", line)
        if not match:
            continue
        # a table's monthly partitions (logs_y2026m05) and default partition count as the
        # table; an empty one (a month ahead) reads no buffer and does not count
        table = re.sub(r"_(y\d{4}m\d{2}|default)$", "", match[1])
        depth = len(line) - len(line.lstrip())
        details = []
        for below in lines[at + 1 :]:
            if len(below) - len(below.lstrip()) <= depth:
                break
            details.append(below)
        if table in INDEXED_TABLES and any("Buffers:" in d for d in details):
            scanned.add(table)
    return sorted(scanned)


def _enough(samples: list, started: float) -> bool:
    return len(samples) >= 10 and time.perf_counter() - started > SECONDS_PER_FIGURE


def _replay_ms(cursor, statements: list[str], rounds: int = 20) -> float:
    """The median time of the page's SQL alone, sent from here statement by statement."""
    totals = []
    started = time.perf_counter()
    for _ in range(rounds):
        if len(totals) >= 3 and time.perf_counter() - started > SECONDS_PER_FIGURE / 2:
            break
        start = time.perf_counter()
        for sql in statements:
            cursor.execute(sql)
            if cursor.description:
                cursor.fetchall()
        totals.append((time.perf_counter() - start) * 1000)
    return statistics.median(totals)


def measure_page(figure: Figure, *, base: str, cookies: dict, in_process) -> Figure:
    import httpx
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with httpx.Client(
        base_url=base,
        cookies=cookies.get(figure.who, {}),
        headers=SCRAPER if figure.who == "scraper" else {},
        timeout=30,
    ) as client:
        for _ in range(3):
            client.get(figure.url)
        started = time.perf_counter()
        for _ in range(REQUESTS):
            if _enough(figure.times_ms, started):
                break
            start = time.perf_counter()
            response = client.get(figure.url)
            figure.times_ms.append((time.perf_counter() - start) * 1000)
        figure.status = response.status_code
    with CaptureQueriesContext(connection) as captured:
        in_process[figure.who].get(figure.url)
    statements = [q["sql"] for q in captured.captured_queries]
    figure.queries = len(statements)
    readonly = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    with connection.cursor() as cursor:
        figure.sql_ms = _replay_ms(cursor, readonly)
        figure.scans = sorted({t for s in readonly for t in _explain_scans(cursor, s)})
    return figure


def measure_call(figure: Figure, work, rounds: int = REQUESTS) -> Figure:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        work()
    started = time.perf_counter()
    for _ in range(rounds):
        if _enough(figure.times_ms, started):
            break
        start = time.perf_counter()
        work()
        figure.times_ms.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as captured:
        work()
    figure.queries = len(captured.captured_queries)
    readonly = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
    ]
    with connection.cursor() as cursor:
        figure.scans = sorted({t for s in readonly for t in _explain_scans(cursor, s)})
    return figure


LOAD_GOAL_PER_SECOND, LOAD_GOAL_P99_MS = 300, 50


def print_load(base: str, access_log: Path) -> bool:
    """Run the load and print its tables; True when the board misses its goal."""
    from allies.views import BOARD_POLL_SECONDS
    from bench.load import print_figures, run_load

    print("\nLoad through gunicorn (2 workers), driven by locust on the same machine:", flush=True)
    runs = run_load(
        base=base,
        allies=LOAD_ALLIES,
        payers=LOAD_PAYERS,
        seconds=LOAD_SECONDS,
        capacity_seconds=CAPACITY_SECONDS,
        poll_seconds=BOARD_POLL_SECONDS,
        seed=SEED,
        access_log=access_log,
    )
    missed = False
    for run in runs:
        print(f"\n{run.title}:\n")
        print_figures(run.figures)
        inside = run.board_in_server_ms
        print(
            f"{'  the same polls inside the server':<44} {inside[3]:>8,} {'':>6} {'':>7} "
            f"{inside[0]:>6.1f} {inside[1]:>6.1f} {inside[2]:>6.1f}"
        )
        used = ", ".join(f"{part} {cores:.2f}" for part, cores in sorted(run.cores.items()))
        print(f"CPU used, in cores of {os.cpu_count()}: {used}")
        board = next(f for f in run.figures if f.name == "ally: board poll")
        missed |= board.p99 > LOAD_GOAL_P99_MS or any(f.failures for f in run.figures)
    missed |= board.per_second < LOAD_GOAL_PER_SECOND  # the capacity run's, the last
    print(
        f"\ngoal for the board poll: >= {LOAD_GOAL_PER_SECOND} requests/s at p99 <= "
        f"{LOAD_GOAL_P99_MS} ms",
        flush=True,
    )
    return missed


def main() -> int:
    from devtools.embedded import STATE_DIR, embedded_services, free_port

    shutil.rmtree(STATE_DIR / f"{NAME}-postgres", ignore_errors=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kibo.settings.local"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: measure what production does
    os.environ["KIBO_ENABLED_NETWORKS"] = "mantle,base,local"  # the dataset's networks
    os.environ["KIBO_METRICS_TOKEN"] = METRICS_TOKEN
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the embedded servers too
    with embedded_services(NAME):
        import django

        django.setup()
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test import Client
        from django.utils import timezone

        from bench.dataset import add_due_orders, fill, wallet

        call_command("migrate", verbosity=0)
        print(f"Filling PostgreSQL with {ORDERS:,} orders (seed {SEED}):", flush=True)
        start = time.perf_counter()
        with transaction.atomic():
            sizes = fill(
                connection,
                orders=ORDERS,
                seed=SEED,
                audit_rows=AUDIT_ROWS,
                audit_months=AUDIT_MONTHS if AUDIT_ROWS else 13,
            )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT count(*) FROM logs")
            logs = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'logs'::regclass")
            partitions = cursor.fetchone()[0]
        print(
            f"  filled in {time.perf_counter() - start:.0f} s: {sizes.orders:,} orders, "
            f"{logs:,} log rows in {partitions} partitions, {sizes.users:,} users, "
            f"{sizes.allies:,} allies",
            flush=True,
        )

        from allies.selectors import is_ally_penalized
        from kibo.models import User
        from orders.models import OPEN_STATUSES, Order
        from orders.services import orders_expire_due

        heavy = User.objects.get(wallet_address=wallet(SEED, "user", sizes.allies))
        ally = User.objects.get(wallet_address=wallet(SEED, "user", 0))  # a Bolivian ally
        staff = User.objects.create_superuser(wallet(SEED, "staff", 0), username="bench")
        in_process, cookies = {}, {}
        for who, person in (("user", heavy), ("ally", ally), ("staff", staff)):
            browser = Client(HTTP_HOST="localhost", HTTP_ACCEPT_LANGUAGE="es")
            browser.force_login(person)
            in_process[who] = browser
            cookies[who] = {"sessionid": browser.cookies["sessionid"].value}
        in_process["scraper"] = Client(
            HTTP_HOST="localhost", HTTP_AUTHORIZATION=SCRAPER["Authorization"]
        )
        recent = Order.objects.filter(user=heavy).order_by("-created_at").first()
        from orders.services import daily_stats_rollup

        start = time.perf_counter()
        rolled = daily_stats_rollup()  # what beat keeps up to date for the staff console
        print(
            f"  beat's first daily rollup: {rolled} days in {time.perf_counter() - start:.1f} s",
            flush=True,
        )

        port = free_port()
        access_log = STATE_DIR / f"{NAME}-access.log"
        access_log.unlink(missing_ok=True)
        server = _start_gunicorn(port, access_log)
        base = f"http://localhost:{port}"
        figures, load_missed = [], False
        try:
            pages = [
                Figure("ally board (/ally/board/)", "ally", "/ally/board/", 50, 5),
                Figure("ally board page (/ally/)", "ally", "/ally/", 50, None),
                Figure("user history (/orders/, 200 orders)", "user", "/orders/", 100, 10),
                Figure("order status (/orders/<id>/status/)", "user", "", None, 10),
                Figure("ally stats (/ally/stats/)", "ally", "/ally/stats/", None, 10),
                Figure("admin orders", "staff", "/admin/orders/order/", None, 100),
                Figure("admin orders, search by wallet", "staff", "", None, 100),
                Figure("admin audit log (logs)", "staff", "/admin/audit/log/", None, 100),
                Figure("admin order page (its story)", "staff", "", None, 100),
                Figure("admin metrics", "staff", "/admin/orders/order/metrics/", 500, 20),
                Figure(
                    "staff console (/admin/dashboard/)", "staff", "/admin/dashboard/", None, 100
                ),
                Figure(
                    "Prometheus scrape (/metrics/business)",
                    "scraper",
                    "/metrics/business",
                    None,
                    100,
                ),
            ]
            pages[3].url = f"/orders/{recent.pk}/status/"
            pages[6].url = f"/admin/orders/order/?q={heavy.wallet_address}"
            pages[8].url = f"/admin/orders/order/{recent.pk}/change/"
            print(f"\n{REQUESTS} requests per page through gunicorn (2 workers):\n", flush=True)
            print(HEADER)
            for figure in pages:
                measure_page(figure, base=base, cookies=cookies, in_process=in_process)
                print(percentile_row(figure), flush=True)
                figures.append(figure)
            if LOAD_SECONDS:
                load_missed = print_load(base, access_log)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

        print("\nIn-process work:\n")
        print(HEADER)
        # The open orders of the dataset started minutes ago: keep their timers running
        # so "nothing due" means it, then make a backlog of due orders on purpose.
        Order.objects.filter(status__in=OPEN_STATUSES).update(
            expires_at=timezone.now() + timedelta(hours=1)
        )
        calls = [
            (
                Figure("penalty check (is_ally_penalized)", "", seed_ms=20, goal_ms=1),
                lambda: is_ally_penalized(ally=ally),
            ),
            (
                Figure("expiry sweep with nothing due", "", seed_ms=200, goal_ms=2),
                orders_expire_due,
            ),
        ]
        for figure, work in calls:
            measure_call(figure, work)
            print(percentile_row(figure), flush=True)
            figures.append(figure)
        due = add_due_orders(connection, count=min(10_000, sizes.users // 4), seed=SEED)
        backlog = Figure(f"expiry sweep, {due:,} orders due at once", "", goal_ms=2000)
        start = time.perf_counter()
        expired = 0
        while swept := orders_expire_due():
            expired += swept
        backlog.times_ms.append((time.perf_counter() - start) * 1000)
        assert expired == due, (expired, due)
        print(percentile_row(backlog), flush=True)
        figures.append(backlog)
        connection.close()
    missed = [f.label for f in figures if f.verdict == "MISSED" or f.scans]
    if load_missed:
        missed.append("load run")
    if missed:
        print(
            f"\n{len(missed)} figure(s) miss their goal or scan a big table: " + "; ".join(missed)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
