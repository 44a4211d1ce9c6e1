"""Money on the local chain, through the real services: an order for a funded wallet, its
payment reported as its owner, a transfer driven until the chain settled it."""

from escrow.amounts import to_base_units
from escrow.models import Transfer
from escrow.selectors import escrow_address
from escrow.transfers import transfer_process
from orders.models import Order
from orders.payments import deposit_verify
from orders.services import order_complete, order_confirm_paid, order_take
from tests.factories import make_ally, make_order, make_user, png_upload
from tests.helpers.chain import confirmed, funded_wallet, send
from tests.helpers.processes import wait_for


def due_base(order) -> int:
    return to_base_units(
        order.amount_crypto, 18 if order.crypto_token == "ETH" else 6, round_up=True
    )


def order_for(wallet, **kwargs) -> Order:
    return make_order(user=make_user(address=wallet.address), **kwargs)


def pay(client, order, wallet, *, amount_base=None, symbol=None, **send_kwargs):
    """Pay from the wallet and, once the payment is confirmed, report it as its owner."""
    tx = send(
        wallet,
        to=send_kwargs.pop("to", escrow_address()),
        symbol=symbol or order.crypto_token,
        amount_base=due_base(order) if amount_base is None else amount_base,
        **send_kwargs,
    )
    confirmed(tx)
    client.force_login(order.user)
    return tx, client.post(f"/orders/{order.pk}/deposit/", {"tx_hash": tx}, HTTP_HX_REQUEST="true")


def settle(transfer: Transfer) -> Transfer:
    """Drive the transfer until the chain has settled it, as the worker and beat would."""

    def final() -> bool:
        done = transfer_process(transfer_id=transfer.pk)
        return done.status not in Transfer.UNFINISHED

    assert wait_for(final, seconds=30), Transfer.objects.get(pk=transfer.pk).last_error
    return Transfer.objects.get(pk=transfer.pk)


def completed_order(*, symbol="USDT", confirm=True):
    """A paid (on chain) and completed order whose RELEASE transfer waits to be sent: the
    payer said the shop got paid (`confirm`), or the payout is still held."""
    wallet = funded_wallet()
    order = order_for(wallet, token=symbol)
    tx = send(wallet, to=escrow_address(), symbol=symbol, amount_base=due_base(order))
    confirmed(tx)
    assert deposit_verify(order=order, tx_hash=tx).state == "credited"
    ally = make_ally()
    order_take(order_id=order.pk, ally=ally)
    order = order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    if confirm:
        order_confirm_paid(order_id=order.pk, user=order.user)
    release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
    return order, ally, release
