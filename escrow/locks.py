"""Locks on money rows, after the order they belong to (the order in kibo.locks): a
transfer, then its order's escrow account; the sending wallet's nonce cursor last."""

from escrow.models import Deposit, EscrowAccount, NonceCursor, SenderState, Transfer


def lock_transfer(transfer_id) -> Transfer:
    return Transfer.objects.select_for_update().get(pk=transfer_id)


def lock_release_without_waiting(order_id) -> Transfer:
    """The order's payout, locked at once or not at all: raises OperationalError when
    another transaction holds it (settling it: see kibo.locks), DoesNotExist if none."""
    return Transfer.objects.select_for_update(nowait=True).get(
        order_id=order_id, purpose=Transfer.Purpose.RELEASE
    )


def lock_deposit(deposit_id) -> Deposit:
    return Deposit.objects.select_for_update().get(pk=deposit_id)


def lock_escrow_account(order_id) -> EscrowAccount | None:
    return EscrowAccount.objects.select_for_update().filter(order_id=order_id).first()


def lock_escrow_accounts(order_ids) -> list[EscrowAccount]:
    """The escrow accounts of these orders, locked in order-id order."""
    return list(
        EscrowAccount.objects.select_for_update()
        .filter(order_id__in=order_ids)
        .order_by("order_id")
    )


def lock_nonce_cursor(network: str, address: str) -> NonceCursor:
    """The sending wallet's nonce cursor (created at 0 the first time), locked until the
    transaction ends. Holding it makes signing one at a time per wallet, so two transfers
    never spend the same free balance."""
    NonceCursor.objects.bulk_create(
        [NonceCursor(network=network, address=address, next_nonce=0)], ignore_conflicts=True
    )
    return NonceCursor.objects.select_for_update().get(network=network, address=address)


def lock_sender_state(*, timeline: int) -> SenderState:
    """The sender's one row (created on `timeline` the first time), locked."""
    SenderState.objects.get_or_create(pk=1, defaults={"timeline": timeline})
    return SenderState.objects.select_for_update().get(pk=1)
