"""gunicorn's settings for Kibo's web tier (`gunicorn -c deploy/gunicorn.conf.py ...`).

Prometheus metrics in multiprocess mode (kibo.metrics): with PROMETHEUS_MULTIPROC_DIR set,
every worker writes its counts to files there. The directory is emptied when gunicorn
starts (counts of an earlier run would add up with this one's), and a worker's live gauges
are forgotten when it exits.
"""

import os
import shutil

from prometheus_client import multiprocess


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
