"""Demo data for `make run`: a staff account, a user, two allies, fresh quotes, one order."""

import secrets
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from kibo.models import Country, User
from orders.models import OPEN_STATUSES, Order
from orders.services import order_create, orders_expire_due
from quotes.services import quote_record

# Accounts of the local development chain (anvil's default mnemonic), so that the demo
# wallets hold test funds there. Account 0 is the escrow wallet.
DEMO_USER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEMO_ALLIES = {
    Country.BOLIVIA: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    Country.MEXICO: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
}
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
DEMO_QR = (
    "00020101021226360014bo.com.bnb.qr0114000012345678905204581253030685405"
    "25.005802BO5913CAFE EL PRADO6006LA PAZ6304A1B2"
)


class Command(BaseCommand):
    help = "Load (or refresh) the demo data; prints the staff sign-in."

    @transaction.atomic
    def handle(self, *args, **options):
        password = secrets.token_urlsafe(9)
        staff = User.objects.filter(username="admin").first()
        if staff is None:
            staff = User.objects.create_superuser(DEMO_STAFF_WALLET, username="admin")
        staff.set_password(password)
        staff.save(update_fields=["password"])

        user, _ = User.objects.get_or_create(wallet_address=DEMO_USER)
        for country, wallet in DEMO_ALLIES.items():
            User.objects.update_or_create(
                wallet_address=wallet,
                defaults={"role": User.Role.ALLY, "country": country, "verified": True},
            )
        now = timezone.now()
        for (token, fiat), rate in DEMO_RATES.items():
            quote_record(token=token, fiat=fiat, rate=Decimal(rate), source="demo", timestamp=now)

        orders_expire_due()  # whatever ran out while Kibo was stopped
        if not Order.objects.filter(user=user, status__in=OPEN_STATUSES).exists():
            order_create(
                user=user,
                qr_data=DEMO_QR,
                amount_fiat=Decimal("25.00"),
                fiat_currency="BOB",
                crypto_token="USDT",
                network="local",
            )

        self.stdout.write(
            f"Staff sign-in for /admin/: username admin, password {password}\n"
            f"Demo user wallet {DEMO_USER}; demo allies {', '.join(DEMO_ALLIES.values())}"
        )
