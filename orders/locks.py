"""Locks on orders and on what hangs from them, in the order kibo.locks writes down: users
first (kibo.locks), then the order, then its disputes and late receipts."""

import uuid

from django.db.models import QuerySet

from kibo.locks import lock_users
from orders.errors import OrderNotFound
from orders.models import Dispute, LateProof, Order, OrderStatus


def order_pk(order_id) -> uuid.UUID:
    """The order id as a UUID; OrderNotFound for anything that is not one."""
    try:
        return order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        raise OrderNotFound() from None


def _locked(order_id, *, skip_locked: bool) -> Order | None:
    return (
        Order.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("user")
        .filter(pk=order_pk(order_id))
        .first()
    )


def lock_order(order_id) -> Order:
    """The order (with its payer), locked until the transaction ends; OrderNotFound if there
    is none."""
    order = _locked(order_id, skip_locked=False)
    if order is None:
        raise OrderNotFound()
    return order


def lock_order_if_free(order_id) -> Order | None:
    """The order, locked, unless another transaction holds it (None): for sweeps.
    OrderNotFound if there is none."""
    order = _locked(order_id, skip_locked=True)
    if order is None and not Order.objects.filter(pk=order_pk(order_id)).exists():
        raise OrderNotFound()
    return order


def lock_order_and_its_people(order_id) -> Order:
    """The order's payer and ally (users first, as everywhere), then the order."""
    people = Order.objects.filter(pk=order_pk(order_id)).values_list("user_id", "ally_id")
    lock_users(*(people.first() or ()))
    return lock_order(order_id)


def lock_order_awaiting_payment(*, wallet: str, network: str, token: str) -> Order | None:
    """The wallet's order waiting for a payment of this token on this network, locked."""
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            user__wallet_address=wallet,
            status=OrderStatus.PENDING_PAYMENT,
            network=network,
            crypto_token=token,
        )
        .first()
    )


def lock_orders(orders: QuerySet[Order], *, skip_locked: bool = False) -> list[Order]:
    """These orders, locked in primary-key order (the caller has locked their users)."""
    return list(orders.select_for_update(of=("self",), skip_locked=skip_locked).order_by("pk"))


def lock_dispute(dispute_id) -> Dispute:
    return Dispute.objects.select_for_update().get(pk=dispute_id)


def lock_open_dispute(order: Order, *, kind: str) -> Dispute | None:
    """The order's open dispute of this kind, locked (the caller holds the order)."""
    return (
        Dispute.objects.select_for_update()
        .filter(order=order, kind=kind, status=Dispute.Status.OPEN)
        .first()
    )


def lock_late_proof(late_proof_id) -> LateProof:
    """The late receipt (with its order and ally, read, not locked: the caller has locked
    the ally first)."""
    return (
        LateProof.objects.select_for_update(of=("self",))
        .select_related("order", "ally")
        .get(pk=late_proof_id)
    )
