"""An ally works in the country staff approved, and only there."""

import pytest
from django.contrib.messages import get_messages

from allies.models import AllyApplication
from allies.services import ally_apply, user_country_change
from audit.models import Action, Log
from kibo.errors import Conflict, NotFound
from kibo.models import User
from orders.errors import OrderNotFound
from orders.models import OrderStatus
from orders.services import order_take
from tests.factories import make_ally, make_paid_order, make_user

pytestmark = pytest.mark.django_db


def _said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_ally_cannot_change_country(client):
    # given an approved ally of Bolivia who has never paid a QR
    ally = make_ally(country="BO")
    client.force_login(ally)

    # when they ask to be of Mexico
    response = client.post("/account/country/", {"country": "MX"})

    # then nothing changes, and they are told why
    ally.refresh_from_db()
    assert ally.country == "BO"
    assert (
        "You are an ally of the country Kibo approved you for; write to us to change it."
        in _said(response)
    )


def test_an_applicant_cannot_change_country(client):
    user = make_user(country="BO")
    ally_apply(user=user, country="BO", display_name="Ana", bank="BNB")
    client.force_login(user)

    response = client.post("/account/country/", {"country": "MX"})

    user.refresh_from_db()
    assert user.country == "BO"
    assert (
        "Your application as an ally is for the country you chose; it can't change now."
        in _said(response)
    )
    # and the payer's page offers no country picker
    assert 'id="change-country"' not in client.get("/orders/new/").content.decode()


def test_taking_an_order_follows_the_approved_country_not_the_user_row():
    # given an ally of Bolivia whose user row says Mexico (however it came to say so)
    ally = make_ally(country="BO")
    User.objects.filter(pk=ally.pk).update(country="MX")
    ally.refresh_from_db()
    mexican = make_paid_order(fiat="MXN")

    # when they take a Mexican order, it is not theirs to see
    with pytest.raises(OrderNotFound):
        order_take(order_id=mexican.pk, ally=ally)
    mexican.refresh_from_db()
    assert mexican.status == OrderStatus.AVAILABLE and mexican.ally is None


def test_a_role_set_by_hand_without_an_approval_takes_nothing():
    user = make_user(country="BO")
    User.objects.filter(pk=user.pk).update(role=User.Role.ALLY, verified=True)
    user.refresh_from_db()
    with pytest.raises(OrderNotFound):
        order_take(order_id=make_paid_order().pk, ally=user)


def test_staff_change_an_allys_country_in_the_admin_audited(admin_client, admin_user):
    # given an ally of Bolivia
    ally = make_ally(country="BO")
    bolivian, mexican = make_paid_order(fiat="BOB"), make_paid_order(fiat="MXN")

    # when staff set Mexico on the user's page
    page = admin_client.get(f"/admin/kibo/user/{ally.pk}/change/")
    assert page.status_code == 200
    response = admin_client.post(
        f"/admin/kibo/user/{ally.pk}/change/",
        {
            "wallet_address": ally.wallet_address,
            "role": ally.role,
            "country": "MX",
            "verified": "on",
            "is_active": "on",
            "reputation": "5.00",
            "successful_orders": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    # then the approved application says Mexico, and the change is audited
    ally.refresh_from_db()
    application = AllyApplication.objects.get(user=ally)
    assert ally.country == application.country == "MX"
    entry = Log.objects.get(action=Action.COUNTRY_CHANGED)
    assert entry.actor_wallet == admin_user.wallet_address
    assert entry.metadata == {
        "user": ally.wallet_address,
        "old": "BO",
        "new": "MX",
        "staff": str(admin_user),
    }
    # and the ally now takes Mexico's orders, and no longer Bolivia's
    with pytest.raises(OrderNotFound):
        order_take(order_id=bolivian.pk, ally=ally)
    assert order_take(order_id=mexican.pk, ally=ally).ally == ally


def test_only_staff_change_a_country():
    ally = make_ally(country="BO")
    with pytest.raises(NotFound):
        user_country_change(user_id=ally.pk, country="MX", staff=make_ally())
    assert not Log.objects.filter(action=Action.COUNTRY_CHANGED).exists()


def test_a_payer_keeps_their_country_while_paying(admin_user):
    order = make_paid_order(fiat="BOB")
    with pytest.raises(Conflict):
        user_country_change(user_id=order.user_id, country="MX", staff=admin_user)
