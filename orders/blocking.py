"""Blocking a wallet: staff stop it from signing in, paying, applying as an ally and taking
orders, and its orders no ally has taken yet are cancelled. The plain question "is this
wallet blocked?" is the foundation's (kibo.selectors.is_wallet_blocked); every service that
refuses a blocked wallet asks it again once it holds the wallet's user row, which blocking
locks first.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import Action
from audit.services import log_action
from kibo.db import in_callers_transaction
from kibo.errors import Conflict, DomainError
from kibo.locks import lock_block, lock_user_of_wallet
from kibo.models import BlockedWallet, User, checksum_wallet
from kibo.selectors import is_wallet_blocked
from orders.locks import lock_orders
from orders.models import Order, OrderStatus
from orders.services import orders_expire_locked


@transaction.atomic
def wallet_block(*, wallet: str, reason: str, staff: User) -> BlockedWallet:
    """Staff block a wallet, saying why; audited with the staff member.

    Its sessions end, and its orders no ally has taken yet are cancelled (a deposit goes
    back to it). Its user row is locked first, as every service that refuses a blocked
    wallet does before it looks again: nothing slips between the block and the look.
    """
    wallet, reason = checksum_wallet(wallet), (reason or "").strip()
    if not reason:
        raise DomainError(_("Say why the wallet is blocked."))
    person = lock_user_of_wallet(wallet)
    if is_wallet_blocked(wallet=wallet):
        raise Conflict(_("This wallet is blocked already."))
    block = BlockedWallet.objects.create(wallet_address=wallet, reason=reason, blocked_by=staff)
    if person is not None and not person.is_staff:
        person.set_unusable_password()  # a new session hash: every session of it ends
        person.save(update_fields=["password"])
        orders_cancel_of_blocked(user=person, staff=staff)
    log_action(
        action=Action.WALLET_BLOCKED,
        actor_wallet=staff.wallet_address,
        metadata={
            "wallet": wallet,
            "reason": reason,
            "staff": str(staff),
        },
    )
    return block


@transaction.atomic
def wallet_unblock(*, block_id, staff: User) -> BlockedWallet:
    """Staff lift a block; the row stays, for the record. Lifting it twice changes nothing."""
    block = lock_block(block_id)
    if block.unblocked_at is not None:
        return block
    block.unblocked_at, block.unblocked_by = timezone.now(), staff
    block.save(update_fields=["unblocked_at", "unblocked_by"])
    log_action(
        action=Action.WALLET_UNBLOCKED,
        actor_wallet=staff.wallet_address,
        metadata={"wallet": block.wallet_address, "staff": str(staff)},
    )
    return block


@in_callers_transaction
def orders_cancel_of_blocked(*, user: User, staff: User) -> int:
    """Staff blocked the payer: the orders no ally has taken yet are cancelled (a deposit
    goes back). One an ally is paying goes on. The caller holds the user's lock."""
    waiting = (OrderStatus.PENDING_PAYMENT, OrderStatus.AVAILABLE)
    orders = lock_orders(Order.objects.select_related("user").filter(user=user, status__in=waiting))
    orders_expire_locked(
        orders=orders, now=timezone.now(), reason="blocked", actor_wallet=staff.wallet_address
    )
    return len(orders)
