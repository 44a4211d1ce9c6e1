import contextlib
import json
import re
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.qr import CODI, EMVCO, QR_SIMPLE, QRRejected, crc16_ccitt_false, parse_qr
from tests.factories import emvco, tlv

MERCADO_PAGO_STATIC_AR = (
    "00020101021143510016com.mercadolibre0127https://mpago.la/pos/411091501500112712849095"
    "25204970053030325802AR5920GLADYS MABEL GIMENEZ6011VILLA BOSCH630457A8"
)
DYNAMIC_AR = (
    "00020101021243380016com.mercadolibre02011030944656669152045206530303254035.05802AR5909"
    "TuNegocio6012Buenos Aires62350510ticket-1230707CAJA0010806Bebida63045259"
)
DYNAMIC_MX = (
    "00020101021243380016com.mercadolibre02011030958225636052045812530348454045.005802MX5909"
    "TuNegocio6011Guadalajara62350510ticket-1230707CAJA0010806Bebida6304C8D9"
)
CODI_MX = '{"TYP":19,"v":{"DEV":"00000161803561879230/0"},"ic":{"IDC":"4a0a8cc04a","SER":0,"ENC":"bXlzZWNyZXQ="}}'  # noqa: E501
QR_SIMPLE_BO = "QkFOQ08gVU5JT058MTIzNDU2Nzg5MHxHQUxMRVRBUyBTUkwuLi4=|MDAxMjM0NTY3OA=="


BOLIVIAN_SHOP = emvco(
    tlv("01", "11"),
    tlv("26", tlv("00", "bo.com.bnb.qr") + tlv("01", "1234567890")),
    tlv("52", "5812"),
    tlv("53", "068"),
    tlv("58", "BO"),
    tlv("59", "Salteñas Doña Rosa"),
    tlv("60", "La Paz"),
)


def test_a_static_mercado_pago_qr_has_no_amount():
    qr = parse_qr(MERCADO_PAGO_STATIC_AR, country="AR")
    assert (qr.kind, qr.fiat, qr.amount) == (EMVCO, "ARS", None)
    assert (qr.merchant, qr.city) == ("GLADYS MABEL GIMENEZ", "VILLA BOSCH")
    assert qr.raw == MERCADO_PAGO_STATIC_AR and not qr.amount_is_fixed


def test_a_dynamic_qr_fixes_the_amount_and_carries_a_reference():
    qr = parse_qr(DYNAMIC_AR, country="AR")
    assert (qr.fiat, qr.amount, qr.reference) == ("ARS", Decimal("5.0"), "ticket-123")
    assert (qr.merchant, qr.city) == ("TuNegocio", "Buenos Aires")


def test_a_mexican_dynamic_qr_keeps_its_amount_exactly():
    qr = parse_qr(DYNAMIC_MX, country="MX")
    assert (qr.fiat, str(qr.amount)) == ("MXN", "5.00")


def test_the_crc_is_compared_without_regard_to_case():
    lower = BOLIVIAN_SHOP[:-4] + BOLIVIAN_SHOP[-4:].lower()
    assert parse_qr(lower, country="BO").merchant == "Salteñas Doña Rosa"


def test_the_crc_covers_the_utf8_bytes():
    # "ñ" is one character but two bytes: a CRC over characters would not match
    assert parse_qr(BOLIVIAN_SHOP, country="BO").city == "La Paz"


@pytest.mark.parametrize(
    ("payload", "country", "reason"),
    [
        (DYNAMIC_AR[:-4] + "0000", "AR", "checksum is wrong"),
        (DYNAMIC_AR[:-1], "AR", "damaged or incomplete"),
        (DYNAMIC_AR[:40], "AR", "damaged or incomplete"),
        (emvco(tlv("53", "068"), "5802B"), "BO", "damaged or incomplete"),
        (emvco(tlv("53", "068"), "58XXBO"), "BO", "damaged or incomplete"),
        (emvco(tlv("53", "068"), tlv("53", "068"), tlv("58", "BO")), "BO", "damaged"),
        (emvco(tlv("62", "0599ticket"), tlv("53", "068"), tlv("58", "BO")), "BO", "damaged"),
        (DYNAMIC_AR, "BO", "asks for ARS; in your country Kibo pays QRs in BOB"),
        (DYNAMIC_MX, "AR", "asks for MXN"),
        (emvco(tlv("53", "068"), tlv("58", "AR")), "BO", "from another country (AR)"),
        (emvco(tlv("58", "BO")), "BO", "does not say its currency"),
        (emvco(tlv("53", "068"), tlv("54", "1,50"), tlv("58", "BO")), "BO", "amount"),
        (emvco(tlv("53", "068"), tlv("54", "1.505"), tlv("58", "BO")), "BO", "amount"),
        ("https://pay.example/qr/123", "BO", "a web link"),
        ("hello", "BO", "not a payment QR"),
        (CODI_MX, "BO", "a CoDi QR code, which Kibo does not pay in BO"),
        (QR_SIMPLE_BO, "AR", "a QR Simple QR code, which Kibo does not pay in AR"),
        ("0" * 2001, "BO", "too much"),
        ("abc\x00def", "BO", "characters no payment QR has"),
        ("   ", "BO", "Scan or upload"),
        (DYNAMIC_AR, None, "Choose your country first"),
    ],
)
def test_a_qr_kibo_cannot_pay_is_refused_with_the_reason(payload, country, reason):
    with pytest.raises(QRRejected, match=re.escape(reason)) as refused:
        parse_qr(payload, country=country)
    assert refused.value.status_code == 422


@pytest.mark.parametrize("zero", ["0", "0.00", "00"])
def test_a_static_qr_whose_amount_is_zero_has_no_amount(zero):
    # as Argentine static QRs in the wild say "the payer types the amount"
    static = emvco(
        tlv("01", "11"),
        tlv("43", tlv("00", "com.mercadolibre") + tlv("01", "https://mpago.la/pos/4110915")),
        tlv("52", "9700"),
        tlv("53", "032"),
        tlv("54", zero),
        tlv("58", "AR"),
        tlv("59", "GLADYS MABEL GIMENEZ"),
        tlv("60", "VILLA BOSCH"),
    )
    qr = parse_qr(static, country="AR")
    assert qr.amount is None and not qr.amount_is_fixed and qr.merchant == "GLADYS MABEL GIMENEZ"


@pytest.mark.parametrize("depth", [5, 300, 970])
def test_a_deeply_nested_codi_message_is_refused_not_a_crash(depth):
    payload = '{"TYP":19,"ic":{"IDC":"1"},"v":' + "[" * depth + "]" * depth + "}"
    # web3's py_ecc raises the recursion limit on import; a process that has not imported
    # it recurses out at Python's default (1000) levels
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(QRRejected, match="not a payment QR code") as refused:
            parse_qr(payload, country="MX")
    finally:
        sys.setrecursionlimit(limit)
    assert refused.value.status_code == 422


def test_nesting_inside_a_string_is_not_nesting():
    codi = r'{"TYP":19,"v":{"DEV":"[[[[[[[[{{{{"},"ic":{"IDC":"4a","SER":0,"ENC":"a\\"}}'
    assert json.loads(codi)["ic"]["ENC"] == "a\\"  # an escaped backslash, then the end
    assert parse_qr(codi, country="MX").kind == CODI


def test_a_codi_qr_is_kept_whole_and_the_payer_types_the_amount():
    qr = parse_qr(CODI_MX, country="MX")
    assert (qr.kind, qr.fiat, qr.amount, qr.raw) == (CODI, "MXN", None, CODI_MX)


def test_a_bolivian_bank_qr_is_kept_whole_and_the_payer_types_the_amount():
    qr = parse_qr(QR_SIMPLE_BO, country="BO")
    assert (qr.kind, qr.fiat, qr.amount, qr.raw) == (QR_SIMPLE, "BOB", None, QR_SIMPLE_BO)


@given(text=st.text(max_size=300), country=st.sampled_from(["BO", "MX", "AR"]))
def test_random_text_never_breaks_the_parser(text, country):
    with contextlib.suppress(QRRejected):
        parse_qr(text, country=country)


VALID = [MERCADO_PAGO_STATIC_AR, DYNAMIC_AR, DYNAMIC_MX, BOLIVIAN_SHOP, CODI_MX, QR_SIMPLE_BO]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)


@given(
    extra=st.dictionaries(st.sampled_from(["TYP", "v", "ic", "CRY", "x"]), json_values),
    nesting=st.integers(min_value=0, max_value=900),
)
def test_codi_like_json_is_read_or_refused_never_crashes(extra, nesting):
    message = json.dumps({**json.loads(CODI_MX), **extra})
    deep = message[:-1] + ',"n":' + "[" * nesting + "]" * nesting + "}"
    for payload in (message, deep):
        with contextlib.suppress(QRRejected):
            parse_qr(payload, country="MX")


@given(
    payload=st.sampled_from(VALID),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(min_value=0, max_value=300),
            st.characters(codec="utf-8"),
        ),
        min_size=1,
        max_size=4,
    ),
    recompute_crc=st.booleans(),
)
def test_mutated_payloads_are_read_or_refused_never_crash(payload, edits, recompute_crc):
    for operation, position, character in edits:
        position %= len(payload)
        if operation == "insert":
            payload = payload[:position] + character + payload[position:]
        elif operation == "delete":
            payload = payload[:position] + payload[position + 1 :]
        else:
            payload = payload[:position] + character + payload[position + 1 :]
    if recompute_crc and payload.endswith(payload[-4:]) and len(payload) > 8:
        body = payload[:-4]
        payload = body + f"{crc16_ccitt_false(body.encode()):04X}"
    for country in ("BO", "MX", "AR"):
        with contextlib.suppress(QRRejected):
            parse_qr(payload, country=country)
