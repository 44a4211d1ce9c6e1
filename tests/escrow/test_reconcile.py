import io
import os

import pytest
from django.core.management import CommandError, call_command

from escrow.chain import mint_local
from escrow.selectors import escrow_address
from escrow.transfers import transfers_process_unfinished
from orders.services import order_cancel, order_complete, order_take
from tests.chainkit import funded_wallet, token
from tests.escrow.test_money_flows import due_base, order_for, pay
from tests.factories import make_ally, png_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("chain")]


def reconcile_output() -> str:
    out = io.StringIO()
    call_command("escrow_reconcile", stdout=out)
    return out.getvalue()


def test_escrow_reconciles_after_payouts_refunds_and_returns(client):
    # given an order paid out, one refunded, and an over-payment partly returned
    wallets = [funded_wallet() for _ in range(3)]
    paid_out, refunded, overpaid = (
        order_for(wallet, token=symbol)
        for wallet, symbol in zip(wallets, ("USDT", "ETH", "USDC"), strict=True)
    )
    pay(client, paid_out, wallets[0])
    pay(client, refunded, wallets[1])
    pay(client, overpaid, wallets[2], amount_base=due_base(overpaid) + 123)
    ally = make_ally()
    order_take(order_id=paid_out.pk, ally=ally)
    order_complete(order_id=paid_out.pk, ally=ally, proof=png_upload())
    order_cancel(order_id=refunded.pk, user=refunded.user)

    # when every transfer has gone out, then the books match the chain
    transfers_process_unfinished()
    output = reconcile_output()
    assert "Escrow reconciles." in output and "MISMATCH" not in output
    assert "local           USDT" in output


def test_money_the_records_do_not_explain_is_a_mismatch():
    mint_local(
        os.environ["KIBO_RPC_URL_LOCAL"],
        token_address=token("USDC").address,
        to=escrow_address(),
        amount_base=1,
    )
    with pytest.raises(CommandError, match="do not match"):
        reconcile_output()
