import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from allies.models import AllyPenalty
from audit.models import Action, Log
from escrow.amounts import to_base_units
from escrow.models import EscrowAccount, Transfer
from escrow.networks import network_spec
from kibo.errors import DomainError
from kibo.services import config_set
from orders.errors import (
    AllyNotEligible,
    IllegalTransition,
    InvalidOrder,
    OpenOrderExists,
    OrderAlreadyTaken,
    OrderNotFound,
    StaleQuote,
    Underpaid,
)
from orders.models import LateProof, Order, OrderStatus
from orders.services import (
    order_cancel,
    order_complete,
    order_create,
    order_expire,
    order_mark_paid,
    order_refund_record,
    order_take,
)
from tests.factories import (
    FIAT_COUNTRY,
    QR,
    expire_timer,
    make_ally,
    make_order,
    make_paid_order,
    make_quote,
    make_taken_order,
    make_user,
    pdf_receipt,
    png_upload,
    shop_qr,
    tx_hash,
)
from tests.helpers.networks import change_local_network

pytestmark = pytest.mark.django_db


def actions(order) -> list[str]:
    return list(
        Log.objects.filter(order=order).order_by("created_at").values_list("action", flat=True)
    )


def assert_expires_in(order, minutes):
    left = order.expires_at - timezone.now()
    assert timedelta(minutes=minutes) - timedelta(seconds=5) < left <= timedelta(minutes=minutes)


# --- create -------------------------------------------------------------------------------


def test_create_prices_the_order_with_the_active_quote_and_starts_the_payment_timer():
    # given
    quote = make_quote(token="USDT", fiat="BOB", rate="9.80")
    user = make_user()

    # when
    order = order_create(
        user=user,
        qr_data=QR,
        amount_fiat="98.00",
        fiat_currency="BOB",
        crypto_token="USDT",
        network="local",
    )

    # then: 98 / 9.80 = 10, plus the 0.5 % spread; 1 % of it is Kibo's fee
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.quote == quote and order.exchange_rate == Decimal("9.80")
    assert order.amount_crypto == Decimal("10.050000")
    assert order.fee_crypto == Decimal("0.100500")
    assert_expires_in(order, 3)
    created = Log.objects.get(order=order, action=Action.ORDER_CREATED)
    assert created.actor_wallet == user.wallet_address
    assert created.metadata["amount_fiat"] == "98.00"


@pytest.mark.parametrize(
    ("fiat", "amount", "message"),
    [
        ("BOB", "9.99", "between 10 and 10000"),
        ("BOB", "10000.01", "between 10 and 10000"),
        ("MXN", "24.99", "between 25 and 25000"),
        ("ARS", "1499", "between 1500 and 1500000"),
        ("BOB", "12.345", "at most two decimals"),
        ("BOB", "1e30", "between 10 and 10000"),
        ("BOB", "1234567890123456789012345678.123", "between 10 and 10000"),
        ("BOB", "-50", "greater than zero"),
        ("BOB", "abc", "as a number"),
        ("BOB", "NaN", "greater than zero"),
        ("BOB", "Infinity", "greater than zero"),
    ],
)
def test_create_rejects_amounts_outside_the_currency_limits(fiat, amount, message):
    make_quote(fiat=fiat)
    with pytest.raises(InvalidOrder, match=message):
        order_create(
            user=make_user(country=FIAT_COUNTRY[fiat]),
            qr_data=shop_qr(fiat),
            amount_fiat=amount,
            fiat_currency=fiat,
            crypto_token="USDT",
            network="local",
        )
    assert not Order.objects.exists()


def test_create_follows_limits_changed_by_staff():
    make_quote()
    config_set(key="MAX_ORDER_AMOUNT_BOB", value="50")
    with pytest.raises(InvalidOrder, match="between 10 and 50"):
        make_order(amount_fiat="51.00")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fiat_currency", "EUR", "does not pay QRs in 'EUR'"),
        ("crypto_token", "DOGE", "does not accept 'DOGE'"),
        ("network", "solana", "payments on 'solana'"),
        ("network", "base", "payments on 'base'"),  # a real network this deployment skips
        ("qr_data", "   ", "Scan or upload"),
        ("qr_data", "x" * 2001, "too much to be a payment QR"),
        ("qr_data", "000201\x00010212", "characters no payment QR has"),
        ("qr_data", QR[:-4] + "0000", "checksum is wrong"),
        ("qr_data", shop_qr("MXN"), "asks for MXN; in your country Kibo pays QRs in BOB"),
        ("fiat_currency", "MXN", "This QR is paid in BOB, not in MXN"),
    ],
)
def test_create_rejects_unknown_choices_and_empty_qr(field, value, message):
    make_quote()
    request = dict(
        user=make_user(),
        qr_data=QR,
        amount_fiat="100",
        fiat_currency="BOB",
        crypto_token="USDT",
        network="local",
    )
    request[field] = value
    with pytest.raises(DomainError, match=message):
        order_create(**request)
    assert not Order.objects.exists()


def test_create_refuses_a_token_with_no_contract_on_the_network(settings):
    # given a deployment whose local chain has no USDC contract
    make_quote(token="USDC")
    change_local_network(settings, tokens={"USDT": network_spec("local").token("USDT")})
    # when a payer asks to pay in USDC there, then nothing is created
    with pytest.raises(InvalidOrder, match=r"does not accept USDC on Local \(anvil\)"):
        make_order(token="USDC")
    assert not Order.objects.exists()


def test_a_qr_that_fixes_the_amount_is_paid_for_exactly_that_amount():
    make_quote()
    request = dict(
        user=make_user(),
        qr_data=shop_qr("BOB", amount="35.50"),
        fiat_currency="BOB",
        crypto_token="USDT",
        network="local",
    )
    with pytest.raises(InvalidOrder, match=r"asks for exactly 35\.50 BOB"):
        order_create(**request, amount_fiat="40.00")
    assert order_create(**request, amount_fiat="35.5").amount_fiat == Decimal("35.50")


def test_a_user_who_has_not_chosen_a_country_is_asked_to_first():
    make_quote()
    with pytest.raises(DomainError, match="Choose your country first"):
        make_order(user=make_user(country=None))
    assert not Order.objects.exists()


def test_create_refuses_a_stale_quote_and_creates_nothing():
    make_quote(age_seconds=121)
    with pytest.raises(StaleQuote, match="Rates are being updated"):
        make_order()
    assert not Order.objects.exists()


def test_create_refuses_a_pair_without_any_quote():
    with pytest.raises(StaleQuote):
        order_create(
            user=make_user(country="MX"),
            qr_data=shop_qr("MXN"),
            amount_fiat="100",
            fiat_currency="MXN",
            crypto_token="ETH",
            network="local",
        )


def test_a_user_has_one_open_order_at_a_time():
    user = make_user()
    first = make_order(user=user)
    with pytest.raises(OpenOrderExists):
        make_order(user=user)
    order_cancel(order_id=first.pk, user=user)
    assert make_order(user=user).status == OrderStatus.PENDING_PAYMENT


def test_allies_cannot_create_orders():
    make_quote()
    with pytest.raises(InvalidOrder, match="Only a user account"):
        make_order(user=make_ally())


# --- mark paid ----------------------------------------------------------------------------


def test_mark_paid_locks_the_deposit_and_opens_the_order_to_allies():
    order = make_order()
    tx = tx_hash()

    paid = order_mark_paid(
        order_id=order.pk,
        deposit_tx_hash=tx.upper().replace("0X", "0x"),
        amount_received=order.amount_crypto,
    )

    assert paid.status == OrderStatus.AVAILABLE and paid.deposit_tx_hash == tx
    assert_expires_in(paid, 5)
    escrow = EscrowAccount.objects.get(order=order)
    assert escrow.status == EscrowAccount.Status.LOCKED
    assert escrow.amount == order.amount_crypto and escrow.deposit_tx_hash == tx
    received = Log.objects.get(order=order, action=Action.PAYMENT_RECEIVED)
    assert received.actor_wallet == order.user.wallet_address
    assert actions(order) == ["ORDER_CREATED", "STATUS_CHANGED", "PAYMENT_RECEIVED"]


def test_mark_paid_twice_with_the_same_transaction_changes_nothing():
    order = make_order()
    tx = tx_hash()
    order_mark_paid(order_id=order.pk, deposit_tx_hash=tx, amount_received=order.amount_crypto)
    logs = Log.objects.count()

    again = order_mark_paid(
        order_id=order.pk, deposit_tx_hash=tx, amount_received=order.amount_crypto
    )

    assert again.status == OrderStatus.AVAILABLE
    assert Log.objects.count() == logs and EscrowAccount.objects.count() == 1


def test_an_underpayment_leaves_the_order_waiting():
    order = make_order()  # 10.05 USDT due
    with pytest.raises(Underpaid, match=r"^10\.049999 USDT received, 10\.050000 USDT due\.$"):
        order_mark_paid(
            order_id=order.pk,
            deposit_tx_hash=tx_hash(),
            amount_received=order.amount_crypto - Decimal("0.000001"),
        )
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and not EscrowAccount.objects.exists()


def test_one_transaction_cannot_pay_two_orders():
    tx = tx_hash()
    first, second = make_order(), make_order()
    order_mark_paid(order_id=first.pk, deposit_tx_hash=tx, amount_received=first.amount_crypto)
    with pytest.raises(InvalidOrder, match="already paid for another order"):
        order_mark_paid(
            order_id=second.pk, deposit_tx_hash=tx, amount_received=second.amount_crypto
        )
    second.refresh_from_db()
    assert second.status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize("bad", ["", "0x123", "0x" + "g" * 64, "1" * 66])
def test_mark_paid_rejects_a_malformed_transaction_hash(bad):
    order = make_order()
    with pytest.raises(InvalidOrder, match="not a transaction hash"):
        order_mark_paid(order_id=order.pk, deposit_tx_hash=bad, amount_received=Decimal(1))


def test_a_payment_for_an_expired_order_is_refused():
    order = make_order()
    order_cancel(order_id=order.pk, user=order.user)
    with pytest.raises(IllegalTransition, match="no longer accepts a payment"):
        order_mark_paid(
            order_id=order.pk, deposit_tx_hash=tx_hash(), amount_received=order.amount_crypto
        )


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_order_id_is_not_found(bad_id):
    with pytest.raises(OrderNotFound):
        order_mark_paid(order_id=bad_id, deposit_tx_hash=tx_hash(), amount_received=Decimal(1))


# --- take ---------------------------------------------------------------------------------


def test_an_eligible_ally_takes_an_available_order():
    order, ally = make_paid_order(), make_ally(country="BO")

    taken = order_take(order_id=order.pk, ally=ally)

    assert taken.status == OrderStatus.TAKEN and taken.ally == ally and taken.taken_at
    assert_expires_in(taken, 5)
    assert (
        Log.objects.get(order=order, action=Action.ORDER_TAKEN).actor_wallet == ally.wallet_address
    )


def test_taking_twice_is_harmless_for_the_winner_and_refused_for_others():
    order, ally = make_paid_order(), make_ally()
    order_take(order_id=order.pk, ally=ally)
    logs = Log.objects.count()

    assert order_take(order_id=order.pk, ally=ally).ally == ally
    assert Log.objects.count() == logs
    with pytest.raises(OrderAlreadyTaken, match="Another ally already took this order"):
        order_take(order_id=order.pk, ally=make_ally())


@pytest.mark.parametrize(
    ("ally_kind", "error", "message"),
    [
        ("unverified", AllyNotEligible, "waiting for approval"),
        ("plain user", AllyNotEligible, "Only allies"),
        ("penalized", AllyNotEligible, "penalized"),
        ("busy", AllyNotEligible, "Finish the order you already took"),
        ("other country", OrderNotFound, "No such order"),
    ],
)
def test_ineligible_allies_cannot_take(ally_kind, error, message):
    order = make_paid_order(fiat="BOB")
    ally = {
        "unverified": lambda: make_ally(verified=False),
        "plain user": make_user,
        "penalized": make_ally,
        "busy": lambda: make_taken_order().ally,
        "other country": lambda: make_ally(country="MX"),
    }[ally_kind]()
    if ally_kind == "penalized":
        AllyPenalty.objects.create(
            ally=ally,
            reason="NO_PAYMENT",
            penalty_minutes=30,
            penalty_until=timezone.now() + timedelta(minutes=30),
        )

    with pytest.raises(error, match=message):
        order_take(order_id=order.pk, ally=ally)

    order.refresh_from_db()
    assert order.status == OrderStatus.AVAILABLE and order.ally is None


def test_an_unpaid_order_cannot_be_taken():
    order = make_order()
    with pytest.raises(IllegalTransition, match="no longer available"):
        order_take(order_id=order.pk, ally=make_ally())


def test_an_order_whose_timer_ran_out_cannot_be_taken_before_the_sweep():
    order = make_paid_order()
    expire_timer(order)
    with pytest.raises(IllegalTransition):
        order_take(order_id=order.pk, ally=make_ally())


# --- complete -----------------------------------------------------------------------------


def test_the_assigned_ally_completes_with_a_receipt():
    order = make_taken_order()
    ally, user = order.ally, order.user

    done = order_complete(order_id=order.pk, ally=ally, proof=png_upload())

    assert done.status == OrderStatus.COMPLETED and done.completed_at and done.expires_at is None
    assert done.proof_file.name.endswith(".png") and done.proof_file.storage.exists(
        done.proof_file.name
    )
    ally.refresh_from_db()
    user.refresh_from_db()
    assert ally.successful_orders == 1 and user.successful_orders == 1
    assert ally.reputation == Decimal("5.00")  # capped
    assert actions(order)[-3:] == ["STATUS_CHANGED", "PROOF_UPLOADED", "ORDER_COMPLETED"]
    completed = Log.objects.get(order=order, action=Action.ORDER_COMPLETED)
    assert completed.metadata == {"payout": str(order.payout_crypto), "fee": str(order.fee_crypto)}


def test_reputation_grows_with_completed_orders():
    ally = make_ally(reputation=Decimal("4.00"))
    order = make_taken_order(ally=ally)
    order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    ally.refresh_from_db()
    assert ally.reputation == Decimal("4.05")


def test_a_second_upload_for_a_completed_order_changes_nothing():
    order = make_taken_order()
    first = order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    logs = Log.objects.count()

    again = order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())

    assert again.proof_file.name == first.proof_file.name
    assert Log.objects.count() == logs
    order.ally.refresh_from_db()
    assert order.ally.successful_orders == 1


def test_another_ally_cannot_complete_someone_elses_order():
    order = make_taken_order()
    with pytest.raises(OrderNotFound):
        order_complete(order_id=order.pk, ally=make_ally(), proof=png_upload())
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN and not order.proof_file


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("r.png", b"this is text, not a picture"), "PNG, JPEG or WebP"),
        (SimpleUploadedFile("r.pdf", b""), "empty"),
        (SimpleUploadedFile("r.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024)), "too large"),
    ],
)
def test_a_receipt_is_checked_by_content_and_size(upload, message):
    order = make_taken_order()
    with pytest.raises(InvalidOrder, match=message):
        order_complete(order_id=order.pk, ally=order.ally, proof=upload)
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN


def test_a_pdf_receipt_is_accepted():
    order = make_taken_order()
    pdf = SimpleUploadedFile(
        "receipt.pdf", pdf_receipt(metadata={"/Author": "Juan Pérez", "/Producer": "BancoApp 4"})
    )
    done = order_complete(order_id=order.pk, ally=order.ally, proof=pdf)
    assert done.proof_file.name.endswith(".pdf")
    with done.proof_file.open("rb") as stored:
        kept = stored.read()
    assert b"Juan" not in kept and b"BancoApp" not in kept and b"/Producer" not in kept
    assert len(PdfReader(io.BytesIO(kept)).pages) == 1


def test_a_receipt_after_the_order_expired_changes_nothing_and_is_kept_for_staff():
    order = make_taken_order()
    expire_timer(order)
    order_expire(order_id=order.pk)
    receipt = png_upload()
    with pytest.raises(IllegalTransition, match="expired before the receipt arrived"):
        order_complete(order_id=order.pk, ally=order.ally, proof=receipt)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert not order.proof_file and order.completed_at is None
    late = LateProof.objects.get(order=order)
    assert late.ally == order.ally and late.order_status == OrderStatus.EXPIRED
    assert late.proof_file.storage.exists(late.proof_file.name)
    assert Log.objects.filter(order=order, action=Action.LATE_PROOF).count() == 1

    receipt.seek(0)  # the same late receipt again: still one kept
    with pytest.raises(IllegalTransition):
        order_complete(order_id=order.pk, ally=order.ally, proof=receipt)
    assert LateProof.objects.filter(order=order).count() == 1


def test_a_receipt_after_the_timer_ran_out_is_late_even_before_the_sweep():
    order = make_taken_order()
    expire_timer(order)
    with pytest.raises(IllegalTransition, match="expired before the receipt arrived"):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN and LateProof.objects.filter(order=order).exists()


def test_one_receipt_cannot_complete_two_orders():
    first, second = make_taken_order(), make_taken_order()
    receipt = png_upload()
    order_complete(order_id=first.pk, ally=first.ally, proof=receipt)
    stored = set(_stored_receipts())

    receipt.seek(0)
    with pytest.raises(InvalidOrder, match="already used for another order"):
        order_complete(order_id=second.pk, ally=second.ally, proof=receipt)

    second.refresh_from_db()
    assert second.status == OrderStatus.TAKEN and not second.proof_sha256
    assert set(_stored_receipts()) == stored


def _stored_receipts() -> list[str]:
    from django.core.files.storage import default_storage

    return default_storage.listdir("proofs")[1]


def test_a_photo_of_a_receipt_is_stored_upright_and_without_its_metadata():
    photo = Image.new("RGB", (600, 300), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to show
    exif[0x8825] = {2: (16.0, 30.0, 0.0)}  # a GPS position
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif)
    order = make_taken_order()

    done = order_complete(
        order_id=order.pk,
        ally=order.ally,
        proof=SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg"),
    )

    with done.proof_file.open("rb") as stored, Image.open(stored) as image:
        assert image.format == "JPEG" and image.size == (300, 600)
        assert not image.getexif() and "exif" not in image.info
    with done.proof_file.open("rb") as stored:
        assert b"PhoneMaker" not in stored.read()


def test_the_same_receipt_with_other_metadata_is_still_the_same_receipt():
    photo = Image.frombytes("RGB", (300, 200), (bytes(range(256)) * 704)[: 300 * 200 * 3])
    first, second = io.BytesIO(), io.BytesIO()
    photo.save(first, format="PNG")
    photo.save(second, format="JPEG", quality=100, comment=b"another file, truly")
    one, other = make_taken_order(), make_taken_order()
    order_complete(
        order_id=one.pk, ally=one.ally, proof=SimpleUploadedFile("a.png", first.getvalue())
    )
    reloaded = io.BytesIO()
    Image.open(io.BytesIO(first.getvalue())).save(reloaded, format="PNG", optimize=True)
    assert reloaded.getvalue() != first.getvalue()  # other bytes, the same pixels
    with pytest.raises(InvalidOrder, match="already used"):
        order_complete(
            order_id=other.pk,
            ally=other.ally,
            proof=SimpleUploadedFile("b.png", reloaded.getvalue()),
        )
    done = order_complete(
        order_id=other.pk, ally=other.ally, proof=SimpleUploadedFile("c.jpg", second.getvalue())
    )  # a lossy copy has other pixels: a hash cannot tell, staff can
    with done.proof_file.open("rb") as stored:
        assert b"another file, truly" not in stored.read()  # comments are not kept


def test_a_small_file_with_a_huge_picture_is_refused_before_it_is_decoded(settings):
    buffer = io.BytesIO()
    Image.new("1", (6000, 5000), 1).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 100_000
    order = make_taken_order()
    with pytest.raises(InvalidOrder, match="picture is too large"):
        order_complete(
            order_id=order.pk,
            ally=order.ally,
            proof=SimpleUploadedFile("r.png", buffer.getvalue()),
        )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("receipt.png", b"<!doctype html><script>alert(1)</script>", "PNG, JPEG or WebP"),
        ("receipt.pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\n", "damaged or incomplete"),
        ("receipt.png", b"GIF89a" + b"\x00" * 40, "PNG, JPEG or WebP"),
    ],
)
def test_what_a_file_is_decides_not_its_name(name, content, message):
    order = make_taken_order()
    with pytest.raises(InvalidOrder, match=message):
        order_complete(
            order_id=order.pk,
            ally=order.ally,
            proof=SimpleUploadedFile(name, content, content_type="image/png"),
        )
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN


def test_a_pdf_named_png_is_refused_and_a_pdf_named_pdf_is_kept_under_a_secret_name():
    order = make_taken_order()
    pdf = pdf_receipt()
    with pytest.raises(InvalidOrder, match=r"named \.png but it is a PDF"):
        order_complete(
            order_id=order.pk, ally=order.ally, proof=SimpleUploadedFile("receipt.png", pdf)
        )
    done = order_complete(order_id=order.pk, ally=order.ally, proof=SimpleUploadedFile("scan", pdf))
    assert done.proof_file.name.endswith(".pdf")
    assert str(order.pk) not in done.proof_file.name  # an unguessable name


# --- cancel -------------------------------------------------------------------------------


def test_cancel_before_payment_expires_with_nothing_to_refund():
    order = make_order()
    cancelled = order_cancel(order_id=order.pk, user=order.user)
    assert cancelled.status == OrderStatus.EXPIRED and not Transfer.objects.exists()
    expired = Log.objects.get(order=order, action=Action.ORDER_EXPIRED)
    assert expired.metadata == {"from": "PENDING_PAYMENT", "reason": "cancelled"}
    assert expired.actor_wallet == order.user.wallet_address


def test_cancel_after_payment_queues_a_refund_of_the_deposit():
    order = make_paid_order()
    order_cancel(order_id=order.pk, user=order.user)
    refund = Transfer.objects.get(order=order, purpose=Transfer.Purpose.REFUND)
    assert refund.status == Transfer.Status.PENDING
    token = network_spec(order.network).token(order.crypto_token)
    assert refund.amount_base == to_base_units(order.amount_crypto, token.decimals)
    assert refund.recipient == order.user.wallet_address
    assert (refund.token, refund.network) == (order.crypto_token, order.network)


def test_cancel_is_idempotent_and_refused_once_an_ally_is_paying():
    order = make_paid_order()
    order_cancel(order_id=order.pk, user=order.user)
    order_cancel(order_id=order.pk, user=order.user)
    assert Transfer.objects.filter(purpose=Transfer.Purpose.REFUND).count() == 1

    taken = make_taken_order()
    with pytest.raises(IllegalTransition, match="An ally is paying this QR"):
        order_cancel(order_id=taken.pk, user=taken.user)


def test_nobody_else_can_cancel_an_order():
    order = make_order()
    with pytest.raises(OrderNotFound):
        order_cancel(order_id=order.pk, user=make_user())
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


# --- refund -------------------------------------------------------------------------------


def test_a_confirmed_refund_settles_the_expired_order():
    order = make_paid_order()
    order_cancel(order_id=order.pk, user=order.user)
    tx = tx_hash()

    refunded = order_refund_record(order_id=order.pk, tx_hash=tx)
    order_refund_record(order_id=order.pk, tx_hash=tx)

    assert refunded.status == OrderStatus.REFUNDED
    assert actions(order).count("REFUND_PROCESSED") == 1


def test_only_an_expired_order_with_a_deposit_can_be_refunded():
    unpaid = make_order()
    order_cancel(order_id=unpaid.pk, user=unpaid.user)
    with pytest.raises(IllegalTransition):
        order_refund_record(order_id=unpaid.pk, tx_hash=tx_hash())
    with pytest.raises(IllegalTransition):
        order_refund_record(order_id=make_paid_order().pk, tx_hash=tx_hash())


def test_the_trigger_logs_every_status_change_of_a_full_lifecycle():
    order = make_taken_order()
    order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    changes = Log.objects.filter(order=order, action=Action.STATUS_CHANGED).order_by("created_at")
    assert [(c.metadata["old_status"], c.metadata["new_status"]) for c in changes] == [
        ("PENDING_PAYMENT", "AVAILABLE"),
        ("AVAILABLE", "TAKEN"),
        ("TAKEN", "COMPLETED"),
    ]
    # the acting wallet: the user's until an ally takes the order, then the ally's
    assert [c.actor_wallet for c in changes] == [
        order.user.wallet_address,
        order.ally.wallet_address,
        order.ally.wallet_address,
    ]
    assert all(c.metadata["timestamp"] for c in changes)


def test_two_orders_claiming_one_transaction_at_once_get_a_clear_message():
    # given the deposit was claimed by another order after this one was locked
    from escrow.accounts import escrow_account_open

    first, second = make_order(), make_order()
    tx = tx_hash()
    escrow_account_open(
        order_id=first.pk,
        amount=first.amount_crypto,
        token=first.crypto_token,
        network=first.network,
        deposit_tx_hash=tx,
    )

    # when the second order is marked paid with the same hash, then nothing changes
    with pytest.raises(InvalidOrder, match="already paid for another order"):
        order_mark_paid(
            order_id=second.pk, deposit_tx_hash=tx, amount_received=second.amount_crypto
        )
    second.refresh_from_db()
    assert second.status == OrderStatus.PENDING_PAYMENT


def test_a_timer_may_be_a_fraction_of_a_minute():
    config_set(key="TAKEN_TIMEOUT_MINUTES", value="0.5")
    order = make_taken_order()
    assert order.expires_at - order.taken_at == timedelta(seconds=30)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_receipt())))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.png", _png(1, 1), "too small to be a receipt"),
        ("r.png", _png(1080, 120), "too small to be a receipt"),
        ("r.pdf", pdf_receipt(pages=0), "has no page"),
        ("r.pdf", _encrypted_pdf(), "protected with a password"),
    ],
)
def test_a_receipt_must_be_able_to_be_one(name, content, message):
    order = make_taken_order()
    before = set(_stored_receipts())
    with pytest.raises(InvalidOrder, match=message):
        order_complete(order_id=order.pk, ally=order.ally, proof=SimpleUploadedFile(name, content))
    order.refresh_from_db()
    assert order.status == OrderStatus.TAKEN and set(_stored_receipts()) == before


def test_a_pdf_loses_what_runs_when_it_is_opened():
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_receipt())))
    writer.root_object[NameObject("/OpenAction")] = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('hola');"),
        }
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    assert b"/JavaScript" in buffer.getvalue()
    order = make_taken_order()
    done = order_complete(
        order_id=order.pk, ally=order.ally, proof=SimpleUploadedFile("r.pdf", buffer.getvalue())
    )
    with done.proof_file.open("rb") as stored:
        kept = stored.read()
    assert b"/JavaScript" not in kept and b"/OpenAction" not in kept


def test_late_receipts_are_kept_up_to_a_few_per_order():
    from orders.services import LATE_PROOFS_PER_ORDER

    order = make_taken_order()
    expire_timer(order)
    order_expire(order_id=order.pk)
    first = png_upload()
    for receipt in [first] + [png_upload() for _ in range(LATE_PROOFS_PER_ORDER - 1)]:
        with pytest.raises(IllegalTransition, match="kept the receipt"):
            order_complete(order_id=order.pk, ally=order.ally, proof=receipt)
    before = set(_stored_receipts())

    with pytest.raises(IllegalTransition, match="already sent 3 receipts"):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())

    assert LateProof.objects.filter(order=order).count() == LATE_PROOFS_PER_ORDER
    assert set(_stored_receipts()) == before  # the refused file is not kept
    first.seek(0)  # the same receipt again is still "kept", not counted twice
    with pytest.raises(IllegalTransition, match="kept the receipt"):
        order_complete(order_id=order.pk, ally=order.ally, proof=first)


def test_a_new_allys_first_payouts_are_held_longer():
    from escrow.models import Transfer
    from kibo.services import config_set

    config_set(key="RELEASE_HOLD_MINUTES", value="10")
    config_set(key="RELEASE_HOLD_MINUTES_NEW_ALLY", value="120")
    config_set(key="NEW_ALLY_ORDERS", value="2")
    ally = make_ally()

    def hold_minutes() -> float:
        order = make_taken_order(ally=ally)
        order_complete(order_id=order.pk, ally=ally, proof=png_upload())
        release = Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)
        return (release.held_until - timezone.now()).total_seconds() / 60

    held = [hold_minutes() for _ in range(3)]
    assert 119 < held[0] <= 120 and 119 < held[1] <= 120  # the first two: a new ally
    assert 9 < held[2] <= 10  # then the usual hold
