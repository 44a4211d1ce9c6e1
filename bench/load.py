"""The load run of `make bench`: many allies polling the board while payers pay QRs.

Runs inside bench/pages.py's Django process, against its gunicorn and database. It signs in
up to 1,000 of the dataset's allies and makes fresh payers in Bolivia with their own keys
and test tokens on the local chain, then runs locust (bench/locustfile.py) in its own
process, headless and bounded: it stops by itself after `seconds`. Then a short capacity run:
a few allies polling back to back. Returns locust's figures per kind of request and the CPU
each part of the system used.
"""

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

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


def _session(user) -> str:
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def _payers(count: int, *, seed: int) -> list[list[str]]:
    """Fresh Bolivian payers with a signed-in session, gas and test USDT on the local chain."""
    from eth_account import Account
    from web3 import Web3

    from escrow.chain import mint_local
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
        payers.append([_session(user), account.key.hex()])
    return payers


def _read_stats(prefix: str) -> list[LoadFigure]:
    with open(f"{prefix}_stats.csv", newline="") as stats:
        return [
            LoadFigure(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                per_second=float(row["Requests/s"]),
                p50=float(row["50%"]),
                p95=float(row["95%"]),
                p99=float(row["99%"]),
            )
            for row in csv.DictReader(stats)
        ]


CAPACITY_USERS = 8  # allies polling back to back: enough to keep both workers busy
PARTS = {"gunicorn": "server", "postgres": "database", "valkey": "cache", "anvil": "chain"}


@dataclass
class LoadRun:
    title: str
    figures: list[LoadFigure]
    cores: dict[str, float]  # CPU each part used during the run, in cores (this machine: 2)


def _cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of the server's, database's, cache's and chain's processes."""
    import psutil

    seen = {}
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        command = " ".join(process.info["cmdline"] or [])
        part = next((p for marker, p in PARTS.items() if marker in command), None)
        if part and process.info["cpu_times"]:
            seen[process.pid] = (part, sum(process.info["cpu_times"][:2]))
    return seen


def _locust(base: str, plan: dict, *, title: str, seconds: int) -> LoadRun:
    users = len(plan["allies"]) + len(plan["payers"])
    before, children = _cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        plan_file = Path(work) / "plan.json"
        plan_file.write_text(json.dumps(plan))
        prefix = str(Path(work) / "load")
        locust = subprocess.run(
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
                str(max(1, users // 5)),  # everyone within the first five seconds
                "--run-time",
                f"{seconds}s",
                "--stop-timeout",
                "5",
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--csv",
                prefix,
            ],
            env={**os.environ, "KIBO_LOAD_PLAN": str(plan_file)},
            check=False,  # locust exits 1 when a request failed; the figures say which
            timeout=seconds + 60,
            capture_output=True,
            text=True,
        )
        if not Path(f"{prefix}_stats.csv").exists():
            raise RuntimeError(f"locust did not run:\n{locust.stderr[-3000:]}")
        figures = _read_stats(prefix)
    elapsed = time.monotonic() - started
    after, waited = _cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    cores = {
        "load generator": (
            waited.ru_utime + waited.ru_stime - children.ru_utime - children.ru_stime
        )
        / elapsed
    }
    for pid, (part, spent) in after.items():
        cores[part] = cores.get(part, 0) + (spent - before.get(pid, (part, 0))[1]) / elapsed
    return LoadRun(title=title, figures=figures, cores=cores)


def run_load(
    *,
    base: str,
    allies: int,
    payers: int,
    seconds: int,
    capacity_seconds: int,
    poll_seconds: float,
    seed: int,
) -> list[LoadRun]:
    """The realistic run (every ally polling as the page does, payers paying), then the
    board's capacity: a few allies polling back to back."""
    from django.utils import timezone

    from kibo.management.commands.seed_demo import DEMO_QR
    from kibo.models import User
    from quotes.services import quote_record

    ally_users = User.objects.filter(role=User.Role.ALLY, verified=True, is_staff=False)
    quote_record(  # what a payer's order is priced with
        token="USDT", fiat="BOB", rate=Decimal("6.96"), source="bench", timestamp=timezone.now()
    )
    sessions = [_session(ally) for ally in ally_users.order_by("pk")[:allies]]
    plan = {
        "allies": sessions,
        "payers": _payers(payers, seed=seed),
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
    realistic = _locust(
        base,
        plan,
        title=f"{len(sessions):,} allies polling the board every {poll_seconds:g} s and "
        f"{payers} payers paying a QR, {seconds} s",
        seconds=seconds,
    )
    capacity = _locust(
        base,
        {**plan, "allies": sessions[:CAPACITY_USERS], "payers": [], "poll_seconds": 0},
        title=f"capacity: {min(CAPACITY_USERS, len(sessions))} allies polling back to back, "
        f"{capacity_seconds} s",
        seconds=capacity_seconds,
    )
    return [realistic, capacity]
