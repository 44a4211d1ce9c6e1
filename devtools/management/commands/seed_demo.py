"""Demo data for `make run`: a staff account, a user for the person trying Kibo, two allies,
fresh quotes, one order a second demo user has paid with test tokens on the local chain, so
the order board has something on it from the start, and one that user disputes, for staff
to decide in the admin."""

import io
import secrets
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from PIL import Image

from allies.presence import DAY_MINUTES, working_hours_set
from allies.selectors import approved_application
from allies.services import ally_application_decide, ally_apply
from devtools.localchain import mint_local, pay_from
from escrow import chain
from escrow.amounts import to_base_units
from escrow.networks import network_spec
from escrow.selectors import escrow_address
from kibo.models import Country, User
from kibo.services import config_set
from orders.disputes import dispute_answer, dispute_open
from orders.models import OPEN_STATUSES, Dispute, Order
from orders.payments import deposit_verify
from orders.services import order_complete, order_create, order_take, orders_expire_due
from quotes.models import LocalRate
from quotes.services import quotes_refresh

# Accounts of the local development chain (anvil's default mnemonic, public test keys), so
# that the demo wallets hold test funds there. Account 0 is the escrow wallet. The person
# trying Kibo imports account 1 into their browser wallet; account 6 pays the demo order.
DEMO_USER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEMO_USER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEMO_SHOPPER = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
DEMO_SHOPPER_KEY = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"
DEMO_TOKEN_BALANCE = 10_000 * 10**6  # each demo wallet's test USDT and USDC
DEMO_ALLIES = {
    Country.BOLIVIA: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    Country.MEXICO: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
}
# The Bolivian ally's key (anvil account 2), for a second browser window to work the board.
DEMO_ALLY_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
DEMO_STAFF_WALLET = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
DEMO_RATES = {
    ("USDT", "BOB"): "9.80",
    ("USDC", "BOB"): "9.78",
    ("ETH", "BOB"): "31500",
    ("USDT", "MXN"): "18.40",
    ("USDC", "MXN"): "18.38",
    ("ETH", "MXN"): "59000",
    ("USDT", "ARS"): "1450",
    ("USDC", "ARS"): "1448",
    ("ETH", "ARS"): "4650000",
}
DEMO_QR = (  # a café's dynamic EMVCo QR for 25.00 BOB
    "00020101021226310013bo.com.bnb.qr0110123456789052045812530306854052"
    "5.005802BO5913CAFE EL PRADO6006LA PAZ63043C1A"
)


class Command(BaseCommand):
    help = "Load (or refresh) the demo data; prints the staff sign-in."

    def pay_demo_order(self, order) -> str:
        token = network_spec("local").token(order.crypto_token)
        amount = to_base_units(order.amount_crypto, token.decimals, round_up=True)
        paid = pay_from(
            "local",
            private_key=DEMO_SHOPPER_KEY,
            token=token,
            to=escrow_address(),
            amount_base=amount,
        )
        self.stdout.write(f"Demo order {order.pk} paid on the local chain: {paid}")
        return paid

    def demo_order(self, shopper: User) -> Order:
        """The shopper asks to pay the café's QR (25.00 BOB) in USDT."""
        return order_create(
            user=shopper,
            qr_data=DEMO_QR,
            amount_fiat=Decimal("25.00"),
            fiat_currency="BOB",
            crypto_token="USDT",
            network="local",
        )

    def dispute_demo_order(self, shopper: User, ally: User) -> None:
        """An order the Bolivian ally paid (says the receipt) and the shopper disputes: the
        payout is frozen until staff decide it in the admin (Disputes)."""
        order = self.demo_order(shopper)
        deposit_verify(order=order, tx_hash=self.pay_demo_order(order))
        order_take(order_id=order.pk, ally=ally)
        receipt = io.BytesIO()
        Image.new("RGB", (360, 640), "white").save(receipt, format="PNG")
        order_complete(
            order_id=order.pk,
            ally=ally,
            proof=SimpleUploadedFile("comprobante.png", receipt.getvalue()),
        )
        dispute_open(
            order_id=order.pk,
            user=shopper,
            statement="La cafetería dice que no le llegó el dinero.",
        )
        dispute_answer(
            order_id=order.pk, ally=ally, statement="Pagué el QR desde mi banco a las 10:02."
        )

    def fund_demo_wallet(self, wallet: str) -> None:
        """Top the wallet up to the demo's test USDT and USDC (anvil funds its ETH)."""
        spec = network_spec("local")
        for symbol in ("USDT", "USDC"):
            token = spec.token(symbol)
            held = chain.balance_of("local", token, wallet)
            if held < DEMO_TOKEN_BALANCE:
                mint_local(
                    spec.rpc_urls[0],
                    token_address=token.address,
                    to=wallet,
                    amount_base=DEMO_TOKEN_BALANCE - held,
                )

    def demo_ally(self, wallet: str, country: str, staff: User) -> None:
        """A wallet that applied as an ally of the country and that staff approved."""
        user, _ = User.objects.get_or_create(wallet_address=wallet, defaults={"country": country})
        if approved_application(user=user) is None:
            User.objects.filter(pk=user.pk).update(role=User.Role.USER)  # demo data of old
            user.refresh_from_db()
            application = ally_apply(
                user=user, country=country, display_name=f"Aliado {country}", bank="Banco Demo"
            )
            ally_application_decide(application_id=application.pk, staff=staff, approve=True)
            user.refresh_from_db()
        if not user.working_hours.exists():  # online all day, so payers see them
            working_hours_set(ally=user, hours={day: (0, DAY_MINUTES) for day in range(7)})

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(9)
        staff = User.objects.filter(username="admin").first()
        if staff is None:
            staff = User.objects.create_superuser(DEMO_STAFF_WALLET, username="admin")
        staff.set_password(password)
        staff.save(update_fields=["password"])

        User.objects.get_or_create(wallet_address=DEMO_USER, defaults={"country": Country.BOLIVIA})
        self.fund_demo_wallet(DEMO_USER)
        shopper, _ = User.objects.get_or_create(
            wallet_address=DEMO_SHOPPER, defaults={"country": Country.BOLIVIA}
        )
        for country, wallet in DEMO_ALLIES.items():
            self.demo_ally(wallet, country, staff)
        # There is no network here: quotes come from rates set by hand (the `local` source),
        # refreshed by beat like any other source.
        for (token, fiat), rate in DEMO_RATES.items():
            LocalRate.objects.update_or_create(
                token=token, fiat=fiat, defaults={"rate": Decimal(rate)}
            )
        config_set(key="QUOTE_SOURCES", value="local")
        quotes_refresh(force=True)

        orders_expire_due()  # whatever ran out while Kibo was stopped
        if not Dispute.objects.filter(opened_by=shopper, status=Dispute.Status.OPEN).exists():
            self.fund_demo_wallet(DEMO_SHOPPER)
            ally = User.objects.get(wallet_address=DEMO_ALLIES[Country.BOLIVIA])
            self.dispute_demo_order(shopper, ally)
        if not Order.objects.filter(user=shopper, status__in=OPEN_STATUSES).exists():
            self.fund_demo_wallet(DEMO_SHOPPER)
            order = self.demo_order(shopper)
            # The shopper pays it from their wallet; the deposit watcher credits the payment.
            self.pay_demo_order(order)

        self.stdout.write(
            f"Staff sign-in for /admin/: username admin, password {password}\n"
            f"Your demo wallet (anvil account 1, test funds only): {DEMO_USER}\n"
            f"  private key {DEMO_USER_KEY}\n"
            f"Demo ally in Bolivia (anvil account 2): {DEMO_ALLIES[Country.BOLIVIA]}\n"
            f"  private key {DEMO_ALLY_KEY}\n"
            f"Demo ally in Mexico: {DEMO_ALLIES[Country.MEXICO]}"
        )
