import os
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR
from tests.conftest import worker_database_url

OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def start_worker(**env_changes) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DJANGO_SETTINGS_MODULE": "kibo.settings.test",
        **env_changes,
    }
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kibo",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("key", "message"),
    [
        (OTHER_KEY, "belongs to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, but SYSTEM_CONFIG"),
        (None, "KIBO_ESCROW_PRIVATE_KEY is not set"),
        ("0x1234", "not a valid private key"),
    ],
)
def test_the_worker_refuses_to_start_without_the_escrow_wallets_key(key, message):
    result = start_worker(KIBO_ESCROW_PRIVATE_KEY=key)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "The worker refuses to start" in output and message in output
    assert OTHER_KEY not in output
