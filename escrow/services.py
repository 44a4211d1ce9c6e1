import logging
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from escrow.amounts import to_base_units
from escrow.chain import ChainUnavailable
from escrow.models import EscrowAccount, EscrowSnapshot, Transfer
from escrow.networks import configured_networks, network_spec
from escrow.selectors import reconcile
from escrow.transfers import TransferIntent, transfer_create, transfers_create
from kibo.errors import Conflict
from kibo.selectors import get_config_minutes

logger = logging.getLogger(__name__)


@transaction.atomic
def escrow_account_lock(*, order, amount: Decimal, deposit_tx_hash: str) -> EscrowAccount:
    """Record that `amount` of the order's token sits in escrow for it."""
    return EscrowAccount.objects.create(
        order=order,
        amount=amount,
        token=order.crypto_token,
        network=order.network,
        deposit_tx_hash=deposit_tx_hash,
    )


@transaction.atomic
def refunds_create(*, orders) -> None:
    """Queue the return of each order's locked deposit to its owner: one REFUND transfer per
    order, however often this is called; a statement or two, whatever the number of orders.
    The caller holds the orders' locks."""
    if not orders:
        return
    ids = [order.pk for order in orders]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT order_id, network, token, amount FROM escrow_accounts"
            " WHERE order_id = ANY(%s) FOR UPDATE",
            [ids],
        )
        escrows = {order_id: rest for order_id, *rest in cursor.fetchall()}
        if len(escrows) < len(set(ids)):
            raise Conflict("This order has no locked deposit to refund.")
    pairs = {(network, token) for network, token, _ in escrows.values()}
    decimals = {(net, tok): network_spec(net).token(tok).decimals for net, tok in pairs}
    transfers_create(
        [
            TransferIntent(
                purpose=Transfer.Purpose.REFUND,
                order=order,
                network=network,
                token=token,
                recipient=order.user.wallet_address,
                amount_base=to_base_units(amount, decimals[network, token]),
            )
            for order in orders
            for network, token, amount in [escrows[order.pk]]
        ]
    )


def _base_units(network: str, token: str, amount) -> int:
    return to_base_units(amount, network_spec(network).token(token).decimals)


@transaction.atomic
def escrow_release_create(*, order, recipient: str) -> Transfer:
    """Pay the ally of a completed order: the deposit minus Kibo's fee, rounded down. The
    payout is HELD for RELEASE_HOLD_MINUTES, while the payer may still say the shop was not
    paid (0: it goes out at once)."""
    escrow = EscrowAccount.objects.select_for_update().filter(order=order).first()
    if escrow is None:
        raise Conflict("This order has no locked deposit to release.")
    hold = get_config_minutes("RELEASE_HOLD_MINUTES")
    return transfer_create(
        purpose=Transfer.Purpose.RELEASE,
        order=order,
        network=escrow.network,
        token=escrow.token,
        recipient=recipient,
        amount_base=_base_units(escrow.network, escrow.token, order.payout_crypto),
        held_until=timezone.now() + hold if hold else None,
    )


@transaction.atomic
def escrow_release_complete(*, order) -> None:
    EscrowAccount.objects.filter(order=order, status=EscrowAccount.Status.LOCKED).update(
        status=EscrowAccount.Status.RELEASED, released_at=timezone.now()
    )


@transaction.atomic
def escrow_refund_complete(*, order) -> None:
    """The refund is confirmed on chain: the escrow account is REFUNDED."""
    EscrowAccount.objects.filter(order=order, status=EscrowAccount.Status.LOCKED).update(
        status=EscrowAccount.Status.REFUNDED, refunded_at=timezone.now()
    )


def escrow_snapshot_take() -> int:
    """Reconcile the escrow on each configured network (escrow.selectors.reconcile) and keep
    each token's line for the staff console; returns how many lines it kept. A network whose
    node does not answer keeps its last lines, which show their age. The chain is read
    outside any transaction; each network's lines are written in one."""
    kept = 0
    for spec in configured_networks():
        try:
            lines = reconcile(networks=[spec])
        except ChainUnavailable:
            logger.warning("the escrow snapshot of %s waits for its node to answer", spec.name)
            continue
        taken_at = timezone.now()
        with transaction.atomic():
            for line in lines:
                EscrowSnapshot.objects.update_or_create(
                    network=line.network,
                    token=line.token,
                    defaults={
                        "decimals": line.decimals,
                        "block": line.block,
                        "on_chain": line.on_chain,
                        "expected": line.expected,
                        "locked": line.locked,
                        "ok": line.ok,
                        "taken_at": taken_at,
                    },
                )
        kept += len(lines)
    return kept


def escrow_key_problem() -> str | None:
    """Why this process cannot sign for the escrow wallet, or None when it can."""
    from escrow.chain import EscrowKeyMissing, escrow_key_address
    from kibo.selectors import get_config

    try:
        address = escrow_key_address()
    except EscrowKeyMissing as missing:
        return str(missing)
    configured = get_config("ESCROW_WALLET_ADDRESS")
    if address.lower() != configured.lower():
        return (
            f"KIBO_ESCROW_PRIVATE_KEY belongs to {address}, but SYSTEM_CONFIG "
            f"ESCROW_WALLET_ADDRESS is {configured}."
        )
    return None
