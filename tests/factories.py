"""Test data built through the real services, so every object is one the system could make."""

import io
import secrets
from datetime import timedelta
from decimal import Decimal

import segno
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from eth_utils import to_checksum_address
from PIL import Image
from pypdf import PdfWriter

from allies.models import AllyApplication
from kibo.models import User
from orders.models import Order
from orders.qr import crc16_ccitt_false
from orders.services import order_complete, order_create, order_mark_paid, order_take
from quotes.models import Quote
from quotes.services import quote_record

FIAT_COUNTRY = {"BOB": "BO", "MXN": "MX", "ARS": "AR"}
FIAT_NUMERIC = {"BOB": "068", "MXN": "484", "ARS": "032"}


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def emvco(*fields: str) -> str:
    """An EMVCo merchant-presented payload of these fields, closed by its CRC."""
    body = tlv("00", "01") + "".join(fields) + "6304"
    return body + f"{crc16_ccitt_false(body.encode()):04X}"


def shop_qr(fiat: str = "BOB", *, amount: str | None = None, merchant: str = "Tienda") -> str:
    """A shop's payment QR in `fiat`; static (the payer types the amount) unless `amount`."""
    return emvco(
        tlv("01", "12" if amount else "11"),
        tlv("26", tlv("00", "com.example.pay") + tlv("01", "1234567890")),
        tlv("52", "5812"),
        tlv("53", FIAT_NUMERIC[fiat]),
        *([tlv("54", amount)] if amount else []),
        tlv("58", FIAT_COUNTRY[fiat]),
        tlv("59", merchant),
        tlv("60", "Ciudad"),
    )


QR = shop_qr("BOB")


def wallet() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def tx_hash() -> str:
    return "0x" + secrets.token_hex(32)


def make_user(*, address: str | None = None, **fields) -> User:
    fields.setdefault("country", "BO")
    return User.objects.create_user(address or wallet(), **fields)


def make_ally(*, country: str = "BO", verified: bool = True, **fields) -> User:
    """An ally as staff make one: a wallet whose application for the country was approved."""
    ally = make_user(role=User.Role.ALLY, country=country, verified=verified, **fields)
    approver, _ = User.objects.get_or_create(
        username="approver", defaults={"wallet_address": wallet(), "is_staff": True}
    )
    AllyApplication.objects.create(
        user=ally,
        country=country,
        display_name="Aliado",
        bank="Banco",
        status=AllyApplication.Status.APPROVED,
        decided_at=timezone.now(),
        decided_by=approver,
    )
    return ally


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
    qr_data: str | None = None,
) -> Order:
    """A PENDING_PAYMENT order, priced with a fresh quote."""
    if not Quote.objects.filter(token=token, fiat=fiat, is_active=True).exists():
        make_quote(token=token, fiat=fiat)
    return order_create(
        user=user or make_user(country=FIAT_COUNTRY[fiat]),
        qr_data=qr_data or shop_qr(fiat),
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
    """A PNG receipt the size of a phone's smallest screenshot, different every time (one
    receipt proves one payment): white, with a random patch where the figures would be."""
    picture = Image.new("RGB", (240, 320), "white")
    picture.paste(Image.frombytes("RGB", (40, 20), secrets.token_bytes(40 * 20 * 3)), (100, 150))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def qr_png(payload: str, *, name: str = "qr.png") -> SimpleUploadedFile:
    """A screenshot of a payment QR, as a payer uploads one."""
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="png", scale=6, border=4)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height grey pixels (a decompression bomb):
    its data holds the first rows only, all it takes for a reader that decodes first."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = zlib.compress(b"\0" * (width + 1) * min(height, 400), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


def pdf_receipt(*, pages: int = 1, metadata: dict[str, str] | None = None) -> bytes:
    """A bank's PDF receipt: a page (or `pages`), and what its maker wrote about it."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=300, height=500)
    writer.add_metadata(metadata or {"/Author": "Banco", "/Title": secrets.token_hex(8)})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def expire_timer(order: Order) -> None:
    """Make the order's current timer run out, as if its minutes had passed."""
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def make_completed_order(*, ally: User | None = None, **kwargs) -> Order:
    """An order its ally completed with a receipt; the payout waits (held) to be sent."""
    order = make_taken_order(ally=ally, **kwargs)
    return order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
