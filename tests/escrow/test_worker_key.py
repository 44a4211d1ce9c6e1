import subprocess

import pytest

from kibo.env import BASE_DIR
from tests.helpers.processes import worker_command, worker_env

pytestmark = pytest.mark.slow  # starts worker processes

OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def start_worker(**env_changes) -> subprocess.CompletedProcess:
    return subprocess.run(
        worker_command("--pool", "solo"),
        cwd=BASE_DIR,
        env=worker_env(**env_changes),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            OTHER_KEY,
            "the signer signs for 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, but "
            "KIBO_ESCROW_ADDRESS is 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        ),
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
