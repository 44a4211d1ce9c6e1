"""The loopback push service (tests/helpers/push_service.py) delivers what pywebpush sends
as a real push service would, and refuses what a real one refuses: each check is shown to
bite with a request that breaks only that rule."""

import json
import threading
import time

import httpx
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, Vapid01, Vapid02
from pywebpush import WebPusher, WebPushException, webpush

from tests.helpers.push_service import MAX_BODY_BYTES, PushService, b64url_decode, b64url_encode

SUBJECT = "mailto:ops@kibo.example"


@pytest.fixture(scope="module")
def vapid() -> Vapid02:
    """The application server's VAPID key pair, as Kibo would keep it."""
    key = Vapid()
    key.generate_keys()
    return key


def public_key_of(key: Vapid02) -> str:
    point = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


def send(subscription: dict, data: object, vapid_key: object, **options) -> requests.Response:
    """pywebpush as Kibo calls it; a fresh claims dict each time, since webpush writes aud
    and exp into the one it is given."""
    return webpush(
        subscription_info=subscription,
        data=json.dumps(data),
        vapid_private_key=vapid_key,
        vapid_claims={"sub": SUBJECT},
        content_encoding="aes128gcm",
        ttl=60,
        **options,
    )


def claims_for(push: PushService, **changes) -> dict:
    return {"aud": push.origin, "exp": int(time.time()) + 3600, "sub": SUBJECT} | changes


def post(subscription: dict, authorization: str, *, data: bytes = b'{"order": 42}', **headers):
    """A push request written by hand, the body encrypted by pywebpush for `subscription`."""
    body = WebPusher(subscription).encode(data, "aes128gcm")["body"]
    return httpx.post(
        subscription["endpoint"],
        content=body,
        headers={
            "Authorization": authorization,
            "TTL": "60",
            "Content-Encoding": "aes128gcm",
            **headers,
        },
    )


def test_pywebpush_reaches_the_service_and_the_browser_reads_the_same_json(push_service, vapid):
    # given a browser's subscription
    subscription = push_service.subscription()
    assert set(subscription["keys"]) == {"p256dh", "auth"}
    assert len(b64url_decode(subscription["keys"]["p256dh"])) == 65
    assert len(b64url_decode(subscription["keys"]["auth"])) == 16
    # when Kibo pushes to it with pywebpush
    response = send(subscription, {"order": 42, "status": "paid"}, vapid)
    # then the service created the message and the browser decrypts it back
    assert response.status_code == 201
    assert response.headers["Location"].startswith(push_service.origin + "/message/")
    (message,) = push_service.messages
    assert message.data == {"order": 42, "status": "paid"}
    assert message.payload == b'{"order": 42, "status": "paid"}'
    assert (message.endpoint, message.ttl) == (subscription["endpoint"], 60)
    assert message.urgency is None and message.topic is None
    assert push_service.refused == []


@pytest.mark.parametrize("form", ["Vapid instance", "raw base64url", "DER base64url", "PEM file"])
def test_every_key_form_pywebpush_takes_signs_a_token_the_service_accepts(
    push_service, vapid, tmp_path, form
):
    # given the same VAPID key in each form pywebpush reads
    private_key = vapid.private_key
    if form == "Vapid instance":
        key = vapid
    elif form == "raw base64url":
        key = b64url_encode(private_key.private_numbers().private_value.to_bytes(32, "big"))
    elif form == "DER base64url":
        key = b64url_encode(
            private_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    else:
        path = tmp_path / "vapid.pem"
        path.write_bytes(vapid.private_pem())
        key = str(path)
    push_service.vapid_public_key = public_key_of(vapid)
    # when Kibo pushes with it
    send(push_service.subscription(), {"form": form}, key)
    # then the token verified against the pinned public key
    assert push_service.messages[0].data == {"form": form}


def test_pywebpush_does_not_read_a_pem_key_given_as_text(push_service, vapid):
    # given the private key as PEM text, not as a path (a trap for settings from the env)
    pem = vapid.private_pem().decode()
    # then py_vapid's from_string reads it as base64 and fails before anything is sent
    with pytest.raises(ValueError, match="Could not deserialize key data"):
        send(push_service.subscription(), {}, pem)
    assert push_service.messages == [] and push_service.refused == []


def test_urgency_and_topic_are_recorded_and_a_wrong_urgency_is_refused(push_service, vapid):
    subscription = push_service.subscription()
    # when Kibo sends RFC 8030's optional headers
    send(subscription, {}, vapid, headers={"Urgency": "high", "Topic": "order-42"})
    # then the message keeps them
    assert (push_service.messages[0].urgency, push_service.messages[0].topic) == (
        "high",
        "order-42",
    )
    # and an urgency RFC 8030 does not name is refused
    with pytest.raises(WebPushException) as refused:
        send(subscription, {}, vapid, headers={"Urgency": "urgent"})
    assert refused.value.status_code == 400
    assert "Urgency" in push_service.refused[0].reason
    assert len(push_service.messages) == 1


def test_a_token_signed_by_another_key_is_refused_though_k_names_the_right_one(push_service, vapid):
    # given a token an attacker signed with their own key, claiming Kibo's public key
    attacker = Vapid()
    attacker.generate_keys()
    token = attacker.sign(claims_for(push_service))["Authorization"].split(",k=")[0]
    # when it is sent
    response = post(push_service.subscription(), f"{token},k={public_key_of(vapid)}")
    # then the signature does not verify and nothing is delivered
    assert response.status_code == 401
    assert "signature" in response.text
    assert push_service.messages == []
    assert push_service.refused[0].status == 401


def test_a_token_with_a_changed_claim_is_refused(push_service, vapid):
    # given a valid token whose claims were rewritten after signing (a later exp)
    header, claims, signature = (
        vapid.sign(claims_for(push_service))["Authorization"].split(",k=")[0].split(".")
    )
    longer = claims_for(push_service, exp=int(time.time()) + 20 * 3600)
    tampered = b64url_encode(json.dumps(longer).encode())
    authorization = f"{header}.{tampered}.{signature},k={public_key_of(vapid)}"
    # when it is sent, and the untouched token too
    refused = post(push_service.subscription(), authorization)
    accepted = post(
        push_service.subscription(),
        f"{header}.{claims}.{signature},k={public_key_of(vapid)}",
    )
    # then only the untouched one is delivered
    assert (refused.status_code, accepted.status_code) == (401, 201)
    assert len(push_service.messages) == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://fcm.googleapis.com"}, "aud"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"exp": int(time.time()) + 25 * 3600}, "24 h"),
        ({"sub": "ops@kibo.example"}, "sub"),
    ],
    ids=["another origin", "expired", "too far ahead", "sub not a URI"],
)
def test_a_signed_token_with_a_wrong_claim_is_refused(push_service, vapid, claims, reason):
    # given a properly signed token with one claim wrong (py_vapid checks none of these)
    signer = Vapid02(vapid.private_key, conf={"no-strict": True})
    authorization = signer.sign(claims_for(push_service, **claims))["Authorization"]
    # when it is sent
    response = post(push_service.subscription(), authorization)
    # then it is refused for that claim
    assert response.status_code == 401
    assert reason in response.text
    assert push_service.messages == []


def test_a_claims_dict_reused_for_a_second_push_service_keeps_the_first_aud(push_service, vapid):
    # given claims once used for this push service (webpush wrote its aud into them)
    claims = {"sub": SUBJECT}
    webpush(push_service.subscription(), "{}", vapid_private_key=vapid, vapid_claims=claims)
    assert claims["aud"] == push_service.origin
    # when the same dict signs for a browser on another push service
    with PushService() as other, pytest.raises(WebPushException) as refused:
        webpush(other.subscription(), "{}", vapid_private_key=vapid, vapid_claims=claims)
    # then that service refuses the token made for another audience
    assert refused.value.status_code == 401
    assert "aud" in other.refused[0].reason


def test_the_draft_vapid_scheme_is_refused(push_service, vapid):
    # given py_vapid's draft-01 header ("WebPush <JWT>" and a Crypto-Key), not RFC 8292
    draft = Vapid01(vapid.private_key).sign(claims_for(push_service))
    # when it is sent
    response = post(push_service.subscription(), draft["Authorization"])
    # then it is refused
    assert response.status_code == 401
    assert "vapid t=" in response.text


def test_a_key_other_than_the_pinned_one_is_forbidden(vapid):
    # given a push service that knows the application server's key
    other = Vapid()
    other.generate_keys()
    with PushService(vapid_public_key=public_key_of(vapid)) as push:
        subscription = push.subscription()
        # when a valid token signed with another key is sent
        with pytest.raises(WebPushException) as refused:
            send(subscription, {}, other)
        # then it is forbidden, while the pinned key gets through
        send(subscription, {"ok": True}, vapid)
        assert refused.value.status_code == 403
        assert [message.data for message in push.messages] == [{"ok": True}]


def test_a_body_encrypted_for_another_subscription_is_refused(push_service, vapid):
    # given a body encrypted for one browser, posted to another's endpoint
    mine, theirs = push_service.subscription(), push_service.subscription()
    body = WebPusher(theirs).encode(b'{"secret": 1}', "aes128gcm")["body"]
    authorization = vapid.sign(claims_for(push_service))["Authorization"]
    # when it is sent
    response = httpx.post(
        mine["endpoint"],
        content=body,
        headers={"Authorization": authorization, "TTL": "0", "Content-Encoding": "aes128gcm"},
    )
    # then it cannot be decrypted and nothing is delivered
    assert response.status_code == 400
    assert "decrypt" in response.text
    assert push_service.messages == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"TTL": ""}, "TTL"),
        ({"Content-Encoding": "aesgcm"}, "Content-Encoding"),
        ({"Topic": "order 42!"}, "Topic"),
    ],
    ids=["no TTL", "legacy encoding", "topic not base64url"],
)
def test_push_headers_a_push_service_requires_are_checked(push_service, vapid, headers, reason):
    authorization = vapid.sign(claims_for(push_service))["Authorization"]
    response = post(push_service.subscription(), authorization, **headers)
    assert response.status_code == 400
    assert reason in response.text
    assert push_service.messages == []


def test_a_body_over_4096_bytes_is_too_large(push_service, vapid):
    # given pywebpush's aes128gcm framing: 86 bytes of header, a delimiter and a 16-byte tag
    subscription = push_service.subscription()
    largest = "x" * (MAX_BODY_BYTES - 86 - 1 - 16 - 2)  # json.dumps adds the quotes
    # when the largest payload that fits and one byte more are sent
    send(subscription, largest, vapid)
    with pytest.raises(WebPushException) as refused:
        send(subscription, largest + "x", vapid)
    # then only the second is too large
    assert refused.value.status_code == 413
    assert [message.data for message in push_service.messages] == [largest]


def test_an_unknown_endpoint_is_not_found(push_service, vapid):
    subscription = push_service.subscription()
    subscription["endpoint"] = push_service.origin + "/push/never-given"
    with pytest.raises(WebPushException) as refused:
        send(subscription, {}, vapid)
    assert refused.value.status_code == 404


def test_a_scripted_410_is_answered_for_good(push_service, vapid):
    # given a browser that unsubscribed
    subscription = push_service.subscription()
    push_service.answer(subscription["endpoint"], 410)
    # when Kibo pushes to it twice
    statuses = []
    for _ in range(2):
        with pytest.raises(WebPushException) as refused:
            send(subscription, {}, vapid)
        statuses.append(refused.value.status_code)
    # then it is gone each time, and nothing was delivered
    assert statuses == [410, 410]
    assert [refusal.status for refusal in push_service.refused] == [410, 410]
    assert push_service.messages == []


def test_a_scripted_500_then_201_fails_once_then_delivers(push_service, vapid):
    # given an endpoint whose push service fails once, and one that works
    flaky, steady = push_service.subscription(), push_service.subscription()
    push_service.answer(flaky["endpoint"], 500, 201)
    # when Kibo pushes, then retries
    with pytest.raises(WebPushException) as failed:
        send(flaky, {"try": 1}, vapid)
    send(flaky, {"try": 2}, vapid)
    send(steady, {"try": 1}, vapid)
    # then the retry is delivered, and other endpoints were never affected
    assert failed.value.status_code == 500
    assert [message.data for message in push_service.messages_for(flaky["endpoint"])] == [
        {"try": 2}
    ]
    assert len(push_service.messages_for(steady["endpoint"])) == 1


def test_a_scripted_429_carries_retry_after(push_service, vapid):
    subscription = push_service.subscription()
    push_service.answer(subscription["endpoint"], (429, {"Retry-After": "1"}), 201)
    with pytest.raises(WebPushException) as throttled:
        send(subscription, {}, vapid)
    assert (throttled.value.status_code, throttled.value.retry_after) == (429, "1")
    send(subscription, {}, vapid)
    assert len(push_service.messages) == 1


def test_only_201_or_an_error_can_be_scripted(push_service):
    with pytest.raises(ValueError, match="201 or an error"):
        push_service.answer(push_service.subscription()["endpoint"], 200)


def test_wait_for_returns_once_the_messages_arrive_and_fails_when_they_do_not(push_service, vapid):
    # given a push sent from another thread a moment later
    subscription = push_service.subscription()
    sender = threading.Timer(0.1, send, args=(subscription, {"late": True}, vapid))
    sender.start()
    # when the test waits for it
    (message,) = push_service.wait_for(1, timeout=5)
    returned_at = time.monotonic()
    sender.join()
    # then it returns as the message arrives, not at the timeout, and a second one never comes
    assert message.data == {"late": True}
    assert returned_at - message.arrived_at < 1
    with pytest.raises(AssertionError, match="1 of 2 push messages arrived"):
        push_service.wait_for(2, timeout=0.2)


def test_reset_forgets_subscriptions_messages_and_scripts(push_service, vapid):
    # given a test's subscription, message and script
    subscription = push_service.subscription()
    send(subscription, {}, vapid)
    push_service.answer(subscription["endpoint"], 410)
    # when the service is reset for the next test
    push_service.reset()
    # then nothing of it remains: the old endpoint is unknown
    assert push_service.messages == []
    with pytest.raises(WebPushException) as refused:
        send(subscription, {}, vapid)
    assert refused.value.status_code == 404
