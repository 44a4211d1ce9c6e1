"""The benchmark cannot rot: a small run of `make bench` (10,000 orders, a few requests per
page, a few seconds of load) on its own embedded servers, through gunicorn, prints every row
of its tables; so does its Web Push fan-out, to 50 allies through a real worker."""

import os
import re
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR

pytestmark = pytest.mark.slow  # fills and measures a database

ROWS = [
    "ally board (/ally/board/)",
    "user history (/orders/, 200 orders)",
    "order status (/orders/<id>/status/)",
    "ally stats (/ally/stats/)",
    "admin orders, search by wallet",
    "admin audit log (logs)",
    "admin order page (its story)",
    "admin metrics",
    "staff console (/admin/dashboard/)",
    "Prometheus scrape (/metrics/business)",
    "penalty check (is_ally_penalized)",
    "expiry sweep with nothing due",
]
LOAD_ROWS = {  # request -> at least this many in the smoke run (20 allies, 2 payers)
    "ally: board poll": 20,
    "payer: create the order": 2,
    "payer: report the payment": 2,
}


def bench_env(**changes: str) -> dict[str, str]:
    """The environment of `make bench`: its own servers, chain and keys, not the suite's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        and not key.startswith("KIBO_")  # its own chain too, as `make bench` has
    }
    return {**env, **changes}


def run_bench(module: str, *, timeout: float = 240, **changes: str):
    """`python -m <module>` in the benchmarks' environment, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=BASE_DIR,
        env=bench_env(**changes),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_benchmark_runs_small_and_prints_its_table():
    run = run_bench(
        "bench.pages",
        BENCH_ORDERS="10000",
        BENCH_REQUESTS="5",
        BENCH_SECONDS="2",
        BENCH_LOAD_SECONDS="8",
        BENCH_LOAD_PAYERS="2",
        BENCH_CAPACITY_SECONDS="3",
        BENCH_NAME="bench-smoke",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "filled in" in run.stdout and "10,000 orders" in run.stdout
    assert "beat's first daily rollup: 30 days" in run.stdout
    for row in ROWS:
        line = next((x for x in run.stdout.splitlines() if x.startswith(row)), None)
        assert line is not None, f"no row {row!r} in:\n{run.stdout}"
        p50 = float(line[len(row) :].split()[0])
        assert 0 < p50 < 60_000, line
    # the load run: every ally polled, both payers paid, nothing failed
    for row, at_least in LOAD_ROWS.items():
        line = next((x for x in run.stdout.splitlines() if x.startswith(row)), None)
        assert line is not None, f"no row {row!r} in:\n{run.stdout}"
        count, failed = (int(n.replace(",", "")) for n in line[len(row) :].split()[:2])
        assert count >= at_least and failed == 0, line
    assert run.stdout.count("CPU used, in cores") == 2  # the realistic run, the capacity run


PUSH_ROWS = ["first order, workers just started", "order 2, workers warm"]


def test_the_push_benchmark_runs_small_and_prints_its_tables():
    # given 50 online allies, each with a phone on the bench's own push service
    # when two orders reach the board through a real worker
    run = run_bench(
        "bench.pushes",
        BENCH_PUSH_ALLIES="50",
        BENCH_PUSH_ORDERS="2",
        BENCH_NAME="bench-smoke-pushes",
    )
    # then each order reached every phone, and its times and costs are printed
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    for row in PUSH_ROWS:
        times, costs = (line[len(row) :].split() for line in lines if line.startswith(row))
        pushes, first, last, _per_second, cpu, _ms_per_push = times[:6]
        assert pushes == "50" and 0 < float(first) <= float(last) and float(cpu) > 0, times
        _call, tasks = costs[:2]
        assert tasks == "1", costs  # 50 allies: one delivery batch


CLUSTER_WINDOWS = [
    "before the kills",
    "after worker-chain was killed",
    "after web-1 was killed",
    "inside the web servers, every request",
]


@pytest.mark.timeout(600)
def test_the_cluster_run_loses_three_processes_and_pays_exactly_once():
    # given production's arrangement on this machine, small and short
    # when it runs, losing the signing worker, the beat leader and a web server
    run = run_bench(
        "bench.cluster",
        timeout=540,
        CLUSTER_SECONDS="20",
        CLUSTER_ALLIES="20",
        CLUSTER_PAYERS="4",
        CLUSTER_RESTART_SECONDS="3",
        CLUSTER_NAME="cluster-smoke",
    )
    # then every payment was made once, escrow reconciles, and the figures are printed
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "Every payment exactly once." in out and "escrow_reconcile: clean" in out
    assert "worker-chain killed (SIGKILL)" in out and "web-1 killed (SIGKILL)" in out
    assert "the scheduler was without a leader for" in out
    assert "Replica: a hot standby, streaming" in out
    for window in CLUSTER_WINDOWS:
        assert window in out, f"no {window!r} in:\n{out}"
    assert re.search(r"after beat-\d was killed", out), out
