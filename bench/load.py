"""The load run of `make bench`: many allies polling the board while payers pay QRs.

Runs inside bench/pages.py's Django process, against its gunicorn and database. It signs in
up to 1,000 of the dataset's allies and makes fresh payers in Bolivia with their own keys
and test tokens on the local chain, then runs locust (bench/locustfile.py) in its own
process, headless and bounded: the users arrive over a ramp, the statistics restart, and it
stops by itself after `seconds` more. Then a short capacity run: a few allies polling back to
back. Returns, for each run, locust's figures per kind of request, the board polls' time
inside the server (gunicorn's access log) and the CPU each part of the system used.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psutil
from eth_utils import keccak

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PAYER_TOKENS = 1_000  # whole USDT minted to each payer


@dataclass
class LoadFigure:
    name: str
    requests: int
    failures: int
    per_second: float
    p50: float
    p95: float
    p99: float


def session_of(user) -> str:
    """A signed-in session for `user`, as its browser would hold it."""
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def payers_funded(count: int, *, seed: int) -> list[list[str]]:
    """Fresh Bolivian payers with a signed-in session, gas and test USDT on the local chain."""
    from eth_account import Account
    from web3 import Web3

    from devtools.localchain import mint_local
    from escrow.networks import network_spec
    from kibo.models import Country, User

    rpc_url = os.environ["KIBO_RPC_URL_LOCAL"]
    usdt = network_spec("local").token("USDT")
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    payers = []
    for n in range(count):
        account = Account.from_key(keccak(text=f"{seed}:load-payer:{n}"))
        user, _ = User.objects.get_or_create(
            wallet_address=account.address, defaults={"country": Country.BOLIVIA}
        )
        w3.provider.make_request("anvil_setBalance", [account.address, hex(10**18)])
        mint_local(
            rpc_url,
            token_address=usdt.address,
            to=account.address,
            amount_base=PAYER_TOKENS * 10**usdt.decimals,
        )
        payers.append([session_of(user), account.key.hex()])
    return payers


def _ms(figure: str) -> float:
    return 0.0 if figure == "N/A" else float(figure)  # N/A: no such request was timed


def read_stats(prefix: str) -> list[LoadFigure]:
    """What locust wrote to <prefix>_stats.csv: one figure per kind of request."""
    with open(f"{prefix}_stats.csv", newline="") as stats:
        return [
            LoadFigure(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                per_second=float(row["Requests/s"]),
                p50=_ms(row["50%"]),
                p95=_ms(row["95%"]),
                p99=_ms(row["99%"]),
            )
            for row in csv.DictReader(stats)
        ]


CAPACITY_USERS = 8  # allies polling back to back: enough to keep both workers busy
RAMP_SECONDS = 20  # users arrive over this long, before the measured seconds
PARTS = {"gunicorn": "server", "postgres": "database", "valkey": "cache", "anvil": "chain"}


@dataclass
class LoadRun:
    title: str
    figures: list[LoadFigure]
    cores: dict[str, float]  # CPU each part used during the run, in cores (this machine: 2)
    # the board polls as gunicorn's access log timed them, from reading the request to the
    # response written: p50, p95, p99 in ms, and how many
    board_in_server_ms: tuple[float, float, float, int]


def server_ms(access_log: Path, since: int = 0, path: str | None = "/ally/board/") -> list[float]:
    """The times (ms) of the requests for `path` (None: every one) that gunicorn's access log
    (bench.pages.ACCESS_LOG_FORMAT: microseconds inside the worker, path) recorded after byte
    `since`, in order."""
    with open(access_log) as log:
        log.seek(since)
        return sorted(
            int(micros) / 1000
            for micros, logged in (line.split() for line in log if line.strip())
            if path is None or logged == path
        )


def percentile(ordered: list[float], percent: int) -> float:
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def percentiles(ordered: list[float]) -> tuple[float, float, float, int]:
    """p50, p95, p99 and how many, of times in order (zeros when there are none)."""
    if not ordered:
        return (0.0, 0.0, 0.0, 0)
    at = [percentile(ordered, p) for p in (50, 95, 99)]
    return (at[0], at[1], at[2], len(ordered))


def cpu_seconds(locust, parts: dict[str, str] = PARTS) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of the load generator and of each process whose command line holds
    a marker of `parts` (marker -> the part it belongs to; the first that matches), by
    process."""
    seen = {locust.pid: ("load generator", sum(locust.cpu_times()[:2]))}
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        command = " ".join(process.info["cmdline"] or [])
        part = next((p for marker, p in parts.items() if marker in command), None)
        if part and process.info["cpu_times"] and process.pid != locust.pid:
            seen[process.pid] = (part, sum(process.info["cpu_times"][:2]))
    return seen


def cores_used(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """The cores each part used between two cpu_seconds samples `seconds` apart (a process
    gone by the second one is left out)."""
    cores: dict[str, float] = {}
    for pid, (part, spent) in after.items():
        cores[part] = cores.get(part, 0) + (spent - before.get(pid, (part, 0))[1]) / seconds
    return cores


def locust_start(
    base: str, plan: dict, *, seconds: int, work: Path, stderr, reset_stats: bool = True
) -> tuple[psutil.Popen, int]:
    """locust in its own process, headless and bounded: the plan's users arrive over a ramp
    (RAMP_SECONDS at most, and at least a user a second), run `seconds` more, and stop by
    themselves. Its statistics go to <work>/load_stats.csv (read_stats), restarted once
    everyone has come when `reset_stats`. Returns the process and the ramp's seconds."""
    users = len(plan["allies"]) + len(plan["payers"])
    ramp = max(1, min(RAMP_SECONDS, seconds, users))
    plan_file = work / "plan.json"
    # payers pay within the measured part's first half (locust takes a second or two to
    # start, and the statistics restart once everyone has come), unless the plan says when
    timing = {"measured_from": time.time() + ramp + 3, "pay_within": seconds / 2}
    plan_file.write_text(json.dumps({**timing, **plan}))
    locust = psutil.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            base,
            "--users",
            str(users),
            "--spawn-rate",
            f"{users / ramp:g}",  # everyone within the ramp
            "--run-time",
            f"{ramp + seconds}s",
            *(["--reset-stats"] if reset_stats else []),
            "--stop-timeout",
            "5",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--csv",
            str(work / "load"),
        ],
        env={**os.environ, "KIBO_LOAD_PLAN": str(plan_file)},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return locust, ramp


def _locust(base: str, plan: dict, *, title: str, seconds: int, access_log: Path) -> LoadRun:
    """One locust run: its users arrive over the ramp, then `seconds` are measured (requests
    and the CPU each part uses)."""
    with tempfile.TemporaryDirectory() as work:
        prefix = str(Path(work) / "load")
        with open(Path(work) / "stderr", "w+") as stderr:
            locust, ramp = locust_start(base, plan, seconds=seconds, work=Path(work), stderr=stderr)
            measured = []  # (when, CPU seconds by process) from the ramp's end to the last
            steady = time.monotonic() + ramp
            deadline = steady + seconds + 60
            while locust.poll() is None:
                if time.monotonic() > deadline:
                    locust.kill()
                    raise RuntimeError("locust did not stop by itself")
                if time.monotonic() >= steady:
                    if not measured:
                        log_from = access_log.stat().st_size
                    try:
                        sample = (time.monotonic(), cpu_seconds(locust))
                    except psutil.NoSuchProcess:  # it just ended
                        continue
                    measured = [measured[0], sample] if measured else [sample]
                time.sleep(1)
            if not Path(f"{prefix}_stats.csv").exists() or len(measured) < 2:
                stderr.seek(0)
                raise RuntimeError(f"locust did not run:\n{stderr.read()[-3000:]}")
        figures = read_stats(prefix)
    (start, before), (end, after) = measured
    return LoadRun(
        title=title,
        figures=figures,
        cores=cores_used(before, after, end - start),
        board_in_server_ms=percentiles(server_ms(access_log, log_from)),
    )


def ally_sessions(count: int) -> list[str]:
    """Signed-in sessions of the first `count` verified allies."""
    from kibo.models import User

    allies = User.objects.filter(role=User.Role.ALLY, verified=True, is_staff=False)
    return [session_of(ally) for ally in allies.order_by("pk")[:count]]


def load_plan(*, allies: list[str], payers: list[list[str]], poll_seconds: float) -> dict:
    """What locust's users do (bench/locustfile.py): allies (their sessions) poll the board
    every `poll_seconds`; payers ([session, key]) pay the demo café's QR, 25.00 BOB in USDT
    on the local chain. A caller may add to it: `repeat` (payers pay again once an order
    is over) and `work` (allies take orders and upload receipts; the locustfile says how)."""
    from devtools.management.commands.seed_demo import DEMO_QR

    return {
        "allies": allies,
        "payers": payers,
        "poll_seconds": poll_seconds,
        "qr": DEMO_QR,
        "order": {
            "amount_fiat": "25.00",
            "fiat_currency": "BOB",
            "crypto_token": "USDT",
            "network": "local",
        },
        "rpc_url": os.environ["KIBO_RPC_URL_LOCAL"],
    }


def print_figures(figures: list[LoadFigure]) -> None:
    """locust's figures, a line per kind of request."""
    print(
        f"{'requests (ms)':<44} {'count':>8} {'failed':>6} {'per s':>7} {'p50':>6} "
        f"{'p95':>6} {'p99':>6}"
    )
    for figure in figures:
        print(
            f"{figure.name:<44} {figure.requests:>8,} {figure.failures:>6,} "
            f"{figure.per_second:>7.1f} {figure.p50:>6g} {figure.p95:>6g} {figure.p99:>6g}"
        )


def run_load(
    *,
    base: str,
    allies: int,
    payers: int,
    seconds: int,
    capacity_seconds: int,
    poll_seconds: float,
    seed: int,
    access_log: Path,
) -> list[LoadRun]:
    """The realistic run (every ally polling as the page does, payers paying), then the
    board's capacity: a few allies polling back to back."""
    from django.utils import timezone

    from quotes.services import quote_record

    quote_record(  # what a payer's order is priced with
        token="USDT", fiat="BOB", rate=Decimal("6.96"), source="bench", timestamp=timezone.now()
    )
    sessions = ally_sessions(allies)
    plan = load_plan(
        allies=sessions, payers=payers_funded(payers, seed=seed), poll_seconds=poll_seconds
    )
    realistic = _locust(
        base,
        plan,
        title=f"{len(sessions):,} allies polling the board every {poll_seconds:g} s and "
        f"{payers} payers paying a QR, {seconds} s",
        seconds=seconds,
        access_log=access_log,
    )
    capacity = _locust(
        base,
        {**plan, "allies": sessions[:CAPACITY_USERS], "payers": [], "poll_seconds": 0},
        title=f"capacity: {min(CAPACITY_USERS, len(sessions))} allies polling back to back, "
        f"{capacity_seconds} s",
        seconds=capacity_seconds,
        access_log=access_log,
    )
    return [realistic, capacity]
