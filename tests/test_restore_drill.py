"""`make restore-drill` passes here: a real pgBackRest backup of a real PostgreSQL, restored
to a point in time, and the restored Kibo proven safe before it sends money again."""

import os
import re
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR

pytestmark = pytest.mark.slow  # a PostgreSQL cluster, a backup, a restore


def test_the_restore_drill_passes_and_prints_its_timings():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        and not key.startswith("KIBO_")  # its own cluster, broker and chain
    }
    run = subprocess.run(
        [sys.executable, "-m", "devtools.restore_drill"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    for step in (
        "full backup (pgbackrest backup --type=full)",
        "restore to the restore point (pgbackrest restore --type=time)",
        "escrow_recover: rescan, match the chain, reconcile",
    ):
        assert re.search(rf"\d+\.\d\d s  {re.escape(step)}", out), out
    for verdict in (
        "the repository holds one good full backup",
        "the payout sent after the restore point is, in the records, still held",
        "the sender paused itself on the new timeline",
        "the held payout was not signed or sent again",
        "the payout was recovered from the chain (its own transaction), not signed again",
        "the deposit after the restore point was credited from the checkpoint, once",
        "escrow_reconcile is clean",
        "only then the sender resumes",
        "sending again pays nobody twice",
    ):
        assert f"ok  {verdict}" in out, out
    assert "FAILED" not in out and "The drill passed" in out
