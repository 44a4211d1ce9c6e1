"""Disputes, and the receipts that came too late: the questions only staff can answer.

A payer says the shop was not paid while the ally's payout is still held; the payout is
then FROZEN (nothing of it was ever signed) until staff decide. Upholding the dispute
cancels the payout and refunds the payer through the REFUND path, penalizes the ally for a
false receipt and costs them reputation; the order ends REFUNDED once the refund is
confirmed on chain. Rejecting it lets the payout go out.

An ally may contest a penalty about an order within a day of it; upholding lifts it.

Staff also decide the receipts that came too late, and record that an ally who took an
order did not pay its QR (NO_PAYMENT).

Each decision is one transaction: it locks the users, then the order, then the dispute and
the payout (the order kibo.locks writes down), and writes its audit entry with the staff
member and their note.
"""

from datetime import timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from allies.models import AllyPenalty
from allies.selectors import standing_generation
from allies.services import ally_penalize, penalty_end
from audit.models import Action
from audit.services import log_action
from escrow.locks import lock_release_without_waiting
from escrow.models import Transfer
from escrow.services import refunds_create
from escrow.transfers import transfer_freeze, transfer_thaw
from kibo import config
from kibo.cache import renew_generations
from kibo.errors import Conflict, DomainError, NotFound
from kibo.locks import lock_user, lock_users
from kibo.models import User
from orders.alerts import ally_dispute_decided, ally_disputed
from orders.errors import IllegalTransition, InvalidOrder, OrderNotFound
from orders.locks import (
    lock_dispute,
    lock_late_proof,
    lock_open_dispute,
    lock_order,
    lock_order_and_its_people,
)
from orders.models import (
    Dispute,
    DisputeEvidence,
    LateProof,
    LateProofDecision,
    Order,
    OrderStatus,
)
from orders.proofs import read_receipt

PENALTY_DISPUTE_WINDOW = timedelta(hours=24)
STATEMENT_MAX_CHARS = 2000
EVIDENCE_MAX_FILES = 3


def _statement(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidOrder(_("Tell us what happened."))
    if len(text) > STATEMENT_MAX_CHARS:
        raise InvalidOrder(
            _("Please keep it under %(limit)s characters.") % {"limit": STATEMENT_MAX_CHARS}
        )
    return text


def _with_evidence(files, write):
    """Check every file (all before storing any), store them privately, and call
    write(stored) with [(sha256, name)]; the files are removed again if it fails."""
    files = [upload for upload in files if upload]
    if len(files) > EVIDENCE_MAX_FILES:
        raise InvalidOrder(_("Attach at most %(limit)s files.") % {"limit": EVIDENCE_MAX_FILES})
    receipts = [read_receipt(upload) for upload in files]
    stored = [
        (r.sha256, default_storage.save(r.storage_name("evidence"), ContentFile(r.content)))
        for r in receipts
    ]
    try:
        return write(stored)
    except Exception:
        for _sha256, name in stored:
            default_storage.delete(name)
        raise


def _attach(dispute: Dispute, user: User, stored) -> None:
    DisputeEvidence.objects.bulk_create(
        DisputeEvidence(dispute=dispute, submitted_by=user, file=name, sha256=sha256)
        for sha256, name in stored
    )


def dispute_open(*, order_id, user: User, statement: str, files=()) -> Dispute:
    """The order's payer says the shop was not paid (while the payout is held), or its ally
    contests a penalty about it (within a day). One open dispute of each kind per order:
    an ally's appeal never holds up the payer, whose hold runs out; while the payer's is
    open, the ally gives their side there."""
    statement = _statement(statement)
    return _with_evidence(
        files,
        lambda stored: _dispute_open(
            order_id=order_id, user=user, statement=statement, stored=stored
        ),
    )


@transaction.atomic
def _dispute_open(*, order_id, user: User, statement: str, stored) -> Dispute:
    order = lock_order(order_id)
    if order.user_id == user.pk:
        dispute = _payer_disputes(order, user=user, statement=statement)
    elif order.ally_id is not None and order.ally_id == user.pk:
        dispute = _ally_contests(order, ally=user, statement=statement)
    else:
        raise OrderNotFound()
    _attach(dispute, user, stored)
    log_action(
        action=Action.DISPUTE_OPENED,
        order=order,
        actor_wallet=user.wallet_address,
        metadata={"dispute": str(dispute.pk), "kind": dispute.kind, "files": len(stored)},
    )
    return dispute


def _payer_disputes(order, *, user: User, statement: str) -> Dispute:
    if order.status != OrderStatus.COMPLETED:
        raise IllegalTransition(_("Only a paid QR can be disputed."))
    if order.disputes.filter(kind=Dispute.Kind.NOT_PAID).exists():
        raise Conflict(_("You already disputed this order."))
    # The payout is locked without waiting: settling a payout locks it before its order,
    # the other way round from here, so whoever holds it means the hold is over. Freezing
    # refuses (Conflict) a payout no longer within its hold.
    try:
        with transaction.atomic():  # a savepoint: a refused lock leaves the rest usable
            release = lock_release_without_waiting(order.pk)
            transfer_freeze(transfer_id=release.pk)
    except (OperationalError, Conflict):
        raise IllegalTransition(
            _("It is too late to dispute: the ally's payout has already gone out.")
        ) from None
    renew_generations(standing_generation(order.ally_id))  # the ally's board says so
    ally_disputed(order)
    return Dispute.objects.create(
        order=order, kind=Dispute.Kind.NOT_PAID, opened_by=user, statement=statement
    )


def _ally_contests(order, *, ally: User, statement: str) -> Dispute:
    penalty = (
        AllyPenalty.objects.filter(order=order, ally=ally, disputes__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if penalty is None:
        if AllyPenalty.objects.filter(order=order, ally=ally).exists():
            raise Conflict(_("You already contested this penalty."))
        raise IllegalTransition(_("There is no penalty about this order to contest."))
    if penalty.created_at <= timezone.now() - PENALTY_DISPUTE_WINDOW:
        raise IllegalTransition(_("A penalty can be contested within 24 hours of it."))
    if order.disputes.filter(status=Dispute.Status.OPEN, kind=Dispute.Kind.NOT_PAID).exists():
        raise Conflict(_("A dispute about this order is already open; give your side there."))
    if order.disputes.filter(status=Dispute.Status.OPEN, kind=Dispute.Kind.PENALTY).exists():
        raise Conflict(_("You already contested a penalty about this order."))
    return Dispute.objects.create(
        order=order,
        kind=Dispute.Kind.PENALTY,
        opened_by=ally,
        statement=statement,
        penalty=penalty,
    )


def dispute_answer(*, order_id, ally: User, statement: str, files=()) -> Dispute:
    """The ally gives their side of the payer's open dispute, once, with evidence."""
    statement = _statement(statement)
    return _with_evidence(
        files,
        lambda stored: _dispute_answer(
            order_id=order_id, ally=ally, statement=statement, stored=stored
        ),
    )


@transaction.atomic
def _dispute_answer(*, order_id, ally: User, statement: str, stored) -> Dispute:
    order = lock_order(order_id)
    if order.ally_id is None or order.ally_id != ally.pk:
        raise OrderNotFound()
    dispute = lock_open_dispute(order, kind=Dispute.Kind.NOT_PAID)
    if dispute is None:
        raise IllegalTransition(_("There is no open dispute about this order."))
    if dispute.answered_at is not None:
        raise Conflict(_("You already gave your side of this dispute."))
    dispute.answer, dispute.answered_at = statement, timezone.now()
    dispute.save(update_fields=["answer", "answered_at"])
    renew_generations(standing_generation(ally.pk))
    _attach(dispute, ally, stored)
    log_action(
        action=Action.DISPUTE_ANSWERED,
        order=order,
        actor_wallet=ally.wallet_address,
        metadata={"dispute": str(dispute.pk), "files": len(stored)},
    )
    return dispute


def _staff_note(staff: User, note: str) -> str:
    if not staff.is_staff:
        raise NotFound("Only staff decide this.")
    note = (note or "").strip()
    if not note:
        raise DomainError("Write a note saying why: both sides and the audit trail keep it.")
    return note


@transaction.atomic
def dispute_decide(*, dispute_id, staff: User, uphold: bool, note: str) -> Dispute:
    """Staff decide an open dispute, with a note. Deciding it the same way again changes
    nothing; the other way is refused.

    The payer's dispute upheld: the payout is cancelled, the payer refunded, the ally
    penalized (FAKE_PROOF) and loses reputation. Rejected: the payout goes out. An ally's
    dispute upheld: the penalty is lifted now. Rejected: it stands.
    """
    note = _staff_note(staff, note)
    order_id = Dispute.objects.filter(pk=dispute_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound("No such dispute.")
    order = lock_order_and_its_people(order_id)
    dispute = lock_dispute(dispute_id)
    decision = Dispute.Status.UPHELD if uphold else Dispute.Status.REJECTED
    if dispute.status == decision:
        return dispute
    if dispute.status != Dispute.Status.OPEN:
        raise Conflict("This dispute was decided already, the other way.")
    if dispute.kind == Dispute.Kind.NOT_PAID:
        renew_generations(standing_generation(order.ally_id))
        release = Transfer.objects.values_list("pk", flat=True).get(
            order=order, purpose=Transfer.Purpose.RELEASE
        )
        transfer_thaw(transfer_id=release, cancel=uphold)  # it locks the payout
        if uphold:
            _refund_payer(order, staff=staff, note=note)
    elif uphold:
        penalty_end(penalty_id=dispute.penalty_id)
    dispute.status, dispute.decided_at = decision, timezone.now()
    dispute.decided_by, dispute.decision_note = staff, note
    dispute.save(update_fields=["status", "decided_at", "decided_by", "decision_note"])
    ally_dispute_decided(dispute, order)
    log_action(
        action=Action.DISPUTE_UPHELD if uphold else Action.DISPUTE_REJECTED,
        order=order,
        actor_wallet=staff.wallet_address,
        metadata={
            "dispute": str(dispute.pk),
            "kind": dispute.kind,
            "note": note,
            "staff": str(staff),
        },
    )
    return dispute


def _penalize_false_receipt(*, ally: User, order, staff: User, note: str) -> None:
    ally_penalize(
        ally=ally,
        order=order,
        reason=AllyPenalty.Reason.FAKE_PROOF,
        minutes=config.FAKE_PROOF_PENALTY_MINUTES.get(),
        staff=staff,
        note=note,
    )


def _refund_payer(order, *, staff: User, note: str) -> None:
    """The shop was not paid: the deposit goes back to the payer, and the ally who sent a
    receipt for a payment that did not happen answers for it."""
    refunds_create(payers={order.pk: order.user.wallet_address})
    _penalize_false_receipt(ally=order.ally, order=order, staff=staff, note=note)
    # What completing the order gave both sides is taken back.
    User.objects.filter(pk=order.ally_id).update(
        successful_orders=Greatest(F("successful_orders") - 1, 0),
        reputation=Greatest(
            F("reputation") - config.FAKE_PROOF_REPUTATION_LOSS.get(), Decimal("0")
        ),
    )
    User.objects.filter(pk=order.user_id).update(
        successful_orders=Greatest(F("successful_orders") - 1, 0)
    )


@transaction.atomic
def late_proof_decide(*, late_proof_id, staff: User, ally_paid: bool, note: str) -> LateProof:
    """Staff decide about a receipt that came after its order expired (the payer was
    refunded either way). The ally did pay: Kibo owes the ally, which is recorded for the
    operator to settle outside Kibo. It shows no payment: the ally is penalized for a false
    receipt. The ally sees the decision on the order's page."""
    note = _staff_note(staff, note)
    ally_id = LateProof.objects.filter(pk=late_proof_id).values_list("ally_id", flat=True).first()
    if ally_id is None:
        raise NotFound("No such late receipt.")
    lock_users(ally_id)
    late = lock_late_proof(late_proof_id)
    decision = LateProofDecision.ALLY_PAID if ally_paid else LateProofDecision.NOT_PAID
    if late.decision == decision:
        return late
    if late.decision != LateProofDecision.PENDING:
        raise Conflict("This late receipt was decided already, the other way.")
    late.decision, late.decided_at = decision, timezone.now()
    late.decided_by, late.decision_note = staff, note
    late.save(update_fields=["decision", "decided_at", "decided_by", "decision_note"])
    if not ally_paid:
        _penalize_false_receipt(ally=late.ally, order=late.order, staff=staff, note=note)
    log_action(
        action=Action.LATE_PROOF_DECIDED,
        order=late.order,
        actor_wallet=staff.wallet_address,
        metadata={
            "late_proof": str(late.pk),
            "decision": decision,
            "ally": late.ally.wallet_address,
            "note": note,
            "staff": str(staff),
        },
    )
    return late


@transaction.atomic
def ally_penalize_no_payment(*, order: Order, staff: User, note: str) -> AllyPenalty:
    """Staff: the ally who took the order did not pay its QR. As long as the other penalties
    (ALLY_PENALTY_MINUTES), once per order, audited with the staff member and their note.
    Not for an order completed with a receipt: a false receipt is a dispute's matter."""
    if order.ally_id is None:
        raise DomainError("Nobody took this order.")
    lock_user(order.ally_id)  # the ally's row, then the order's, as every transition
    order = lock_order(order.pk)
    if order.status == OrderStatus.COMPLETED or order.proof_file:
        raise DomainError("It was completed with a receipt: a false receipt is a dispute's matter.")
    if order.ally is None:  # only take() sets the ally; nothing takes it away
        raise DomainError("Nobody took this order.")
    return ally_penalize(
        ally=order.ally,
        order=order,
        reason=AllyPenalty.Reason.NO_PAYMENT,
        minutes=config.ALLY_PENALTY_MINUTES.get(),
        staff=staff,
        note=note,
    )
