"""What hostile input reaches: the receipt reader and the sign-in parser answer anything with
a clear refusal or a result, never another exception (a 500). The QR parser has its own in
tests/orders/test_qr.py."""

import io
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kibo.siwe import SiweRejected, parse_message
from orders.errors import InvalidOrder
from orders.proofs import read_receipt
from tests.factories import pdf_receipt


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (240, 320), "white").save(buffer, format="PNG")
    return buffer.getvalue()


SEEDS = [_png(), pdf_receipt(), b"%PDF-1.7\n%%EOF", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF"]


@st.composite
def mangled(draw) -> bytes:
    """A real file cut, flipped and spliced, or plain noise behind a real file's magic."""
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        if not seed:
            break
        at = draw(st.integers(0, len(seed) - 1))
        seed[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(seed)))
    tail = draw(st.binary(max_size=512))
    if draw(st.booleans()):
        tail = zlib.compress(tail)
    return bytes(seed[:cut]) + tail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=mangled(), name=st.sampled_from(["r.png", "r.pdf", "r.jpg", "r", "r.webp"]))
def test_the_receipt_reader_refuses_what_it_cannot_read_and_nothing_else(content, name):
    try:
        receipt = read_receipt(SimpleUploadedFile(name, content))
    except InvalidOrder as refused:
        assert refused.message
    else:
        assert receipt.extension in {"png", "jpg", "webp", "pdf"} and len(receipt.sha256) == 64


LINES = [
    "kibo.example wants you to sign in with your Ethereum account:",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "",
    "Sign in to Kibo.",
    "URI: https://kibo.example",
    "Version: 1",
    "Chain ID: 31337",
    "Nonce: 32891756abcdef12",
    "Issued At: 2026-12-03T10:00:00Z",
    "Expiration Time: 2026-12-03T10:05:00Z",
    "Not Before: 2026-12-03T10:00:00Z",
    "Request ID: 7",
    "Resources:",
    "- https://kibo.example/terms",
]


@settings(max_examples=500, deadline=None)
@given(
    lines=st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), min_size=0, max_size=16)
)
def test_the_sign_in_parser_refuses_what_it_cannot_read_and_nothing_else(lines):
    try:
        parse_message("\n".join(lines))
    except SiweRejected as refused:
        assert refused.message
