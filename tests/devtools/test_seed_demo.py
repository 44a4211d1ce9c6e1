import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from eth_account import Account

from devtools.management.commands.seed_demo import (
    DEMO_ALLIES,
    DEMO_ALLY_KEY,
    DEMO_QR,
    DEMO_SHOPPER,
    DEMO_TOKEN_BALANCE,
    DEMO_USER,
    DEMO_USER_KEY,
)
from escrow import chain
from escrow.amounts import to_base_units
from escrow.deposits import deposits_watch
from escrow.models import Transfer
from escrow.networks import network_spec
from kibo.models import User
from orders.disputes import dispute_decide
from orders.models import Dispute, Order, OrderStatus
from orders.services import order_create
from quotes.models import Quote
from tests.factories import expire_timer
from tests.helpers.chain import confirmed
from tests.helpers.money import settle

pytestmark = pytest.mark.slow  # the demo's payments on the chain


@pytest.mark.django_db
@pytest.mark.usefixtures("chain")
def test_demo_data_loads_twice_and_always_leaves_one_open_demo_order(
    django_capture_on_commit_callbacks,
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    assert "username admin, password " in out.getvalue()
    first = Order.objects.get(status=OrderStatus.PENDING_PAYMENT)
    paid = re.search(
        rf"Demo order {first.pk} paid on the local chain: (0x[0-9a-f]{{64}})", out.getvalue()
    )
    assert paid
    confirmed(paid.group(1))
    deposits_watch(network="local")  # what beat does a few seconds later
    first.refresh_from_db()
    assert first.status == OrderStatus.AVAILABLE
    expire_timer(first)

    call_command("seed_demo", stdout=io.StringIO())

    first.refresh_from_db()
    assert first.status == OrderStatus.EXPIRED
    assert Transfer.objects.get(order=first).purpose == Transfer.Purpose.REFUND
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == 1
    assert Dispute.objects.filter(status=Dispute.Status.OPEN).count() == 1
    assert User.objects.filter(role="ally", verified=True).count() == 2
    assert set(User.objects.filter(role="ally").values_list("country", flat=True)) == {"BO", "MX"}
    assert Quote.objects.filter(is_active=True).count() == 9
    staff = User.objects.get(username="admin")
    assert staff.is_staff and staff.is_superuser


@pytest.mark.django_db
@pytest.mark.usefixtures("chain")
def test_the_person_trying_kibo_has_a_funded_wallet_and_no_order_in_the_way(
    django_capture_on_commit_callbacks,
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)

    assert f"{DEMO_USER}\n  private key {DEMO_USER_KEY}" in out.getvalue()
    assert f"{DEMO_ALLIES['BO']}\n  private key {DEMO_ALLY_KEY}" in out.getvalue()
    assert Account.from_key(DEMO_ALLY_KEY).address == DEMO_ALLIES["BO"]
    assert Account.from_key(DEMO_USER_KEY).address == DEMO_USER
    assert Order.objects.get(status=OrderStatus.PENDING_PAYMENT).user.wallet_address == DEMO_SHOPPER
    usdt = network_spec("local").token("USDT")
    assert chain.balance_of("local", usdt, DEMO_USER) == DEMO_TOKEN_BALANCE
    person = User.objects.get(wallet_address=DEMO_USER)
    order = order_create(
        user=person,
        qr_data=DEMO_QR,
        amount_fiat=Decimal("25.00"),
        fiat_currency="BOB",
        crypto_token="USDT",
        network="local",
    )
    assert order.status == OrderStatus.PENDING_PAYMENT


@pytest.mark.django_db
@pytest.mark.usefixtures("chain")
def test_staff_can_decide_the_demo_dispute_and_the_shopper_is_refunded_on_chain(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())
    dispute = Dispute.objects.get()
    assert dispute.opened_by.wallet_address == DEMO_SHOPPER and dispute.answer
    assert dispute.order.ally.wallet_address == DEMO_ALLIES["BO"]
    usdt = network_spec("local").token("USDT")
    before = chain.balance_of("local", usdt, DEMO_SHOPPER)

    staff = User.objects.get(username="admin")
    dispute_decide(dispute_id=dispute.pk, staff=staff, uphold=True, note="La cafetería no cobró.")
    settle(Transfer.objects.get(order=dispute.order, purpose=Transfer.Purpose.REFUND))

    dispute.order.refresh_from_db()
    assert dispute.order.status == OrderStatus.REFUNDED
    paid = to_base_units(dispute.order.amount_crypto, 6)
    assert chain.balance_of("local", usdt, DEMO_SHOPPER) - before == paid
