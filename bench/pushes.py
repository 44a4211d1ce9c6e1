"""`make bench`: how soon the allies' phones hear of a new order, and what it costs.

Measures the time from an order becoming AVAILABLE (the commit of order_mark_paid, which
queues orders.tasks.call_allies) to the last Web Push message leaving Kibo, for
BENCH_PUSH_ALLIES online allies of Bolivia with one phone each, and the CPU the Celery
workers spend on it. Goal: the last push within 5 s for 1,000 allies.

Starts its own embedded PostgreSQL and Valkey (unless DATABASE_URL / REDIS_URL are set), a
fresh database, the tests' loopback push service (tests/helpers/push_service.py: it checks
each message's VAPID signature and decrypts it, as a browser vendor's service does) and real
Celery workers as deployed (prefork), which serve their figures (kibo.telemetry) on a metrics
port. The allies, their presence (switched on) and their devices (keys from the push
service's subscriptions) are made in bulk; the rest is Kibo's own path: the task finds whom
to tell with orders.calls.allies_to_call, and kibo.notices sends the batches. A message has
left Kibo when it arrives on loopback, which has no network's round trip. Orders are put on
the board one after another: the first meets workers just started (their connections to
the database and the push service, and the VAPID signature, still to be made), the others
warm workers, as a deployed worker mostly is.

The push service runs in this process on the same cores as the workers, and spends CPU of
its own decrypting: that is printed apart, with the whole machine's (other work on the
machine shows there, and slows the figures).

    BENCH_PUSH_ALLIES       online allies, one push device each (1,000)
    BENCH_PUSH_CONCURRENCY  the workers' prefork processes (2: this machine's cores)
    BENCH_PUSH_ORDERS       orders put on the board, one after another (3)
    BENCH_NAME              its embedded database is .kibo/<name>-postgres (bench)
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import django
import psutil
import requests
from django.core.management import call_command
from django.db import connection, transaction
from prometheus_client.parser import text_string_to_metric_families

from devtools.embedded import STATE_DIR, embedded_services, free_port
from kibo.celery import app
from kibo.env import BASE_DIR
from tests.helpers.processes import worker_command
from tests.helpers.push_service import PushService

ALLIES = int(os.environ.get("BENCH_PUSH_ALLIES", "1000"))
CONCURRENCY = int(os.environ.get("BENCH_PUSH_CONCURRENCY", "2"))
ORDERS = int(os.environ.get("BENCH_PUSH_ORDERS", "3"))
NAME = os.environ.get("BENCH_NAME", "bench")
GOAL_SECONDS = 5
CALL_TASK = "orders.tasks.call_allies"
DELIVER_TASK = "kibo.tasks.deliver_notice"
NOTICE_KIND = "order-available"
NOTICE_LABELS = ("channel", "kind", "outcome")


@dataclass
class Fanout:
    """One order's call, from its commit to the last push on loopback."""

    label: str
    pushes: int
    first_s: float  # from the commit to the first push received
    last_s: float  # ... to the last
    settled_s: float  # ... to the workers' last delivery task done
    worker_cpu_s: float  # the workers' processes, user + system, until settled
    service_cpu_s: float  # this process: the push service, decrypting
    machine_cpu_s: float  # every process on the machine
    figures: Counter  # what the workers counted meanwhile

    def mean(self, histogram: str, label: str) -> float:
        count = self.figures[(f"{histogram}_count", label)]
        return self.figures[(f"{histogram}_sum", label)] / count if count else 0.0


TIMES_HEADER = (
    f"{'order on the board -> push (s)':<36} {'pushes':>6} {'first':>6} {'last':>6}"
    f" {'per s':>6} {'CPU s':>6} {'ms/push':>7}  {'goal':>4}"
)
COSTS_HEADER = (
    f"{'the same orders':<36} {'call':>6} {'tasks':>6} {'each':>6} {'batch':>6}"
    f" {'retried':>7} {'push s':>6} {'box s':>6} {'cores':>5}"
)


def times_row(run: Fanout) -> str:
    verdict = "ok" if run.last_s < GOAL_SECONDS else "MISSED"
    return (
        f"{run.label:<36} {run.pushes:>6,} {run.first_s:>6.3f} {run.last_s:>6.3f}"
        f" {run.pushes / run.last_s:>6.0f} {run.worker_cpu_s:>6.2f}"
        f" {run.worker_cpu_s / run.pushes * 1000:>7.2f}  {'< ' + str(GOAL_SECONDS):>4} {verdict}"
    )


def costs_row(run: Fanout) -> str:
    return (
        f"{run.label:<36} {run.mean('kibo_celery_task_duration_seconds', CALL_TASK):>6.3f}"
        f" {run.figures[('kibo_celery_task_runs_total', DELIVER_TASK)]:>6.0f}"
        f" {run.mean('kibo_celery_task_duration_seconds', DELIVER_TASK):>6.2f}"
        f" {run.mean('kibo_notice_delivery_seconds', NOTICE_KIND):>6.2f}"
        f" {run.figures[('kibo_notices_sent_total', f'push:{NOTICE_KIND}:retried')]:>7.0f}"
        f" {run.service_cpu_s:>6.2f} {run.machine_cpu_s:>6.2f}"
        f" {run.machine_cpu_s / run.settled_s:>5.2f}"
    )


COSTS_LEGEND = """\
  call: the call_allies task (whom to tell, the batches queued), s
  tasks, each: deliver_notice tasks (kibo.notices.BATCH_USERS users each) and their mean, s
  batch: kibo_notice_delivery_seconds, the commit to a batch's last push, mean, s
  retried: pushes the push service did not take at once, sent again after a backoff
  push s: CPU s of the loopback push service, checking VAPID and decrypting (not Kibo's)
  box s, cores: CPU s of every process on the machine, and the cores busy, until settled"""


def tree_cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds so far of the process and its children."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def machine_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def worker_figures(port: int) -> Counter:
    """What the workers counted, added up over the labels that don't matter here: keyed by
    (sample, its task or its notice's "channel:kind:outcome", as many as it has)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    figures: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("task") or ":".join(
                sample.labels[name] for name in NOTICE_LABELS if name in sample.labels
            )
            figures[(sample.name, label)] += sample.value
    return figures


def start_workers(metrics_port: int) -> psutil.Popen:
    """The Celery worker as deployed (prefork), its figures on `metrics_port`; returned once
    it serves them, its pool started."""
    worker = psutil.Popen(
        worker_command("--pool", "prefork", "--concurrency", str(CONCURRENCY)),
        cwd=BASE_DIR,
        env={
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(STATE_DIR / f"{NAME}-worker-metrics"),
            "KIBO_WORKER_METRICS_PORT": str(metrics_port),
        },
        stdout=subprocess.DEVNULL,  # its banner; what it logs goes to stderr
    )
    deadline = time.monotonic() + 60
    while worker.poll() is None and time.monotonic() < deadline:
        try:
            worker_figures(metrics_port)
        except requests.ConnectionError:
            time.sleep(0.2)
            continue
        return worker
    worker.kill()
    raise RuntimeError("the Celery worker did not start")


def fill(push: PushService) -> None:
    """The allies, online, each with a phone subscribed to `push`."""
    from allies.models import AllyPresence  # models load once main() has set Django up
    from kibo.models import PushDevice, User
    from tests.factories import make_quote, wallet

    make_quote(token="USDT", fiat="BOB", rate="9.80")
    allies = User.objects.bulk_create(
        User(wallet_address=wallet(), role=User.Role.ALLY, country="BO", verified=True)
        for _ in range(ALLIES)
    )
    # switched on, and no working hours to turn: what ally_switch leaves
    AllyPresence.objects.bulk_create(AllyPresence(ally=ally, switched_on=True) for ally in allies)
    devices = []
    for ally in allies:
        subscription = push.subscription()
        devices.append(
            PushDevice(
                user=ally,
                endpoint=subscription["endpoint"],
                p256dh=subscription["keys"]["p256dh"],
                auth=subscription["keys"]["auth"],
                language="es",
                label="Chrome · Android",
            )
        )
    PushDevice.objects.bulk_create(devices)


def measure(push: PushService, label: str, *, worker: psutil.Popen, metrics_port: int) -> Fanout:
    """Put a paid order on the board; wait for its pushes, and for the workers' last batch."""
    from kibo.notices import BATCH_USERS  # models load once main() has set Django up
    from orders.services import order_mark_paid
    from tests.factories import make_order, tx_hash

    order = make_order(fiat="BOB")
    received = len(push.messages)
    before = worker_figures(metrics_port)
    cpu_before = (tree_cpu_seconds(worker), own_cpu_seconds(), machine_cpu_seconds())
    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.monotonic()))  # before the call's
        order_mark_paid(
            order_id=order.pk, deposit_tx_hash=tx_hash(), amount_received=order.amount_crypto
        )
    messages = push.wait_for(received + ALLIES, timeout=60 + ALLIES / 10)[received:]
    runs = ("kibo_celery_task_runs_total", DELIVER_TASK)
    while worker_figures(metrics_port)[runs] < before[runs] + math.ceil(ALLIES / BATCH_USERS):
        time.sleep(0.02)
    settled = time.monotonic()
    cpu_after = (tree_cpu_seconds(worker), own_cpu_seconds(), machine_cpu_seconds())
    after = worker_figures(metrics_port)
    assert {m.data["tag"] for m in messages} == {f"order:{order.pk}"}, "another order's pushes"
    assert len({m.endpoint for m in messages}) == ALLIES and not push.refused, push.refused
    arrivals = sorted(m.arrived_at - committed[0] for m in messages)
    worker_cpu, service_cpu, machine_cpu = (
        a - b for a, b in zip(cpu_after, cpu_before, strict=True)
    )
    return Fanout(
        label=label,
        pushes=len(messages),
        first_s=arrivals[0],
        last_s=arrivals[-1],
        settled_s=settled - committed[0],
        worker_cpu_s=worker_cpu,
        service_cpu_s=service_cpu,
        machine_cpu_s=machine_cpu,
        figures=Counter({key: after[key] - before[key] for key in after}),
    )


def main() -> int:
    shutil.rmtree(STATE_DIR / f"{NAME}-postgres", ignore_errors=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kibo.settings.local"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: measure what production does
    os.environ["KIBO_LOG_LEVEL"] = "WARNING"  # not a line per order, here or in the worker
    os.environ["KIBO_PUSH_SERVICES"] = "http://127.0.0.1:*"  # browsers subscribe through it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the embedded servers too
    with (
        embedded_services(NAME),
        PushService(vapid_public_key=os.environ["KIBO_VAPID_PUBLIC_KEY"]) as push,
    ):
        django.setup()  # once the embedded servers' URLs are in the environment
        call_command("migrate", verbosity=0)
        fill(push)
        app.control.purge()  # what an earlier bench left in the queue
        metrics_port = free_port()
        worker = start_workers(metrics_port)
        labels = ["first order, workers just started"]
        labels += [f"order {n}, workers warm" for n in range(2, ORDERS + 1)]
        try:
            runs = [
                measure(push, label, worker=worker, metrics_port=metrics_port) for label in labels
            ]
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        connection.close()
    print(
        f"\nWeb Push to {ALLIES:,} online allies of Bolivia, a phone each, by Celery prefork "
        f"--concurrency {CONCURRENCY} on {psutil.cpu_count()} cores.\nThe push service is on "
        "loopback, in this process: it checks and decrypts every message on the same cores.\n"
    )
    print(TIMES_HEADER)
    for run in runs:
        print(times_row(run))
    print(f"\n{COSTS_HEADER}")
    for run in runs:
        print(costs_row(run))
    print(COSTS_LEGEND, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
