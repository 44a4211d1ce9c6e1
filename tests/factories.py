"""Test data built through the real services, so every object is one the system could make."""

import io
import secrets
from datetime import timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from eth_utils import to_checksum_address
from PIL import Image

from kibo.models import User
from orders.models import Order
from orders.services import order_create, order_mark_paid, order_take
from quotes.models import Quote
from quotes.services import quote_record

QR = "00020101021226360014bo.com.bnb.qr011400001234567890520458125303068540525.005802BO6304ABCD"


def wallet() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def tx_hash() -> str:
    return "0x" + secrets.token_hex(32)


def make_user(*, address: str | None = None, **fields) -> User:
    return User.objects.create_user(address or wallet(), **fields)


def make_ally(*, country: str = "BO", verified: bool = True, **fields) -> User:
    return make_user(role=User.Role.ALLY, country=country, verified=verified, **fields)


def make_quote(
    *, token: str = "USDT", fiat: str = "BOB", rate: str | None = None, age_seconds: int = 0
) -> Quote:
    return quote_record(
        token=token,
        fiat=fiat,
        rate=Decimal(rate or ("30000.00" if token == "ETH" else "10.00")),
        source="test",
        timestamp=timezone.now() - timedelta(seconds=age_seconds),
    )


def make_order(
    *,
    user: User | None = None,
    amount_fiat: str = "100.00",
    fiat: str = "BOB",
    token: str = "USDT",
    network: str = "local",
) -> Order:
    """A PENDING_PAYMENT order, priced with a fresh quote."""
    if not Quote.objects.filter(token=token, fiat=fiat, is_active=True).exists():
        make_quote(token=token, fiat=fiat)
    return order_create(
        user=user or make_user(),
        qr_data=QR,
        amount_fiat=amount_fiat,
        fiat_currency=fiat,
        crypto_token=token,
        network=network,
    )


def make_paid_order(**kwargs) -> Order:
    order = make_order(**kwargs)
    return order_mark_paid(
        order_id=order.pk, deposit_tx_hash=tx_hash(), amount_received=order.amount_crypto
    )


def make_taken_order(*, ally: User | None = None, **kwargs) -> Order:
    order = make_paid_order(**kwargs)
    return order_take(order_id=order.pk, ally=ally or make_ally())


def png_upload(name: str = "receipt.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def expire_timer(order: Order) -> None:
    """Make the order's current timer run out, as if its minutes had passed."""
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
