import os
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR

pytestmark = pytest.mark.slow  # a Python process per setting

GOOD = {
    "DJANGO_SETTINGS_MODULE": "kibo.settings.production",
    "DJANGO_SECRET_KEY": "x" * 50,
    "DJANGO_DEBUG": "false",
    "KIBO_ESCROW_PRIVATE_KEY": "0x" + "1" * 64,
    "KIBO_S3_BUCKET": "kibo-private",
}


def load_production_settings(
    code: str = "import django; django.setup(); print('started')", **overrides
) -> subprocess.CompletedProcess:
    env = {**os.environ, **GOOD, **overrides}
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", code],
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


def test_production_never_loads_the_development_tools():
    # given production settings, every URL, admin and task module loaded
    code = (
        "import sys, django; django.setup(); import kibo.urls; from kibo.celery import app;"
        " app.loader.import_default_modules();"
        " from django.conf import settings;"
        " print('devtools' in settings.INSTALLED_APPS,"
        " sorted(m for m in sys.modules if m.split('.')[0] == 'devtools'))"
    )
    # when the process starts
    result = load_production_settings(code)
    # then nothing of devtools is installed or imported
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "[]"]


def test_the_image_leaves_the_development_tools_out():
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {"devtools", "tests", "bench"} <= set(ignored)


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
