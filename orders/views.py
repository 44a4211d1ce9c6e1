from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_POST
from web3.exceptions import Web3RPCError

from escrow.chain import ChainUnavailable
from escrow.deposits import deposit_verify
from escrow.networks import UnknownNetwork
from kibo.errors import DomainError
from orders.models import Order
from orders.services import parse_tx_hash


def _owned_order(request, order_id) -> Order:
    order = Order.objects.select_related("user").filter(pk=order_id, user=request.user).first()
    if order is None:
        raise Http404("No such order.")
    return order


def _result(request, order: Order, state: str, message: str, *, status: int = 200):
    return render(
        request,
        "orders/partials/_deposit_result.html",
        {"order": order, "state": state, "message": message},
        status=status,
    )


@login_required
@require_POST
def deposit(request, order_id):
    """The owner reports the wallet transaction that paid the order."""
    order = _owned_order(request, order_id)
    try:
        tx_hash = parse_tx_hash(request.POST.get("tx_hash", ""))
        result = deposit_verify(order=order, tx_hash=tx_hash)
    except DomainError as error:
        return _result(request, order, "rejected", error.message, status=error.status_code)
    except (ChainUnavailable, UnknownNetwork, Web3RPCError):
        message = (
            "We can't reach the network right now. Your payment is safe; try again in a minute."
        )
        return _result(request, order, "unavailable", message, status=503)
    if result.state == "pending":
        from escrow.tasks import check_deposit  # tasks import the services this view uses

        transaction.on_commit(lambda: check_deposit.delay(str(order.pk), tx_hash))
    return _result(request, order, result.state, result.message)
