"""What allies and payers are told of their orders, through a real worker to the test
suite's push service (tests/helpers/push_service.py), decrypted as their phone would."""

from datetime import timedelta

import pytest
from django.db.models import F

from allies.models import AllyPenalty
from allies.services import ally_penalize, ally_penalty_lift
from kibo.services import push_device_subscribe
from orders.alerts import receipts_due_warn
from orders.disputes import dispute_decide, dispute_open
from orders.models import Order
from orders.services import (
    order_complete,
    order_expire,
    order_refund_record,
    order_release_record,
)
from tests.factories import (
    expire_timer,
    make_ally,
    make_paid_order,
    make_taken_order,
    png_upload,
    tx_hash,
)
from tests.helpers.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]  # a real worker


def phone(user, push_service) -> str:
    """The user's phone, subscribed in English (the suite's language)."""
    subscription = push_service.subscription()
    push_device_subscribe(
        user=user, subscription=subscription, language="en", user_agent="Firefox Android"
    )
    return subscription["endpoint"]


def last_told(push_service, endpoint: str, count: int) -> dict:
    """What the phone showed last, once it got `count` notices."""
    arrived = wait_for(lambda: len(push_service.messages_for(endpoint)) >= count, seconds=30)
    assert arrived, [m.data for m in push_service.messages_for(endpoint)]
    return push_service.messages_for(endpoint)[-1].data


def test_allies_and_payers_hear_of_their_orders_with_kibo_closed(
    celery_worker, push_service, admin_user
):
    ally = make_ally()
    ally_phone = phone(ally, push_service)
    celery_worker()

    # a minute left to upload the receipt: told once
    taken = make_taken_order(ally=ally, amount_fiat="120.00")
    Order.objects.filter(pk=taken.pk).update(expires_at=F("taken_at") + timedelta(seconds=30))
    assert receipts_due_warn() == 1 and receipts_due_warn() == 0
    due = last_told(push_service, ally_phone, 1)
    assert due["title"] == "One minute left" and "120.00 BOB" in due["body"]
    assert due["url"] == f"/ally/orders/{taken.pk}/"

    # the ally completes it, the payer disputes it, and staff decide for the ally
    Order.objects.filter(pk=taken.pk).update(expires_at=F("taken_at") + timedelta(minutes=5))
    completed = order_complete(order_id=taken.pk, ally=ally, proof=png_upload())
    dispute = dispute_open(order_id=completed.pk, user=completed.user, statement="Not paid")
    assert last_told(push_service, ally_phone, 2)["title"] == "A payer disputes an order"
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=False, note="Paid, per bank")
    decided = last_told(push_service, ally_phone, 3)
    assert decided["title"] == "Our staff decided the dispute"
    assert decided["body"].startswith("You were right")

    # the payout is confirmed on chain
    order_release_record(order_id=completed.pk, tx_hash=tx_hash())
    assert last_told(push_service, ally_phone, 4)["title"] == "You were paid"

    # staff lift a penalty
    penalty = ally_penalize(ally=ally, order=None, reason=AllyPenalty.Reason.TIMEOUT, minutes=30)
    ally_penalty_lift(penalty_id=penalty.pk, staff=admin_user, note="Bank was down")
    assert last_told(push_service, ally_phone, 5)["title"] == "Your penalty is lifted"

    # a payer who subscribed hears that nobody took the order and the money came back
    waiting = make_paid_order()
    payer_phone = phone(waiting.user, push_service)
    expire_timer(waiting)
    order_expire(order_id=waiting.pk)
    order_refund_record(order_id=waiting.pk, tx_hash=tx_hash())
    refunded = last_told(push_service, payer_phone, 1)
    assert refunded["title"] == "Your money is back"
    assert refunded["url"] == f"/orders/{waiting.pk}/"
    assert push_service.refused == []
