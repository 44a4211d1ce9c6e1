import pytest
from django.contrib.messages import get_messages
from eth_account import Account

from kibo.cache import hit
from kibo.models import User
from tests.factories import make_order, make_quote, make_user
from tests.helpers.auth import prepared, sign, sign_in

pytestmark = pytest.mark.django_db


def test_the_nonce_is_random_and_json():
    from django.test import Client

    one, two = Client().get("/auth/nonce/").json(), Client().get("/auth/nonce/").json()
    assert set(one) == {"nonce"} and one["nonce"] != two["nonce"] and len(one["nonce"]) >= 16


def test_a_first_sign_in_creates_the_user_and_a_session(client):
    account = Account.create()

    response = sign_in(client, account)

    assert response.status_code == 200
    assert response.json() == {"address": account.address, "role": "user"}
    user = User.objects.get(wallet_address=account.address)
    assert user.role == User.Role.USER and user.country is None and user.last_active
    assert client.get("/").url == "/orders/new/"  # signed in: straight to paying a QR


def test_every_sign_in_updates_last_active(client):
    account = Account.create()
    sign_in(client, account)
    first = User.objects.get(wallet_address=account.address).last_active
    client.post("/auth/logout/")
    sign_in(client, account)
    assert User.objects.get(wallet_address=account.address).last_active > first


def test_a_nonce_is_used_once(client):
    account = Account.create()
    text = prepared(client, account)
    assert sign_in(client, account, text).status_code == 200
    client.post("/auth/logout/")

    replay = sign_in(client, account, text)

    assert replay.status_code == 401 and "already used" in replay.json()["error"]


def test_a_nonce_from_another_session_is_refused(client):
    from django.test import Client

    account = Account.create()
    text = prepared(Client(), account)  # someone else's session got this nonce
    prepared(client, account)

    response = sign_in(client, account, text)

    assert response.status_code == 401
    assert "_auth_user_id" not in client.session


def test_a_message_for_another_site_is_refused(client):
    account = Account.create()
    text = prepared(client, account).replace("testserver", "evil.example")
    response = sign_in(client, account, text)
    assert response.status_code == 401 and "another site" in response.json()["error"]
    assert not User.objects.filter(wallet_address=account.address).exists()


def test_a_chain_kibo_does_not_use_is_refused(client):
    account = Account.create()
    response = sign_in(client, account, prepared(client, account, chain_id=1))
    assert response.status_code == 401 and "network" in response.json()["error"]


@pytest.mark.parametrize(
    ("message", "signature"), [("hello", "0x" + "11" * 65), ("", ""), ("x" * 5000, "0x")]
)
def test_garbage_is_a_bad_request_and_no_session(client, message, signature):
    client.get("/auth/nonce/")
    response = client.post("/auth/login/", {"message": message, "signature": signature})
    assert response.status_code == 400 and response.json()["error"]
    assert "_auth_user_id" not in client.session


def test_staff_cannot_sign_in_with_only_a_wallet(client):
    account = Account.create()
    User.objects.create_superuser(account.address, password="pw-staff-123", username="boss")
    response = sign_in(client, account)
    assert response.status_code == 401 and "password" in response.json()["error"]


def test_too_many_attempts_from_one_address_are_refused_with_429(client, settings):
    settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP = 3
    for _ in range(3):
        client.post("/auth/login/", {"message": "x", "signature": "0x"})
    response = client.post("/auth/login/", {"message": "x", "signature": "0x"})
    assert response.status_code == 429 and "Wait a minute" in response.json()["error"]
    assert 0 < int(response["Retry-After"]) <= 61


def test_attempts_that_do_not_prove_the_wallet_never_lock_its_owner_out(client, settings):
    from django.test import Client

    # given a rival who posts sign-ins for someone else's wallet, signed with another key
    settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_WALLET = 2
    account, rival = Account.create(), Account.create()
    for _ in range(6):
        text = prepared(client, account)
        assert sign_in(client, account, text, sign(rival, text)).status_code == 401
        unsigned = client.post("/auth/login/", {"message": text, "signature": "0x"})
        assert unsigned.status_code in (400, 401)

    # then the owner still signs in, from anywhere
    assert sign_in(Client(REMOTE_ADDR="10.0.0.9"), account).status_code == 200


def test_attempts_the_wallet_signed_count_against_the_wallet(client, settings):
    from django.test import Client

    settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_WALLET = 2
    account = Account.create()
    text = prepared(client, account)
    signature = sign(account, text)
    assert sign_in(client, account, text, signature).status_code == 200
    client.post("/auth/logout/")
    assert sign_in(client, account, text, signature).status_code == 401  # a replay

    # the wallet's own signatures have used its two attempts: even a good one waits now
    response = sign_in(Client(REMOTE_ADDR="10.0.0.9"), account)
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 61


def test_the_rate_limiter_counts_per_key_within_its_window():
    first, second, third = (hit("k1", limit=2) for _ in range(3))
    assert first is None and second is None and 0 < third <= 61
    assert hit("k2", limit=2) is None


def test_sign_out_ends_the_session(client):
    sign_in(client, Account.create())
    response = client.post("/auth/logout/")
    assert response.status_code == 302 and "_auth_user_id" not in client.session


def test_a_user_picks_a_country_until_the_first_order(client):
    user = make_user(country=None)
    client.force_login(user)

    client.post("/account/country/", {"country": "MX", "next": "/orders/new/"})
    user.refresh_from_db()
    assert user.country == "MX"

    client.post("/account/country/", {"country": "BO"})
    user.refresh_from_db()
    assert user.country == "BO"
    # a `next` that is not a path of this site (here, a word) sends home, not to an error
    for elsewhere in ("landing-page", "https://evil.example/"):
        response = client.post("/account/country/", {"country": "BO", "next": elsewhere})
        assert response.status_code == 302 and response["Location"] == "/"
    make_quote()
    make_order(user=user)
    response = client.post("/account/country/", {"country": "AR"})
    user.refresh_from_db()
    said = [str(message) for message in get_messages(response.wsgi_request)]
    assert user.country == "BO" and "Your country can't change after your first order." in said


def test_the_sign_in_page_is_in_spanish_first_and_english_on_request():
    from django.test import Client

    page = Client().get("/auth/").content.decode()
    assert 'lang="es"' in page and "Inicia sesión con tu billetera" in page
    english = Client(HTTP_ACCEPT_LANGUAGE="en").get("/auth/").content.decode()
    assert 'lang="en"' in english and "Sign in with your wallet" in english


def test_a_refused_sign_in_is_explained_in_spanish_by_default():
    from django.test import Client

    spanish = Client()
    spanish.get("/auth/nonce/")
    response = spanish.post("/auth/login/", {"message": "hola", "signature": "0x"})
    assert response.json()["error"].startswith("El mensaje de inicio de sesión no es válido")


def test_the_language_switch_remembers_english():
    from django.test import Client

    browser = Client()
    browser.post("/i18n/setlang/", {"language": "en", "next": "/auth/"})
    assert "Sign in with your wallet" in browser.get("/auth/").content.decode()
