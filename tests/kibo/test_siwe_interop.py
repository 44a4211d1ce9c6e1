"""Kibo's EIP-4361 reader against the messages the reference library (`siwe` 3 on npm) and
viem (`createSiweMessage`) write and sign, across their optional fields; and a property
test: whatever the reader accepts, it writes back as the very same text."""

import itertools
import json
import subprocess
from datetime import UTC, datetime

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from kibo import siwe
from kibo.env import BASE_DIR

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil's #1
ADDRESS = Account.from_key(KEY).address
NOW = datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC)

OPTIONAL = {
    "statement": "Sign in to Kibo to pay QR codes with your crypto.",
    "scheme": "https",
    "requestId": "req-7",
    "resources": ["https://kibo.example/terms", "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3"],
    "expirationTime": "2026-12-03T10:05:00.000Z",
    "notBefore": "2026-12-03T10:00:00.000Z",
}


def _cases() -> list[dict]:
    cases = []
    for library in ("siwe", "viem"):
        for chosen in itertools.product([False, True], repeat=len(OPTIONAL)):
            fields = {
                "domain": "kibo.example",
                "uri": "https://kibo.example",
                "chainId": 31337,
                "nonce": "abcdef1234",
                "issuedAt": "2026-12-03T10:00:00.000Z",
            }
            fields |= {
                name: value
                for (name, value), on in zip(OPTIONAL.items(), chosen, strict=True)
                if on
            }
            cases.append({"library": library, "fields": fields})
    return cases


@pytest.fixture(scope="module")
def written():
    cases = _cases()
    result = subprocess.run(
        ["node", str(BASE_DIR / "tests" / "helpers" / "siwe_messages.mjs")],
        input=json.dumps({"key": KEY, "cases": cases}),
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        timeout=60,
        check=True,
    )
    return list(zip(cases, json.loads(result.stdout), strict=True))


def test_every_message_both_libraries_write_is_read_and_its_signature_verified(written):
    assert len(written) == 2 * 2 ** len(OPTIONAL)
    for case, made in written:
        fields = case["fields"]
        message = siwe.parse_message(made["message"])
        assert message.address == ADDRESS and message.nonce == "abcdef1234"
        assert message.statement == fields.get("statement")
        assert message.scheme == fields.get("scheme")
        assert message.request_id == fields.get("requestId")
        assert list(message.resources) == fields.get("resources", [])
        assert (message.expiration_time is None) == ("expirationTime" not in fields)
        assert (message.not_before is None) == ("notBefore" not in fields)
        siwe.verify(
            message,
            made["message"],
            made["signature"],
            scheme="https",
            host="kibo.example",
            expected_nonce="abcdef1234",
            chain_ids={31337},
            now=NOW,
        )
        assert siwe.render_message(message) == made["message"], case


# --- any message the reader accepts round-trips ------------------------------------------

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
RESERVED = ":/?#[]@!$&'()*+,;="
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S") + "Z")


@st.composite
def messages(draw) -> str:
    lines = []
    scheme = draw(st.sampled_from(["", "https://", "http://"]))
    host = draw(st.sampled_from(["kibo.example", "localhost:8000", "127.0.0.1", "a.b.c:443"]))
    lines.append(f"{scheme}{host}{siwe.HEADER}")
    lines.append(ADDRESS)
    lines.append("")
    statement = draw(st.one_of(st.none(), st.text(UNRESERVED + RESERVED + " ", min_size=1)))
    if statement is not None:
        lines += [statement, ""]
    else:
        lines.append("")
    path = draw(st.text(UNRESERVED, max_size=12))
    lines.append(f"URI: https://{host}/{path}")
    lines.append("Version: 1")
    lines.append(f"Chain ID: {draw(st.integers(1, 10**12))}")
    lines.append(f"Nonce: {draw(st.text(UNRESERVED[:62], min_size=8, max_size=32))}")
    lines.append(f"Issued At: {draw(times)}")
    if draw(st.booleans()):
        lines.append(f"Expiration Time: {draw(times)}")
    if draw(st.booleans()):
        lines.append(f"Not Before: {draw(times)}")
    if draw(st.booleans()):
        lines.append(f"Request ID: {draw(st.text(UNRESERVED + ':@!$&()*+,;=', max_size=20))}")
    resources = draw(st.lists(st.text(UNRESERVED, min_size=1, max_size=10), max_size=3))
    if resources:
        lines.append("Resources:")
        lines += [f"- https://kibo.example/{r}" for r in resources]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(text=messages())
def test_what_the_reader_accepts_it_writes_back_the_same(text):
    assert siwe.render_message(siwe.parse_message(text)) == text


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("{h}\n{a}\n\nURI: https://kibo.example\nVersion: 1", "too few lines"),
        (
            "{h}\n{a}\n\n\n\nURI: https://kibo.example\nVersion: 1\nChain ID: 1\nNonce: abcdefgh\n"
            "Issued At: 2026-12-03T10:00:00Z",
            "URI",
        ),
        (
            "{h}\n{a}\n\nline one\nline two\n\nURI: https://kibo.example\nVersion: 1\nChain ID: 1\n"
            "Nonce: abcdefgh\nIssued At: 2026-12-03T10:00:00Z",
            "statement",
        ),
        (
            "{h}\n{a}\n\nA tab\there\n\nURI: https://kibo.example\nVersion: 1\nChain ID: 1\n"
            "Nonce: abcdefgh\nIssued At: 2026-12-03T10:00:00Z",
            "unexpected characters",
        ),
        (
            "{h}\n{a}\n\n\nURI: https://kibo.example\nVersion: 1\nChain ID: 1\nNonce: abcdefgh\n"
            "Issued At: 2026-12-03T10:00:00Z\nRequest ID: two words",
            "Request ID",
        ),
    ],
)
def test_what_the_grammar_does_not_allow_is_refused(text, what):
    text = text.format(h="kibo.example" + siwe.HEADER, a=ADDRESS)
    with pytest.raises(siwe.SiweRejected, match=what):
        siwe.parse_message(text)


def test_kibos_own_message_keeps_to_the_grammar_in_spanish_too():
    from datetime import timedelta

    from django.utils import translation

    with translation.override("es"):
        text = siwe.prepare_message(
            scheme="https",
            host="kibo.example",
            address=ADDRESS,
            chain_id=31337,
            nonce="abcdef1234",
            statement=translation.gettext("Sign in to Kibo to pay QR codes with your crypto."),
            issued_at=NOW,
            lifetime=timedelta(minutes=5),
        )
    message = siwe.parse_message(text)
    assert message.statement == "Inicia sesion en Kibo para pagar codigos QR con tus criptomonedas."
    assert siwe.render_message(message) == text
