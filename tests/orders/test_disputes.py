"""Disputes: the payer says the shop was not paid while the payout is held, the ally answers
or contests a penalty, staff decide with a note; late receipts are decided the same way."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone

from allies.models import AllyPenalty
from allies.selectors import is_ally_penalized
from audit.models import Action, Log
from escrow.amounts import to_base_units
from escrow.models import EscrowAccount, Transfer
from escrow.transfers import transfer_process, transfers_process_unfinished
from kibo.errors import Conflict, DomainError, NotFound
from orders.disputes import dispute_answer, dispute_decide, dispute_open, late_proof_decide
from orders.errors import IllegalTransition, InvalidOrder, OrderNotFound
from orders.models import Dispute, DisputeEvidence, LateProof, LateProofDecision, OrderStatus
from orders.selectors import stuck_obligations
from orders.services import order_complete, order_confirm_paid, orders_expire_due
from tests.factories import (
    expire_timer,
    make_ally,
    make_completed_order,
    make_taken_order,
    make_user,
    png_upload,
)
from tests.helpers.chain import balance
from tests.helpers.money import completed_order, settle

pytestmark = pytest.mark.django_db


def release_of(order) -> Transfer:
    return Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)


def not_paid(order, **kwargs) -> Dispute:
    return dispute_open(
        order_id=order.pk,
        user=order.user,
        statement=kwargs.pop("statement", "The shop says no money arrived."),
        **kwargs,
    )


def stored() -> set[str]:
    return (
        set(default_storage.listdir("evidence")[1]) if default_storage.exists("evidence") else set()
    )


def actions(order) -> list[str]:
    return list(
        Log.objects.filter(order=order).order_by("created_at").values_list("action", flat=True)
    )


def test_the_payer_disputing_freezes_the_held_payout_which_is_never_signed():
    # given a completed order whose payout is held
    order = make_completed_order()
    assert release_of(order).status == Transfer.Status.HELD

    # when the payer says the shop was not paid, with a screenshot
    dispute = not_paid(order, files=[png_upload("chat.png")])

    # then the payout is frozen, even once its hold would have ended, and nothing is signed
    assert dispute.kind == Dispute.Kind.NOT_PAID and dispute.status == Dispute.Status.OPEN
    transfers_process_unfinished()
    transfer_process(transfer_id=release_of(order).pk)
    release = release_of(order)
    assert release.status == Transfer.Status.FROZEN and not release.signed.exists()
    assert Action.DISPUTE_OPENED in actions(order)
    (evidence,) = dispute.evidence.all()
    assert evidence.submitted_by == order.user and evidence.file.name.startswith("evidence/")
    assert default_storage.exists(evidence.file.name)


def test_after_the_hold_it_is_too_late_to_dispute_and_nothing_changes():
    order = make_completed_order()
    Transfer.objects.filter(order=order).update(held_until=timezone.now())

    with pytest.raises(IllegalTransition, match="too late"):
        not_paid(order)

    assert release_of(order).status == Transfer.Status.HELD
    assert not Dispute.objects.exists() and not DisputeEvidence.objects.exists()


def test_after_the_payer_confirmed_it_is_too_late_to_dispute():
    order = make_completed_order()
    order_confirm_paid(order_id=order.pk, user=order.user)

    with pytest.raises(IllegalTransition, match="too late"):
        not_paid(order)


def test_one_dispute_per_order_and_a_double_click_changes_nothing():
    order = make_completed_order()
    not_paid(order)

    with pytest.raises(Conflict, match="already disputed"):
        not_paid(order)

    assert Dispute.objects.filter(order=order).count() == 1


def test_a_dispute_needs_a_statement_of_reasonable_length():
    order = make_completed_order()
    for statement, message in [("   ", "what happened"), ("x" * 2001, "under 2000")]:
        with pytest.raises(InvalidOrder, match=message):
            not_paid(order, statement=statement)
    assert release_of(order).status == Transfer.Status.HELD


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("shot.png", b"<html><script>alert(1)</script></html>"), "PNG, JPEG"),
        (SimpleUploadedFile("shot.png", b"%PDF-1.4\n...\n%%EOF"), "named .png but it is a PDF"),
        (SimpleUploadedFile("empty.pdf", b""), "empty"),
        (SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024)), "too large"),
    ],
)
def test_bad_evidence_is_refused_and_nothing_is_stored(upload, message):
    order = make_completed_order()
    before = stored()

    with pytest.raises(InvalidOrder, match=message):
        not_paid(order, files=[png_upload(), upload])

    assert not Dispute.objects.exists() and release_of(order).status == Transfer.Status.HELD
    assert stored() == before


def test_at_most_three_files():
    order = make_completed_order()
    with pytest.raises(InvalidOrder, match="at most 3"):
        not_paid(order, files=[png_upload() for _ in range(4)])


def test_a_failed_dispute_removes_the_files_it_stored():
    order = make_completed_order()
    not_paid(order)
    before = stored()

    with pytest.raises(Conflict):
        not_paid(order, files=[png_upload("again.png")])

    assert stored() == before and not DisputeEvidence.objects.exists()


def test_nobody_else_can_dispute_an_order():
    order = make_completed_order()
    for stranger in (make_user(), make_ally()):
        with pytest.raises(OrderNotFound):
            dispute_open(order_id=order.pk, user=stranger, statement="not mine")
    assert release_of(order).status == Transfer.Status.HELD


def test_the_payer_cannot_confirm_while_the_dispute_is_open():
    order = make_completed_order()
    not_paid(order)
    with pytest.raises(IllegalTransition, match="disputed"):
        order_confirm_paid(order_id=order.pk, user=order.user)
    assert release_of(order).status == Transfer.Status.FROZEN


def test_the_ally_answers_once_with_evidence():
    order = make_completed_order()
    dispute = not_paid(order)

    dispute_answer(
        order_id=order.pk,
        ally=order.ally,
        statement="I paid, here is the bank's page.",
        files=[png_upload("bank.png")],
    )
    with pytest.raises(Conflict, match="already gave your side"):
        dispute_answer(order_id=order.pk, ally=order.ally, statement="again")

    dispute.refresh_from_db()
    assert dispute.answer == "I paid, here is the bank's page." and dispute.answered_at
    assert [e.submitted_by for e in dispute.evidence.all()] == [order.ally]
    assert Action.DISPUTE_ANSWERED in actions(order)


def test_only_the_assigned_ally_answers_and_only_an_open_dispute():
    order = make_completed_order()
    with pytest.raises(IllegalTransition, match="no open dispute"):
        dispute_answer(order_id=order.pk, ally=order.ally, statement="nothing to answer")
    not_paid(order)
    for stranger in (make_ally(), order.user):
        with pytest.raises(OrderNotFound):
            dispute_answer(order_id=order.pk, ally=stranger, statement="not mine")


def test_upholding_cancels_the_payout_refunds_the_payer_and_penalizes_the_ally(admin_user):
    # given a disputed order; the ally's counters as completing it left them
    order = make_completed_order()
    dispute = not_paid(order)
    ally = order.ally
    ally.refresh_from_db()
    reputation, done = ally.reputation, ally.successful_orders

    # when staff uphold it
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="No bank record.")

    # then the payout is cancelled, never signed, and the payer's refund is queued
    release = release_of(order)
    assert release.status == Transfer.Status.CANCELLED and not release.signed.exists()
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert refund.recipient == order.user.wallet_address
    assert refund.amount_base == to_base_units(order.amount_crypto, 6)
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert refund.status == Transfer.Status.PENDING
    # the ally is penalized for a false receipt and loses reputation and the order's count
    penalty = AllyPenalty.objects.get(order=order, reason=AllyPenalty.Reason.FAKE_PROOF)
    assert penalty.penalty_minutes == 1440 and is_ally_penalized(ally=ally)
    ally.refresh_from_db()
    assert ally.reputation == reputation - Decimal("1.00")
    assert ally.successful_orders == done - 1
    # and it is recorded, with who decided and why
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.UPHELD and dispute.decided_by == admin_user
    log = Log.objects.get(order=order, action=Action.DISPUTE_UPHELD)
    assert log.metadata["note"] == "No bank record." and log.metadata["staff"] == "staff"
    assert log.actor_wallet == admin_user.wallet_address


def test_deciding_again_the_same_way_changes_nothing_and_the_other_way_is_refused(admin_user):
    order = make_completed_order()
    dispute = not_paid(order)
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="No record.")

    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="Again.")
    with pytest.raises(Conflict, match="decided already"):
        dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=False, note="Changed.")

    assert Transfer.objects.filter(order=order, purpose=Transfer.Purpose.REFUND).count() == 1
    assert AllyPenalty.objects.filter(order=order).count() == 1
    assert Log.objects.filter(order=order, action=Action.DISPUTE_UPHELD).count() == 1


def test_staff_must_write_a_note_and_only_staff_decide(admin_user):
    order = make_completed_order()
    dispute = not_paid(order)

    with pytest.raises(DomainError, match="note"):
        dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="  ")
    with pytest.raises(NotFound):
        dispute_decide(dispute_id=dispute.pk, staff=order.user, uphold=True, note="mine")

    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN
    assert release_of(order).status == Transfer.Status.FROZEN


def test_an_overdue_dispute_is_still_frozen_not_a_stuck_payout(admin_user):
    order = make_completed_order()
    dispute = not_paid(order)
    Dispute.objects.filter(pk=dispute.pk).update(opened_at=timezone.now() - timedelta(hours=25))

    stuck = stuck_obligations(older_than=timedelta(0))

    assert not [s for s in stuck if str(order.pk) in s.subject]
    assert release_of(order).status == Transfer.Status.FROZEN


def test_after_an_upheld_dispute_reconcile_watches_the_refund(admin_user):
    order = make_completed_order()
    dispute = not_paid(order)
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="No record.")

    (stuck,) = [s for s in stuck_obligations(older_than=timedelta(0)) if str(order.pk) in s.subject]

    assert (
        "disputed by its payer" in stuck.problem and "refund transfer is PENDING" in stuck.problem
    )


@pytest.mark.slow  # the refund settled on the chain
@pytest.mark.usefixtures("chain")
def test_upheld_on_the_real_chain_the_payer_is_refunded_exactly_once(admin_user):
    # given an order paid on chain, completed, and disputed by its payer
    order, ally, release = completed_order(confirm=False)
    payer = order.user.wallet_address
    dispute = not_paid(order)
    before_payer, before_ally = balance("USDT", payer), balance("USDT", ally.wallet_address)

    # when staff uphold it and the worker sends what is queued (twice over)
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="Not paid.")
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert settle(refund).status == Transfer.Status.CONFIRMED
    transfers_process_unfinished()
    transfer_process(transfer_id=release.pk)

    # then the payer has the whole deposit back once, the ally nothing, the order REFUNDED
    assert balance("USDT", payer) - before_payer == to_base_units(order.amount_crypto, 6)
    assert balance("USDT", ally.wallet_address) == before_ally
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert EscrowAccount.objects.get(order=order).status == EscrowAccount.Status.REFUNDED
    assert release_of(order).status == Transfer.Status.CANCELLED
    assert refund.signed.count() == 1


@pytest.mark.slow  # the payout settled on the chain
@pytest.mark.usefixtures("chain")
def test_rejected_on_the_real_chain_the_ally_is_paid_exactly_once(admin_user):
    order, ally, release = completed_order(confirm=False)
    dispute = not_paid(order)
    before = balance("USDT", ally.wallet_address)

    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=False, note="Shop confirmed.")
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=False, note="Again.")

    assert settle(release).status == Transfer.Status.CONFIRMED
    assert balance("USDT", ally.wallet_address) - before == to_base_units(order.payout_crypto, 6)
    assert release.signed.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.release_tx_hash
    assert not AllyPenalty.objects.filter(order=order).exists()
    assert Action.DISPUTE_REJECTED in actions(order)


# --- an ally contests a penalty ----------------------------------------------------------


def timed_out_order():
    """An order its ally took and let run out: the ally has a TIMEOUT penalty for it."""
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    order.refresh_from_db()
    return order


def test_the_ally_contests_a_penalty_and_upholding_lifts_it(admin_user):
    order = timed_out_order()
    assert is_ally_penalized(ally=order.ally)

    dispute = dispute_open(order_id=order.pk, user=order.ally, statement="The bank was down.")
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=True, note="Bank outage.")

    assert dispute.kind == Dispute.Kind.PENALTY and dispute.penalty.reason == "TIMEOUT"
    assert not is_ally_penalized(ally=order.ally)
    assert order.status == OrderStatus.EXPIRED  # the payer's refund is another matter


def test_a_rejected_penalty_dispute_leaves_the_penalty(admin_user):
    order = timed_out_order()
    dispute = dispute_open(order_id=order.pk, user=order.ally, statement="Not my fault.")
    dispute_decide(dispute_id=dispute.pk, staff=admin_user, uphold=False, note="It was.")
    assert is_ally_penalized(ally=order.ally)


def test_a_penalty_is_contested_once_within_24_hours():
    order = timed_out_order()
    AllyPenalty.objects.filter(order=order).update(
        created_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    with pytest.raises(IllegalTransition, match="within 24 hours"):
        dispute_open(order_id=order.pk, user=order.ally, statement="late")

    AllyPenalty.objects.filter(order=order).update(created_at=timezone.now())
    dispute_open(order_id=order.pk, user=order.ally, statement="in time")
    with pytest.raises(Conflict, match="already contested"):
        dispute_open(order_id=order.pk, user=order.ally, statement="again")


def test_an_ally_without_a_penalty_has_nothing_to_contest():
    order = make_completed_order()
    with pytest.raises(IllegalTransition, match="no penalty"):
        dispute_open(order_id=order.pk, user=order.ally, statement="why not")


def penalize_no_payment(order) -> AllyPenalty:
    """A penalty of the order's ally about it, as staff record one (NO_PAYMENT, 30 minutes)."""
    return AllyPenalty.objects.create(
        ally=order.ally,
        order=order,
        reason="NO_PAYMENT",
        penalty_minutes=30,
        penalty_until=timezone.now() + timedelta(minutes=30),
    )


def test_while_the_payer_disputes_the_ally_answers_instead_of_opening_another(admin_user):
    order = make_completed_order()
    not_paid(order)
    penalize_no_payment(order)
    with pytest.raises(Conflict, match="already open"):
        dispute_open(order_id=order.pk, user=order.ally, statement="no")


# --- late receipts -----------------------------------------------------------------------


def late_receipt() -> LateProof:
    order = make_taken_order()
    expire_timer(order)
    orders_expire_due()
    with pytest.raises(IllegalTransition):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    return LateProof.objects.get(order=order)


def test_staff_record_that_the_ally_did_pay_a_late_receipt(admin_user):
    late = late_receipt()

    late_proof_decide(late_proof_id=late.pk, staff=admin_user, ally_paid=True, note="Bank ok.")
    late_proof_decide(late_proof_id=late.pk, staff=admin_user, ally_paid=True, note="Again.")

    late.refresh_from_db()
    assert late.decision == LateProofDecision.ALLY_PAID and late.decided_by == admin_user
    assert not AllyPenalty.objects.filter(order=late.order, reason="FAKE_PROOF").exists()
    (log,) = Log.objects.filter(action=Action.LATE_PROOF_DECIDED)
    assert log.metadata["decision"] == "ALLY_PAID" and log.metadata["note"] == "Bank ok."


def test_a_late_receipt_that_shows_no_payment_penalizes_the_ally(admin_user):
    late = late_receipt()

    late_proof_decide(late_proof_id=late.pk, staff=admin_user, ally_paid=False, note="Fake.")
    with pytest.raises(Conflict):
        late_proof_decide(late_proof_id=late.pk, staff=admin_user, ally_paid=True, note="Oops.")

    late.refresh_from_db()
    assert late.decision == LateProofDecision.NOT_PAID
    assert AllyPenalty.objects.get(order=late.order, reason="FAKE_PROOF").penalty_minutes == 1440


def test_an_allys_open_appeal_does_not_hold_up_the_payers_dispute(admin_user):
    # given a completed order whose ally contests a penalty about it, while its payout is held
    order = make_completed_order()
    penalize_no_payment(order)
    dispute_open(order_id=order.pk, user=order.ally, statement="I did pay.")

    # when the payer says the shop was not paid, the payout freezes all the same
    dispute = not_paid(order)

    assert dispute.status == Dispute.Status.OPEN
    assert release_of(order).status == Transfer.Status.FROZEN
    assert Dispute.objects.filter(order=order, status=Dispute.Status.OPEN).count() == 2


def test_staff_cannot_record_no_payment_for_an_order_completed_with_a_receipt(admin_user):
    from orders.disputes import ally_penalize_no_payment

    order = make_completed_order()
    with pytest.raises(DomainError, match="dispute's matter"):
        ally_penalize_no_payment(order=order, staff=admin_user, note="no")
    assert not AllyPenalty.objects.filter(order=order).exists()


@pytest.mark.django_db(transaction=True)
def test_a_dispute_does_not_wait_for_a_payout_another_process_holds():
    """Settling locks a payout before its order; a dispute locks the order first, so it must
    not wait for the payout (that would deadlock): whoever holds it, the hold is over."""
    order = make_completed_order()
    locked, release = threading.Event(), threading.Event()

    def hold_the_payout():
        with transaction.atomic():
            Transfer.objects.select_for_update().get(order=order, purpose="RELEASE")
            locked.set()
            release.wait(timeout=30)
        connection.close()

    holder = threading.Thread(target=hold_the_payout)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        with pytest.raises(IllegalTransition, match="too late"):
            not_paid(order)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()
    assert release_of(order).status == Transfer.Status.HELD and not Dispute.objects.exists()
