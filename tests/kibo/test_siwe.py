from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from kibo.siwe import SiweRejected, parse_message, prepare_message, verify

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SITE = {"scheme": "https", "host": "kibo.example"}


def message_for(account, **changes) -> str:
    fields = {
        **SITE,
        "address": account.address,
        "chain_id": 31337,
        "nonce": "abcdef0123456789",
        "statement": "Sign in to Kibo to pay QR codes with your crypto.",
        "issued_at": NOW,
        "lifetime": timedelta(minutes=5),
        **changes,
    }
    return prepare_message(**fields)


def sign(account, text: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def check(text: str, signature: str, **changes):
    options = {
        **SITE,
        "expected_nonce": "abcdef0123456789",
        "chain_ids": {31337},
        "now": NOW,
        **changes,
    }
    return verify(parse_message(text), text, signature, **options)


def test_a_prepared_message_reads_back_field_by_field():
    account = Account.create()
    message = parse_message(message_for(account))
    assert message.domain == "kibo.example" and message.address == account.address
    assert message.uri == "https://kibo.example" and message.chain_id == 31337
    assert message.nonce == "abcdef0123456789" and message.issued_at == NOW
    assert message.expiration_time == NOW + timedelta(minutes=5)


def test_a_good_signature_is_accepted():
    account = Account.create()
    text = message_for(account)
    assert check(text, sign(account, text)).address == account.address


def test_the_spec_example_layout_with_every_optional_field_parses():
    text = "\n".join(
        [
            "https://service.org wants you to sign in with your Ethereum account:",
            "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
            "",
            "I accept the ServiceOrg Terms of Service: https://service.org/tos",
            "",
            "URI: https://service.org/login",
            "Version: 1",
            "Chain ID: 1",
            "Nonce: 32891756",
            "Issued At: 2021-09-30T16:25:24Z",
            "Expiration Time: 2021-10-01T16:25:24Z",
            "Not Before: 2021-09-30T16:25:24Z",
            "Request ID: abc-123",
            "Resources:",
            "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "- https://example.com/my-web2-claim.json",
        ]
    )
    message = parse_message(text)
    assert message.scheme == "https" and message.domain == "service.org"
    assert message.request_id == "abc-123" and len(message.resources) == 2


def test_a_message_without_a_statement_has_one_more_empty_line():
    account = Account.create()
    lines = message_for(account).split("\n")
    without = "\n".join(lines[:3] + lines[4:])  # drop the statement, keep both empty lines
    assert parse_message(without).statement is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace(" wants you to sign in", " would like you to sign in"),
        lambda t: t.replace("\n\nSign in", "\nSign in"),
        lambda t: t.replace("Version: 1", "Version: 2"),
        lambda t: t.replace("Chain ID: 31337", "Chain ID: x"),
        lambda t: t.replace("Nonce: abcdef0123456789", "Nonce: short"),
        lambda t: t.replace("Issued At: 2026-11-22T12:00:00Z", "Issued At: yesterday"),
        lambda t: t.replace("URI: https://kibo.example", "URI: not a uri"),
        lambda t: t + "\nSomething: else",
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("Version: 1\n", ""),
        lambda t: "",
        lambda t: t.split("\n", 2)[0],
    ],
)
def test_a_malformed_message_is_refused_as_a_bad_request(mutate):
    account = Account.create()
    text = mutate(message_for(account))
    with pytest.raises(SiweRejected) as refused:
        check(text, sign(account, text) if text else "0x" + "00" * 65)
    assert refused.value.status_code == 400


def test_an_address_not_in_eip55_form_is_malformed():
    account = Account.create()
    text = message_for(account).replace(account.address, account.address.lower())
    with pytest.raises(SiweRejected, match="not valid"):
        parse_message(text)


@pytest.mark.parametrize(
    ("changes", "check_changes", "reason"),
    [
        ({"host": "evil.example"}, {}, "another site"),
        ({"scheme": "http"}, {}, "another site"),
        ({}, {"expected_nonce": "0123456789abcdef"}, "expired or was already used"),
        ({}, {"expected_nonce": None}, "expired or was already used"),
        ({"issued_at": NOW - timedelta(minutes=10)}, {}, "has expired"),
        ({"issued_at": NOW + timedelta(minutes=10)}, {}, "not valid yet"),
        ({"chain_id": 1}, {}, "network Kibo accepts"),
    ],
)
def test_a_sign_in_that_is_not_for_us_now_is_refused(changes, check_changes, reason):
    account = Account.create()
    text = message_for(account, **changes)
    with pytest.raises(SiweRejected, match=reason) as refused:
        check(text, sign(account, text), **check_changes)
    assert refused.value.status_code == 401


def test_a_signature_by_another_wallet_is_refused():
    account, other = Account.create(), Account.create()
    text = message_for(account)
    with pytest.raises(SiweRejected, match="does not match the address") as refused:
        check(text, sign(other, text))
    assert refused.value.status_code == 401


@pytest.mark.parametrize("signature", ["", "0x1234", "0x" + "zz" * 65, "0x" + "00" * 65])
def test_a_malformed_signature_is_refused(signature):
    account = Account.create()
    with pytest.raises(SiweRejected, match="signature is not valid") as refused:
        check(message_for(account), signature)
    assert refused.value.status_code == 400
