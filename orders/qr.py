"""What a payment QR says, and whether Kibo can pay it in the payer's country.

Three kinds of QR reach a shop counter:

- EMVCo merchant-presented payloads (they start `000201`), used in all three countries: a
  list of tag-length-value fields, lengths counted in characters, some fields holding a
  nested list (templates 26-51, 62 and 64), closed by a CRC-16/CCITT-FALSE over the UTF-8
  bytes up to and including `6304`.
- Bolivia's bank QRs (QR Simple) are encrypted text only the banks read.
- Mexico's CoDi QRs are a JSON message with an encrypted part.

The last two are accepted as opaque: Kibo keeps their exact text (the ally's banking app
must read the same bytes) and the payer types the amount. Anything else is refused with a
reason and nothing is stored.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from kibo.errors import DomainError


class QRRejected(DomainError):
    """A QR Kibo cannot pay; the message says why."""

    status_code = 422


class QRImageTooLarge(QRRejected):
    """A picture of a QR with more bytes or pixels than Kibo reads."""

    status_code = 413


EMVCO = "emvco"
QR_SIMPLE = "qr_simple"
CODI = "codi"


@dataclass(frozen=True)
class CountryQR:
    fiat: str  # ISO 4217 letters
    numeric: str  # ISO 4217 number, as EMVCo tag 53 carries it
    kinds: frozenset[str]


COUNTRIES = {
    "BO": CountryQR("BOB", "068", frozenset({EMVCO, QR_SIMPLE})),
    "MX": CountryQR("MXN", "484", frozenset({EMVCO, CODI})),
    "AR": CountryQR("ARS", "032", frozenset({EMVCO})),
}
NUMERIC_FIAT = {c.numeric: c.fiat for c in COUNTRIES.values()}
MAX_LENGTH = 2000
CODI_MAX_DEPTH = 4  # a CoDi message is one object holding one more: deeper is not CoDi
TEMPLATE_TAGS = {f"{n:02d}" for n in range(26, 52)} | {"62", "64"}
TLV_HEAD = re.compile(r"[0-9]{2}[0-9]{2}")
AMOUNT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
# QR Simple is base64-like ciphertext, sometimes with separators; never spaces or links.
OPAQUE_TEXT = re.compile(r"[A-Za-z0-9+/=|_.:\-]{40,}")


@dataclass(frozen=True)
class PaymentQR:
    raw: str  # exactly what the QR holds
    kind: str  # EMVCO, QR_SIMPLE or CODI
    fiat: str
    amount: Decimal | None  # set when the QR fixes the amount; the payer cannot change it
    merchant: str = ""
    city: str = ""
    reference: str = ""

    @property
    def amount_is_fixed(self) -> bool:
        return self.amount is not None


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _fields(payload: str) -> dict[str, str]:
    """The tag-length-value fields of one level, in order; raises on anything malformed."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(payload):
        head = payload[position : position + 4]
        if not TLV_HEAD.fullmatch(head):
            raise QRRejected(_("This QR code is damaged or incomplete. Scan it again."))
        tag, length = head[:2], int(head[2:])
        value = payload[position + 4 : position + 4 + length]
        if len(value) != length:
            raise QRRejected(_("This QR code is damaged or incomplete. Scan it again."))
        if tag in fields:
            raise QRRejected(_("This QR code is damaged or incomplete. Scan it again."))
        fields[tag] = value
        position += 4 + length
    return fields


def _parse_emvco(text: str, country: str, rules: CountryQR) -> PaymentQR:
    if len(text) < 8 or text[-8:-4] != "6304":
        raise QRRejected(_("This QR code is damaged or incomplete. Scan it again."))
    expected = f"{crc16_ccitt_false(text[:-4].encode()):04X}"
    if text[-4:].upper() != expected:
        raise QRRejected(_("This QR code did not read correctly (its checksum is wrong)."))
    fields = _fields(text)
    templates = {tag: _fields(value) for tag, value in fields.items() if tag in TEMPLATE_TAGS}
    if fields.get("00") != "01":
        raise QRRejected(_("This is not a payment QR code Kibo can read."))

    currency = fields.get("53")
    if currency is None:
        raise QRRejected(_("This QR code does not say its currency."))
    if currency != rules.numeric:
        raise QRRejected(
            _("This QR code asks for %(other)s; in your country Kibo pays QRs in %(fiat)s.")
            % {"other": NUMERIC_FIAT.get(currency, currency), "fiat": rules.fiat}
        )
    qr_country = fields.get("58")
    if qr_country != country:
        raise QRRejected(
            _("This QR code is from another country (%(qr)s), not from %(country)s.")
            % {"qr": qr_country or "?", "country": country}
        )
    amount = None
    if "54" in fields:
        if not AMOUNT.fullmatch(fields["54"]):
            raise QRRejected(_("This QR code holds an amount Kibo cannot read."))
        # A zero amount is how many static QRs (Argentina's among them) say "no amount":
        # the payer types it, as for a QR without tag 54.
        amount = Decimal(fields["54"]) or None
    return PaymentQR(
        raw=text,
        kind=EMVCO,
        fiat=rules.fiat,
        amount=amount,
        merchant=fields.get("59", ""),
        city=fields.get("60", ""),
        reference=templates.get("62", {}).get("05", ""),
    )


def _json_depth(text: str) -> int:
    """How deeply the JSON text nests objects and arrays (strings skipped), counted
    without parsing it: json.loads would recurse once per level."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _is_codi(text: str) -> bool:
    if _json_depth(text) > CODI_MAX_DEPTH:
        raise QRRejected(_("This is not a payment QR code Kibo can read."))
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and "TYP" in message and ("ic" in message or "CRY" in message)


def parse_qr(text: str, *, country: str | None) -> PaymentQR:
    """Read a payment QR for a payer in `country` (BO, MX, AR); raises QRRejected."""
    rules = COUNTRIES.get(country or "")
    if rules is None:
        raise QRRejected(_("Choose your country first."))
    if not text or not text.strip():
        raise QRRejected(_("Scan or upload the QR code to pay."))
    if len(text) > MAX_LENGTH:
        raise QRRejected(_("This QR code holds too much to be a payment QR."))
    if not text.isprintable():
        raise QRRejected(_("This QR code holds characters no payment QR has."))

    if text.startswith("000201"):
        return _parse_emvco(text, country, rules)
    if text.startswith("{") and _is_codi(text):
        kind = CODI
    elif "://" not in text and OPAQUE_TEXT.fullmatch(text):
        kind = QR_SIMPLE
    elif "://" in text:
        raise QRRejected(_("This QR code is a web link, not a payment QR."))
    else:
        raise QRRejected(_("This is not a payment QR code Kibo can read."))
    if kind not in rules.kinds:
        names = {QR_SIMPLE: "QR Simple", CODI: "CoDi"}
        raise QRRejected(
            _("This looks like a %(kind)s QR code, which Kibo does not pay in %(country)s.")
            % {"kind": names[kind], "country": country}
        )
    return PaymentQR(raw=text, kind=kind, fiat=rules.fiat, amount=None)
