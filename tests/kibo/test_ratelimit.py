"""Rate limits (429 with Retry-After) on what is cheap to send and dear to answer, keyed by
the signed-in person and by a client address no client can forge."""

import pytest
from django.test import Client, RequestFactory

from kibo.ratelimit import CLIENT_FACTOR, client_ip
from orders.models import Order
from tests.factories import (
    make_order,
    make_quote,
    make_taken_order,
    make_user,
    png_upload,
    qr_png,
    shop_qr,
)

pytestmark = pytest.mark.django_db


def _qr_picture():
    return qr_png(shop_qr())


def _retry_after(response) -> int:
    assert response.status_code == 429, response.status_code
    seconds = int(response["Retry-After"])
    assert 0 < seconds <= 61
    return seconds


def test_reading_qr_pictures_is_limited_per_person(client, settings):
    settings.KIBO_RATE_LIMITS = {**settings.KIBO_RATE_LIMITS, "qr-image": 2}
    client.force_login(make_user())
    make_quote()
    for _ in range(2):
        response = client.post("/orders/qr/", {"qr_image": _qr_picture()}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
    refused = client.post("/orders/qr/", {"qr_image": _qr_picture()}, HTTP_HX_REQUEST="true")
    _retry_after(refused)
    assert "Too many attempts" in refused.content.decode()
    # typing an amount (the QR's text, no picture) is not what the limit is for
    assert client.post("/orders/qr/", {"qr_text": "x"}, HTTP_HX_REQUEST="true").status_code == 422


def test_deposit_reports_are_limited_and_a_refused_one_does_nothing(client, settings):
    settings.KIBO_RATE_LIMITS = {**settings.KIBO_RATE_LIMITS, "deposit-report": 1}
    order = make_order()
    client.force_login(order.user)
    url = f"/orders/{order.pk}/deposit/"
    assert client.post(url, {"tx_hash": "0x12"}, HTTP_HX_REQUEST="true").status_code == 400
    _retry_after(client.post(url, {"tx_hash": "0x" + "ab" * 32}, HTTP_HX_REQUEST="true"))
    assert Order.objects.get(pk=order.pk).status == order.status


def test_receipt_uploads_are_limited_per_ally(client, settings):
    settings.KIBO_RATE_LIMITS = {**settings.KIBO_RATE_LIMITS, "upload": 1}
    order = make_taken_order()
    client.force_login(order.ally)
    url = f"/ally/orders/{order.pk}/proof/"
    assert client.post(url, {"proof": b"not a file"}).status_code == 422  # a mistake counts
    refused = client.post(url, {"proof": png_upload()})
    _retry_after(refused)
    assert "Too many attempts" in refused.content.decode()


def test_a_client_address_gets_more_room_than_one_person(settings):
    settings.KIBO_RATE_LIMITS = {**settings.KIBO_RATE_LIMITS, "qr-image": 1}
    make_quote()
    statuses = []
    for _ in range(CLIENT_FACTOR + 1):  # different people, one shop's wifi
        client = Client(REMOTE_ADDR="203.0.113.7")
        client.force_login(make_user())
        response = client.post("/orders/qr/", {"qr_image": _qr_picture()}, HTTP_HX_REQUEST="true")
        statuses.append(response.status_code)
    assert statuses == [200] * CLIENT_FACTOR + [429]


@pytest.mark.parametrize(
    ("hops", "forwarded", "remote", "client"),
    [
        (0, "6.6.6.6", "10.0.0.2", "10.0.0.2"),  # no proxy: the header is anybody's
        (1, "198.51.100.4", "10.0.0.2", "198.51.100.4"),
        (1, "6.6.6.6, 198.51.100.4", "10.0.0.2", "198.51.100.4"),  # a forged left part
        (2, "6.6.6.6, 198.51.100.4, 10.0.0.3", "10.0.0.2", "198.51.100.4"),
        (2, "198.51.100.4", "10.0.0.2", "10.0.0.2"),  # shorter than the proxies: not trusted
        (1, "not-an-address", "10.0.0.2", "10.0.0.2"),
        (1, "2001:db8::1", "10.0.0.2", "2001:db8::1"),
    ],
)
def test_the_client_address_comes_from_the_trusted_proxies_only(
    settings, hops, forwarded, remote, client
):
    settings.KIBO_TRUSTED_PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == client


def test_a_forged_forwarded_header_does_not_escape_the_sign_in_limit(settings):
    settings.KIBO_TRUSTED_PROXY_HOPS = 1
    settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP = 2
    statuses = [
        Client(HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 198.51.100.4")
        .post("/auth/login/", {"message": "x", "signature": "0x"})
        .status_code
        for n in range(3)
    ]
    assert statuses[-1] == 429


# --- staff password sign-in ---------------------------------------------------------------


def _staff_login(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_a_staff_account_is_locked_out_after_failures_and_staff_lift_it(settings, admin_user):
    from audit.models import Action, Log
    from kibo.models import User

    settings.KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT = 3
    boss = User.objects.create_superuser(
        "0x" + "B0" * 20, username="boss", password="the-right-password-1"
    )
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    # failures by username and by wallet address count for the one account
    for name in ("boss", boss.wallet_address, "boss"):
        assert _staff_login(attacker, name, "guess").status_code == 200
    assert Log.objects.filter(action=Action.STAFF_LOCKED_OUT).count() == 1

    # locked: even the right password, from anywhere, waits (429, Retry-After)
    refused = _staff_login(Client(), "boss", "the-right-password-1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 60
    assert "locked" in refused.content.decode() and "_auth_user_id" not in refused.client.session

    # another staff member lifts it (audited), and the owner signs in
    staff = Client()
    staff.force_login(admin_user)
    staff.post("/admin/kibo/user/", {"action": "lift_lockout", "_selected_action": [boss.pk]})
    lifted = Log.objects.get(action=Action.STAFF_LOCKOUT_LIFTED)
    assert lifted.actor_wallet == admin_user.wallet_address
    owner = Client()
    assert _staff_login(owner, "boss", "the-right-password-1").status_code == 302
    assert owner.session["_auth_user_id"] == str(boss.pk)


def test_one_client_failing_on_many_names_is_limited(settings):
    settings.KIBO_ADMIN_LOGIN_FAILURES_PER_CLIENT = 3
    client = Client(REMOTE_ADDR="198.51.100.77")
    statuses = [_staff_login(client, f"name{n}", "guess").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert _staff_login(Client(REMOTE_ADDR="198.51.100.78"), "name9", "x").status_code == 200
