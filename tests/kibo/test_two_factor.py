"""Staff sign in to the admin with a password and a code from their authenticator app."""

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from kibo.models import User
from tests.factories import wallet

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(settings):
    settings.KIBO_STAFF_TWO_FACTOR = True
    return User.objects.create_superuser(wallet(), username="boss", password="a-good-password-1")


def _code(device: TOTPDevice) -> str:
    """What the authenticator app shows now."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def _enroll(username: str) -> tuple[TOTPDevice, str]:
    out = io.StringIO()
    call_command("staff_totp", username, stdout=out)
    return TOTPDevice.objects.get(user__username=username), out.getvalue()


def _sign_in(client: Client, **fields):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "boss", "password": "a-good-password-1", **fields},
    )


def test_a_password_alone_does_not_open_the_admin(boss):
    _enroll("boss")
    client = Client()
    page = client.get("/admin/login/").content.decode()
    assert 'name="otp_token"' in page and 'autocomplete="one-time-code"' in page

    response = _sign_in(client)

    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # back to the login page


def test_the_code_from_the_enrolled_app_opens_it(boss):
    device, printed = _enroll("boss")
    assert device.config_url in printed  # what the app scans

    client = Client()
    response = _sign_in(client, otp_token=_code(device))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/dashboard/").status_code == 200


def test_a_code_works_once_and_a_wrong_one_never(boss):
    device, _ = _enroll("boss")
    code = _code(device)
    assert _sign_in(Client(), otp_token=code).status_code == 302
    assert _sign_in(Client(), otp_token=code).status_code == 200  # used already
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = _sign_in(Client(), otp_token=wrong)
    assert refused.status_code == 200 and "errornote" in refused.content.decode()


def test_a_session_signed_in_without_the_second_factor_is_not_staff(boss):
    client = Client()
    client.force_login(boss)  # a password session, no device verified
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/dashboard/").status_code == 302


def test_with_two_factor_off_the_password_is_enough(settings):
    settings.KIBO_STAFF_TWO_FACTOR = False
    User.objects.create_superuser(wallet(), username="boss", password="a-good-password-1")
    client = Client()
    assert 'name="otp_token"' not in client.get("/admin/login/").content.decode()
    assert _sign_in(client).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_enrolling_someone_who_is_not_staff_is_refused():
    from django.core.management.base import CommandError

    User.objects.create_user(wallet(), username="payer")
    with pytest.raises(CommandError, match="No staff member"):
        call_command("staff_totp", "payer", stdout=io.StringIO())
