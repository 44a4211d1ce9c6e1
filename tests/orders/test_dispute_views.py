"""Disputes over HTTP: the payer's two buttons, the ally's answer and contest, private
evidence for every role, and staff deciding in the admin with a note."""

from datetime import timedelta
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from allies.models import AllyPenalty
from allies.selectors import is_ally_penalized
from escrow.models import Transfer
from orders.disputes import dispute_open
from orders.models import Dispute, LateProof, LateProofDecision, OrderStatus
from orders.services import order_complete, orders_expire_due
from tests.factories import (
    expire_timer,
    make_ally,
    make_completed_order,
    make_taken_order,
    make_user,
    png_upload,
)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return unescape(response.content.decode())


def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def release_status(order) -> str:
    return Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE).status


def dispute_form(statement="The shop says nothing arrived.", *files):
    return {"statement": statement, "evidence": list(files)}


def test_during_the_hold_the_payer_sees_both_buttons_in_spanish():
    order = make_completed_order()
    client = Client()  # no Accept-Language: Spanish
    client.force_login(order.user)
    page = text(client.get(f"/orders/{order.pk}/"))
    assert "El comercio recibió el pago" in page
    assert "El comercio NO recibió el pago" in page
    assert f'action="/orders/{order.pk}/dispute/"' in page


def test_the_payer_opens_a_dispute_and_the_page_follows_it():
    order = make_completed_order()
    client = signed_in(order.user)

    response = client.post(
        f"/orders/{order.pk}/dispute/",
        dispute_form("Nothing arrived.", png_upload("chat.png")),
    )

    assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/"
    assert release_status(order) == Transfer.Status.FROZEN
    page = text(client.get(f"/orders/{order.pk}/status/"))
    assert "frozen until our staff decide" in page and "Nothing arrived." in page
    assert response.status_code != 286 and 'hx-trigger="every 5s"' in page  # still followed
    assert "The shop got paid" not in page and "Open a dispute" not in page
    (evidence,) = Dispute.objects.get(order=order).evidence.all()
    assert f"/orders/{order.pk}/evidence/{evidence.pk}/" in page


def test_a_refused_dispute_says_why_keeps_the_text_and_changes_nothing():
    order = make_completed_order()
    client = signed_in(order.user)
    fake = SimpleUploadedFile("shot.png", b"<html>not a picture</html>")

    response = client.post(f"/orders/{order.pk}/dispute/", dispute_form("Not paid.", fake))

    assert response.status_code == 422
    page = text(response)
    assert "must be a PNG, JPEG or WebP image, or a PDF" in page and "Not paid." in page
    assert not Dispute.objects.exists() and release_status(order) == Transfer.Status.HELD


def test_a_second_dispute_is_a_conflict():
    order = make_completed_order()
    client = signed_in(order.user)
    client.post(f"/orders/{order.pk}/dispute/", dispute_form())

    response = client.post(f"/orders/{order.pk}/dispute/", dispute_form())

    assert response.status_code == 409 and "already disputed" in text(response)
    assert Dispute.objects.filter(order=order).count() == 1


def test_nobody_else_can_dispute_and_nothing_changes(admin_user):
    order = make_completed_order()
    for stranger in (make_user(), make_ally(), admin_user):
        response = signed_in(stranger).post(f"/orders/{order.pk}/dispute/", dispute_form())
        assert response.status_code == 404
    signed_out = Client().post(f"/orders/{order.pk}/dispute/", dispute_form())
    assert signed_out.status_code == 302 and "/auth/" in signed_out["Location"]
    assert not Dispute.objects.exists() and release_status(order) == Transfer.Status.HELD


def test_evidence_is_private_to_the_payer_the_ally_and_staff(admin_user):
    order = make_completed_order()
    dispute = dispute_open(
        order_id=order.pk, user=order.user, statement="No.", files=[png_upload("a.png")]
    )
    url = f"/orders/{order.pk}/evidence/{dispute.evidence.get().pk}/"

    for allowed in (order.user, order.ally, admin_user):
        response = signed_in(allowed).get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"
    for stranger in (make_user(), make_ally()):
        assert signed_in(stranger).get(url).status_code == 404
    assert Client().get(url).status_code == 302
    other = make_completed_order()
    wrong_order = f"/orders/{other.pk}/evidence/{dispute.evidence.get().pk}/"
    assert signed_in(other.user).get(wrong_order).status_code == 404


def test_the_ally_sees_the_dispute_and_answers_it_once():
    order = make_completed_order()
    dispute_open(order_id=order.pk, user=order.user, statement="Nothing arrived.")
    ally = signed_in(order.ally)
    board = text(ally.get("/ally/"))
    assert "A payer says the shop was not paid" in board
    assert f'href="/ally/orders/{order.pk}/">Give your side' in board

    page = text(ally.get(f"/ally/orders/{order.pk}/"))
    assert "The payer says the shop was not paid" in page and "Nothing arrived." in page
    assert "Your payout is frozen" in page

    response = ally.post(
        f"/ally/orders/{order.pk}/answer/",
        dispute_form("I paid at 10:02.", png_upload("bank.png")),
    )
    assert response.status_code == 302
    page = text(ally.get(f"/ally/orders/{order.pk}/"))
    assert "I paid at 10:02." in page and "Send my side" not in page
    assert "A payer says the shop was not paid" not in text(ally.get("/ally/"))

    again = ally.post(f"/ally/orders/{order.pk}/answer/", dispute_form("Again."))
    assert again.status_code == 409 and "already gave your side" in text(again)
    assert (
        signed_in(make_ally()).post(f"/ally/orders/{order.pk}/answer/", dispute_form()).status_code
        == 404
    )


def test_the_payer_sees_the_allys_answer_and_the_decision(admin_user):
    from orders.disputes import dispute_answer, dispute_decide

    order = make_completed_order()
    dispute = dispute_open(order_id=order.pk, user=order.user, statement="Nothing arrived.")
    dispute_answer(order_id=order.pk, ally=order.ally, statement="I paid.")
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="No bank record.")

    page = text(signed_in(order.user).get(f"/orders/{order.pk}/"))

    assert "I paid." in page and "No bank record." in page
    assert "Our staff agreed that the shop was not paid" in page
    ally_page = text(signed_in(order.ally).get(f"/ally/orders/{order.pk}/"))
    assert "the payer gets the crypto back" in ally_page and "Uploaded a false proof" in ally_page


def test_the_ally_contests_a_timeout_penalty_from_the_orders_page():
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    ally = signed_in(order.ally)
    page = text(ally.get(f"/ally/orders/{order.pk}/"))
    assert "Contest this penalty" in page and "Did not upload proof in time" in page

    response = ally.post(f"/orders/{order.pk}/dispute/", dispute_form("The bank was down."))

    assert response.status_code == 302 and response["Location"] == f"/ally/orders/{order.pk}/"
    dispute = Dispute.objects.get(order=order)
    assert dispute.kind == Dispute.Kind.PENALTY and dispute.opened_by == order.ally
    page = text(ally.get(f"/ally/orders/{order.pk}/"))
    assert "The bank was down." in page and "Contest this penalty" not in page


def test_an_ally_contest_too_late_is_refused_with_the_reason():
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    AllyPenalty.objects.filter(order=order).update(created_at=timezone.now() - timedelta(days=2))

    response = signed_in(order.ally).post(f"/orders/{order.pk}/dispute/", dispute_form())

    assert response.status_code == 409 and "within 24 hours" in text(response)
    assert not Dispute.objects.exists()


# --- staff decide in the admin -------------------------------------------------------------


def admin_action(client, url: str, action: str, pks, **extra):
    return client.post(
        url, {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}
    )


def test_staff_uphold_a_dispute_in_the_admin_with_a_note(client, admin_user):
    order = make_completed_order()
    dispute = dispute_open(order_id=order.pk, user=order.user, statement="Nothing arrived.")
    client.force_login(admin_user)
    listing = "/admin/orders/dispute/"
    assert "Nothing arrived." in text(client.get(f"{listing}{dispute.pk}/change/"))

    # the action asks for a note first, and again when none is given
    asked = admin_action(client, listing, "uphold", [dispute.pk])
    assert asked.status_code == 200 and "Uphold these disputes?" in text(asked)
    empty = admin_action(client, listing, "uphold", [dispute.pk], confirmed="yes", note=" ")
    assert "Write a note" in text(empty)
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN

    done = admin_action(
        client, listing, "uphold", [dispute.pk], confirmed="yes", note="No bank record."
    )

    assert done.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.UPHELD and dispute.decision_note == "No bank record."
    assert release_status(order) == Transfer.Status.CANCELLED
    assert is_ally_penalized(ally=order.ally)


def test_staff_reject_a_dispute_and_the_payout_goes_out(client, admin_user):
    order = make_completed_order()
    dispute = dispute_open(order_id=order.pk, user=order.user, statement="Nothing arrived.")
    client.force_login(admin_user)

    admin_action(
        client, "/admin/orders/dispute/", "reject", [dispute.pk], confirmed="yes", note="Paid."
    )

    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.REJECTED
    assert release_status(order) == Transfer.Status.PENDING


def test_an_overdue_dispute_is_marked_and_filtered(client, admin_user):
    order = make_completed_order()
    old = dispute_open(order_id=order.pk, user=order.user, statement="Long ago.")
    Dispute.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(hours=25))
    recent_order = make_completed_order()
    dispute_open(order_id=recent_order.pk, user=recent_order.user, statement="Just now.")
    client.force_login(admin_user)

    overdue = text(client.get("/admin/orders/dispute/?overdue=yes"))

    assert str(order.pk) in overdue and str(recent_order.pk) not in overdue


def test_staff_decide_a_late_receipt_in_the_admin(client, admin_user):
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    with pytest.raises(Exception, match="expired before the receipt arrived"):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    late = LateProof.objects.get(order=order)
    client.force_login(admin_user)

    admin_action(
        client, "/admin/orders/lateproof/", "not_paid", [late.pk], confirmed="yes", note="Fake."
    )

    late.refresh_from_db()
    assert late.decision == LateProofDecision.NOT_PAID
    assert AllyPenalty.objects.filter(order=order, reason="FAKE_PROOF").exists()
    page = text(signed_in(order.ally).get(f"/ally/orders/{order.pk}/"))
    assert "The receipt does not show a payment" in page and "Fake." in page
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED  # the order itself is not touched


def test_staff_read_an_allys_appeal_about_an_order_without_a_receipt(client, admin_user):
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    appeal = dispute_open(order_id=order.pk, user=order.ally, statement="The bank was down.")
    client.force_login(admin_user)

    page = text(client.get(f"/admin/orders/dispute/{appeal.pk}/change/"))

    assert "The bank was down." in page
    assert f"/orders/{order.pk}/proof/" not in page  # no receipt to link: it ran out
