import os
import subprocess
import sys

import pytest

from kibo.env import BASE_DIR

pytestmark = pytest.mark.slow  # a Python process per setting

ANVIL_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
GOOD = {
    "DJANGO_SETTINGS_MODULE": "kibo.settings.production",
    "DJANGO_SECRET_KEY": "Kq3-vN8s_Zr1xLw7Tb0eYh5Gm2Jc9Pd4Ua6Fo_Ri8Sn3Wt1Ex7Vy2Bk5Hl0Qz-Mg",
    "DJANGO_DEBUG": "false",
    "KIBO_ESCROW_ADDRESS": "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A",  # key 0x11…11
    "KIBO_ESCROW_PRIVATE_KEY": None,  # the web tier never has it
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
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "Set DJANGO_SECRET_KEY"),  # long, but not random
        ({"KIBO_ESCROW_ADDRESS": None}, "Set KIBO_ESCROW_ADDRESS"),
        ({"KIBO_ESCROW_ADDRESS": "0x1234"}, "Set KIBO_ESCROW_ADDRESS"),
        # anvil's and Hardhat's account 0 and account 19, whose keys everyone knows
        (
            {"KIBO_ESCROW_ADDRESS": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"},
            "KIBO_ESCROW_ADDRESS is a development account whose key everyone knows",
        ),
        (
            {"KIBO_ESCROW_ADDRESS": "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199"},
            "KIBO_ESCROW_ADDRESS is a development account whose key everyone knows",
        ),
        (
            {"KIBO_ESCROW_PRIVATE_KEY": ANVIL_ACCOUNT_0_KEY},
            "KIBO_ESCROW_PRIVATE_KEY is a development key everyone knows",
        ),
    ],
)
def test_production_refuses_to_start_unsafe(overrides, message):
    result = load_production_settings(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_escrow_key_never_appears_in_a_refusal():
    for key in ("0x" + "ab" * 32, ANVIL_ACCOUNT_0_KEY):
        result = load_production_settings(KIBO_ESCROW_PRIVATE_KEY=key, DJANGO_DEBUG="true")
        assert result.returncode != 0
        assert key not in result.stderr and key not in result.stdout
        result = load_production_settings(KIBO_ESCROW_PRIVATE_KEY=key)
        assert key not in result.stderr and key not in result.stdout


def test_the_web_tier_starts_without_the_escrow_key_and_reads_the_address_from_the_environment():
    # given production settings with the escrow's public address and no key at all
    code = (
        "import django; django.setup(); from escrow.selectors import escrow_address;"
        " print(escrow_address())"
    )
    # when a web process starts
    result = load_production_settings(code, KIBO_ESCROW_ADDRESS=GOOD["KIBO_ESCROW_ADDRESS"].lower())
    # then it runs, and payers are told the address from the environment (EIP-55)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == GOOD["KIBO_ESCROW_ADDRESS"]


def test_check_deploy_passes_with_no_warning():
    # given production settings and a realistic environment (a TLS proxy in front)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={
            key: value
            for key, value in {**os.environ, **GOOD, "KIBO_TRUSTED_PROXY_HOPS": "1"}.items()
            if value is not None and key != "DJANGO_ALLOW_ASYNC_UNSAFE"  # the browser tests'
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then Django's deployment checklist has nothing to say
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def _setting(name: str, **environment) -> str:
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        f" print(repr(getattr(s, {name!r}, None)))"
    )
    result = load_production_settings(code, **environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_browsers_keep_to_https_for_a_year_subdomains_included():
    assert _setting("SECURE_HSTS_SECONDS") == str(365 * 24 * 3600)
    assert _setting("SECURE_HSTS_INCLUDE_SUBDOMAINS") == "True"
    assert _setting("SECURE_HSTS_PRELOAD") == "False"
    assert _setting("SECURE_HSTS_PRELOAD", DJANGO_SECURE_HSTS_PRELOAD="true") == "True"


def test_x_forwarded_proto_is_believed_only_behind_a_trusted_proxy():
    assert _setting("SECURE_PROXY_SSL_HEADER") == "None"
    behind = _setting("SECURE_PROXY_SSL_HEADER", KIBO_TRUSTED_PROXY_HOPS="1")
    assert behind == "('HTTP_X_FORWARDED_PROTO', 'https')"
