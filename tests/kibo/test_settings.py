import os
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR

GOOD = {
    "DJANGO_SETTINGS_MODULE": "kibo.settings.production",
    "DJANGO_SECRET_KEY": "x" * 50,
    "DJANGO_DEBUG": "false",
    "KIBO_ESCROW_PRIVATE_KEY": "0x" + "1" * 64,
    "KIBO_S3_BUCKET": "kibo-private",
}


def load_production_settings(**overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, **GOOD, **overrides}
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_starts_with_safe_settings():
    result = load_production_settings()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_SECRET_KEY": None}, "Set DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "Set DJANGO_SECRET_KEY"),
        ({"KIBO_ESCROW_PRIVATE_KEY": None}, "Set KIBO_ESCROW_PRIVATE_KEY"),
    ],
)
def test_production_refuses_to_start_unsafe(overrides, message):
    result = load_production_settings(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_escrow_key_never_appears_in_a_refusal():
    key = "0x" + "ab" * 32
    result = load_production_settings(KIBO_ESCROW_PRIVATE_KEY=key, DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert key not in result.stderr and key not in result.stdout
