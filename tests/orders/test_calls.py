"""Calling allies to a new order, and telling payers and allies what happened, by Web Push
to the test suite's own push service (tests/helpers/push_service.py), which checks the
VAPID signature and decrypts each message with the subscription's private key."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from allies.models import AllyPenalty
from allies.presence import ally_presence, ally_switch
from kibo.models import PushDevice
from kibo.notices import Delivery, compose, notice_deliver, retry_in
from kibo.services import push_device_subscribe
from kibo.telemetry import NOTICES_SENT
from orders.calls import order_call_allies
from orders.models import OrderCall
from orders.services import order_take, orders_expire_due
from tests.factories import expire_timer, make_ally, make_paid_order, make_taken_order, make_user
from tests.helpers.processes import wait_for

ANDROID_CHROME = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari"


def subscribe(user, push_service, *, language="es") -> dict:
    subscription = push_service.subscription()
    push_device_subscribe(
        user=user, subscription=subscription, language=language, user_agent=ANDROID_CHROME
    )
    return subscription


def online_ally(**fields):
    ally = make_ally(**fields)
    ally_switch(ally=ally, online=True)
    return ally


def sent(kind: str, outcome: str, channel: str = "push") -> float:
    return NOTICES_SENT.labels(channel, kind, outcome)._value.get()


@pytest.mark.django_db
def test_a_new_order_calls_the_online_allies_who_may_take_it(django_capture_on_commit_callbacks):
    # given allies of Bolivia: online, offline, penalized, holding an order; one of Mexico
    free = online_ally(country="BO")
    offline = make_ally(country="BO")
    penalized = online_ally(country="BO")
    AllyPenalty.objects.create(
        ally=penalized,
        reason="TIMEOUT",
        penalty_minutes=30,
        penalty_until=timezone.now() + timedelta(minutes=30),
    )
    busy = online_ally(country="BO")
    make_taken_order(ally=busy)
    online_ally(country="MX")
    # when a Bolivian order reaches the board and its call runs
    order = make_paid_order(fiat="BOB")
    with django_capture_on_commit_callbacks() as queued:
        call = order_call_allies(order_id=order.pk)
    # then only the free online ally is told, and the call counts the country's online allies
    assert call.told == [free.pk] and call.told_count == 1
    assert call.online == 3  # free, penalized and busy are online; only free may take it
    assert len(queued) == 1  # the notice, queued on commit
    # and a second delivery of the task calls nobody again
    assert order_call_allies(order_id=order.pk) is None
    del offline


@pytest.mark.django_db
def test_an_order_taken_before_its_call_calls_nobody():
    order = make_taken_order()
    assert order_call_allies(order_id=order.pk) is None
    assert not OrderCall.objects.filter(order=order).exists()


@pytest.mark.django_db
def test_a_notice_reaches_the_device_encrypted_and_signed(push_service):
    # given an ally with two devices, one Spanish, one English
    ally = make_ally()
    spanish = subscribe(ally, push_service, language="es")
    english = subscribe(ally, push_service, language="en")
    notice = compose(
        "test", lambda: ("Title", "Body"), url="/ally/", tag="order:1", ttl=120, urgency="high"
    )
    # when it is delivered
    left = notice_deliver(notice=notice, user_ids=[str(ally.pk)])
    # then the push service took both, checked VAPID, and decrypted what each shows
    assert left.devices == [] and left.chats == []
    messages = {m.endpoint: m for m in push_service.wait_for(2)}
    assert messages[spanish["endpoint"]].data["lang"] == "es"
    assert messages[english["endpoint"]].data == {
        "title": "Title",
        "body": "Body",
        "url": "/ally/",
        "tag": "order:1",
        "lang": "en",
        "timestamp": int(notice.due * 1000),
    }
    assert messages[english["endpoint"]].urgency == "high"
    # the push service reads the topic in clear: it replaces, it doesn't name the order
    assert messages[english["endpoint"]].topic == notice.topic and "order" not in notice.topic
    assert 0 < messages[english["endpoint"]].ttl <= 120
    assert push_service.refused == []
    assert PushDevice.objects.filter(user=ally, last_pushed_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_a_device_the_push_service_forgot_is_removed_and_a_failure_retried(push_service):
    ally = make_ally()
    gone, flaky = subscribe(ally, push_service), subscribe(ally, push_service)
    push_service.answer(gone["endpoint"], 410)
    push_service.answer(flaky["endpoint"], 503, 201)
    notice = compose("test-retry", lambda: ("T", "B"), url="/", tag="t")
    before = sent("test-retry", "gone")

    left = notice_deliver(notice=notice, user_ids=[str(ally.pk)])

    assert not PushDevice.objects.filter(endpoint=gone["endpoint"]).exists()
    flaky_device = PushDevice.objects.get(endpoint=flaky["endpoint"])
    assert left.devices == [str(flaky_device.pk)]
    assert sent("test-retry", "gone") == before + 1
    assert retry_in(notice, left, attempt=1) == 2 and retry_in(notice, left, attempt=5) is None
    # the retry goes to what was left, and arrives
    again = notice_deliver(notice=notice, user_ids=[str(ally.pk)], device_ids=left.devices)
    assert again.devices == []
    assert [m.endpoint for m in push_service.wait_for(1)] == [flaky["endpoint"]]


@pytest.mark.django_db
def test_a_notice_past_its_time_to_live_is_not_retried():
    notice = compose("late", lambda: ("T", "B"), url="/", tag="t", ttl=1)
    assert retry_in(notice, Delivery(devices=[], chats=[]), attempt=1) is None  # too late


@pytest.mark.slow  # a real worker through the real broker
@pytest.mark.django_db(transaction=True)
def test_an_ally_with_kibo_closed_is_told_of_a_new_order_and_an_offline_one_is_not(
    celery_worker, push_service
):
    # given an online ally and an offline one, both with a subscribed phone (Kibo closed)
    online = online_ally(country="BO")
    offline = make_ally(country="BO")
    told = subscribe(online, push_service)
    subscribe(offline, push_service)
    celery_worker()
    # when a payer's deposit puts an order on Bolivia's board
    order = make_paid_order(fiat="BOB", amount_fiat="150.00")
    # then the online ally's phone gets the order, decrypted by the push service
    (message,) = push_service.wait_for(1, timeout=30)
    assert message.endpoint == told["endpoint"]
    assert message.data["title"] == "Pedido nuevo: 150,00 BOB"
    assert message.data["url"] == "/ally/" and message.data["tag"] == f"order:{order.pk}"
    payout = f"{order.payout_crypto:.2f}".replace(".", ",")
    assert f"Recibes {payout}" in message.data["body"] and "para tomarlo" in message.data["body"]
    assert message.urgency == "high" and message.ttl <= 300
    # and nothing reaches the offline ally
    assert not wait_for(lambda: len(push_service.messages) > 1, seconds=2)
    # when the payer opted in and the ally takes it, the payer hears of it
    payer_phone = subscribe(order.user, push_service)
    order_take(order_id=order.pk, ally=online)
    assert wait_for(lambda: push_service.messages_for(payer_phone["endpoint"]), seconds=30)
    (taken,) = push_service.messages_for(payer_phone["endpoint"])
    assert taken.data["title"] == "Un aliado tomó tu pedido"


@pytest.mark.django_db(transaction=True)
def test_orders_that_run_out_while_an_ally_is_busy_do_not_count_against_them():
    # given an online ally told of three orders, who then takes a fourth
    ally = online_ally(country="BO")
    orders = [make_paid_order(fiat="BOB") for _ in range(4)]
    for order in orders:
        order_call_allies(order_id=order.pk)
    order_take(order_id=orders[3].pk, ally=ally)
    # when the three run out while the ally pays the fourth
    for order in orders[:3]:
        expire_timer(order)
    orders_expire_due()
    # then the ally is still online: they could not have taken them
    assert ally_presence(ally=ally).online


@pytest.mark.django_db(transaction=True)
def test_three_orders_run_out_in_a_row_switch_the_ally_off():
    # given an online ally told of three orders that nobody takes
    ally = online_ally(country="BO")
    orders = [make_paid_order(fiat="BOB") for _ in range(3)]
    for order in orders[:2]:
        order_call_allies(order_id=order.pk)
        expire_timer(order)
    orders_expire_due()
    assert ally_presence(ally=ally).online
    # when the third runs out too
    order_call_allies(order_id=orders[2].pk)
    expire_timer(orders[2])
    orders_expire_due()
    # then Kibo switched the ally off, without a penalty
    presence = ally_presence(ally=ally)
    assert not presence.online and presence.switched_off_for_missing
    assert not AllyPenalty.objects.filter(ally=ally).exists()
    calls = OrderCall.objects.filter(order__in=orders)
    assert {c.told_count for c in calls} == {1} and {tuple(c.told) for c in calls} == {()}
    assert {c.online_at_end for c in calls} == {1, 0}  # online until the third ran out


@pytest.mark.django_db
def test_a_payers_phone_subscribes_and_is_removed_from_the_order_page(client, push_service):
    payer = make_user(country="BO")
    client.force_login(payer)
    subscription = push_service.subscription()

    response = client.post(
        "/account/devices/",
        json.dumps(subscription),
        content_type="application/json",
        HTTP_USER_AGENT=ANDROID_CHROME,
    )

    assert response.status_code == 200
    device = PushDevice.objects.get(user=payer)
    assert device.label == "Chrome · Android" and device.language == "en"
    assert "Chrome · Android" in response.content.decode()
    # someone else can't remove it
    other = make_user()
    client.force_login(other)
    assert client.post(f"/account/devices/{device.pk}/remove/").status_code == 404
    client.force_login(payer)
    assert client.post(f"/account/devices/{device.pk}/remove/").status_code == 200
    assert not PushDevice.objects.exists()


@pytest.mark.django_db
def test_signing_out_stops_the_notices_of_the_devices_subscribed_there(client, push_service):
    # given a payer who subscribed this browser, and another device of theirs
    payer = make_user(country="BO")
    elsewhere = subscribe(payer, push_service)
    client.force_login(payer)
    here = push_service.subscription()
    client.post("/account/devices/", json.dumps(here), content_type="application/json")
    # when they sign out here
    client.post("/auth/logout/")
    # then the next person on this phone reads none of their notices; the other device stays
    assert list(PushDevice.objects.values_list("endpoint", flat=True)) == [elsewhere["endpoint"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda s: {**s, "endpoint": "http://10.0.0.5/internal"},  # not a push service
        # read as the push service by one parser, as 169.254.169.254 by another
        lambda s: {**s, "endpoint": "https://169.254.169.254\\@fcm.googleapis.com/x"},
        lambda s: {**s, "endpoint": "https://user@fcm.googleapis.com/x"},
        lambda s: {**s, "endpoint": "https://fcm.googleapis.com:abc/x"},
        lambda s: {**s, "endpoint": "https://fcm.googleapis.com.evil.example/x"},
        # 65 bytes that start like a P-256 point but are none
        lambda s: {**s, "keys": {**s["keys"], "p256dh": "BA" + "A" * 85}},
        lambda s: {**s, "keys": {**s["keys"], "p256dh": s["keys"]["p256dh"] + "!!"}},
        lambda s: {**s, "keys": {**s["keys"], "p256dh": "AAAA"}},  # not a P-256 point
        lambda s: {**s, "keys": {**s["keys"], "auth": "not base64!"}},
        lambda s: "not a subscription",
    ],
)
def test_a_bad_subscription_is_refused_and_changes_nothing(client, push_service, change):
    client.force_login(make_ally())
    response = client.post(
        "/account/devices/",
        json.dumps(change(push_service.subscription())),
        content_type="application/json",
    )
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert not PushDevice.objects.exists()


@pytest.mark.django_db
def test_staff_and_the_signed_out_have_no_devices(client, admin_user):
    assert client.get("/account/devices/").status_code == 404
    client.force_login(admin_user)
    assert client.get("/account/devices/").status_code == 404


@pytest.mark.django_db
def test_a_push_service_that_asks_to_wait_is_waited_for(push_service):
    ally = make_ally()
    busy = subscribe(ally, push_service)
    push_service.answer(busy["endpoint"], (429, {"Retry-After": "7"}), 201)
    notice = compose("test-429", lambda: ("T", "B"), url="/", tag="t", ttl=60)

    left = notice_deliver(notice=notice, user_ids=[str(ally.pk)])

    assert left.retry_after == 7
    assert retry_in(notice, left, attempt=1) == 7  # longer than the 2 s backoff
