"""gunicorn's settings for Kibo's web tier (`gunicorn -c deploy/gunicorn.conf.py ...`).

Prometheus metrics in multiprocess mode (kibo.metrics): with PROMETHEUS_MULTIPROC_DIR set,
every worker writes its counts to files there. The directory is emptied when gunicorn
starts (counts of an earlier run would add up with this one's), and a worker's live gauges
are forgotten when it exits.
"""

from kibo.telemetry import counts_forget, counts_start


def on_starting(server):
    counts_start()


def child_exit(server, worker):
    counts_forget(worker.pid)
