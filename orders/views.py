"""The payer's pages: scan a QR, see its price, create the order, pay it, follow it.

Every page is for the signed-in user who owns the order; anyone else gets 404. Forms work
without JavaScript (post/redirect/get); htmx swaps partials where it is there.
"""

import io
from functools import wraps

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from allies.presence import allies_online_count
from allies.selectors import country_change_refusal
from allies.views import work_page
from escrow.chain import ChainUnavailable, NodeError
from escrow.models import Transfer
from escrow.networks import UnknownNetwork, configured_networks, is_enabled, network_spec
from escrow.selectors import payment_request
from kibo.cache import render_fragments
from kibo.errors import DomainError, NotFound, refusal_status
from kibo.models import Country, User
from kibo.ratelimit import limited
from kibo.replica import reads_replica
from orders.disputes import dispute_open
from orders.forms import statement_fields
from orders.models import OPEN_STATUSES, Dispute, DisputeEvidence, Order, OrderStatus
from orders.payments import deposit_verify
from orders.pictures import NotAPicture, TooManyPixels, opened_picture
from orders.proofs import CONTENT_TYPES
from orders.qr import PaymentQR, QRImageTooLarge, QRRejected, parse_qr
from orders.quoting import order_quote, parse_amount_fiat
from orders.selectors import order_visible_privately, user_order_summary
from orders.services import order_cancel, order_confirm_paid, order_create, parse_tx_hash
from orders.tasks import check_deposit_once
from quotes.models import FIAT_COUNTRY, Token

HISTORY_PAGE_SIZE = 20
HISTORY_ROW_SECONDS = 24 * 60 * 60
QR_IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}


def user_page(view):
    """Pages for payers: the signed-out go to sign in; allies and staff find nothing here."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.user.role != User.Role.USER:
            raise Http404()
        return view(request, *args, **kwargs)

    return wrapper


def _owned_order(request, order_id) -> Order:
    """The order, if it is the signed-in user's; with what its status page shows of it."""
    order = (
        Order.objects.select_related("user", "ally", "escrow")
        .filter(pk=order_id, user=request.user)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    return order


# --- scan and price ----------------------------------------------------------------------


def _open_order(user) -> Order | None:
    return Order.objects.filter(user=user, status__in=OPEN_STATUSES).first()


def _choices() -> dict:
    return {
        "tokens": Token.values,
        "networks": [(spec.name, spec.label) for spec in configured_networks()],
    }


def _price_step(request, qr: PaymentQR, *, error: str | None = None) -> dict:
    """What the price step shows for this QR and the chosen token, network and amount."""
    networks = [spec.name for spec in configured_networks()]
    token = request.POST.get("crypto_token") or Token.USDT
    network = request.POST.get("network") or (networks[0] if networks else "")
    typed = request.POST.get("amount_fiat", "")
    step = {
        "qr": qr,
        "token": token if token in Token.values else Token.USDT,
        "network": network if network in networks else (networks[0] if networks else ""),
        "amount_text": str(qr.amount) if qr.amount_is_fixed else typed,
        "allies_online": allies_online_count(country=FIAT_COUNTRY[qr.fiat]),
        "error": error,
        **_choices(),
    }
    amount = qr.amount if qr.amount_is_fixed else None
    if amount is None and typed.strip():
        try:
            amount = parse_amount_fiat(typed, qr.fiat)
        except DomainError as problem:
            step["amount_error"] = problem.message
    if amount is not None:
        try:
            step["quoted"] = order_quote(
                amount_fiat=amount, fiat_currency=qr.fiat, crypto_token=step["token"]
            )
            step["amount"] = amount
        except DomainError as problem:
            step["amount_error"] = problem.message
    return step


def _read_qr_image(upload) -> str:
    """The text of the QR in an uploaded picture, checked by content; raises QRRejected.

    One request decodes at most KIBO_QR_IMAGE_MAX_PIXELS pixels, in grey (a byte each)."""
    if upload.size > settings.KIBO_QR_IMAGE_MAX_BYTES:
        limit = settings.KIBO_QR_IMAGE_MAX_BYTES // (1024 * 1024)
        raise QRImageTooLarge(
            _("The picture is too large; the limit is %(mb)s MB.") % {"mb": limit}
        )
    try:
        with opened_picture(
            upload, formats=QR_IMAGE_FORMATS, max_pixels=settings.KIBO_QR_IMAGE_MAX_PIXELS
        ) as image:
            grey = image.convert("L")
    except TooManyPixels:
        raise QRImageTooLarge(
            _("The picture is too large; upload a screenshot of just the QR code.")
        ) from None
    except NotAPicture:
        raise QRRejected(_("Upload a picture (PNG, JPEG or WebP) of the QR code.")) from None
    import zxingcpp  # loaded on first use: it is large

    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
    if not found:
        raise QRRejected(_("No QR code was found in this picture. Try a sharper screenshot."))
    return found[0].text


@user_page
@require_GET
def new_order(request):
    """Scan the shop's QR with the camera, or upload a screenshot of it."""
    return render(request, "orders/new.html", _new_order_page(request))


def _new_order_page(request, **context) -> dict:
    """What the whole "Pay a QR" page shows besides its step: the order in progress, and
    the country picker while the user may still change country."""
    return {
        "open_order": _open_order(request.user),
        "countries": Country.choices,
        "may_change_country": country_change_refusal(user=request.user) is None,
        **context,
    }


@user_page
@require_POST
@limited("qr-image", when=lambda request: "qr_image" in request.FILES)
def read_qr(request):
    """POST qr_text (what the camera read) or qr_image -> the QR and its price, or 422
    (413 for a picture too large to read).

    The price step posts here again when the token, network or amount changes."""
    try:
        upload = request.FILES.get("qr_image")
        text = _read_qr_image(upload) if upload else request.POST.get("qr_text", "")
        qr = parse_qr(text.strip(), country=request.user.country)
    except QRRejected as rejected:
        status = rejected.status_code  # 422, or 413 for a picture too large to read
        if request.htmx:
            return render(
                request, "orders/new.html#qr-error", {"qr_error": rejected.message}, status=status
            )
        return render(
            request,
            "orders/new.html",
            _new_order_page(request, qr_error=rejected.message),
            status=status,
        )
    if request.htmx:
        return render(request, "orders/new.html#price", {"step": _price_step(request, qr)})
    return render(
        request, "orders/new.html", _new_order_page(request, step=_price_step(request, qr))
    )


# --- create and follow --------------------------------------------------------------------


@user_page
@require_http_methods(["GET", "POST"])
@reads_replica  # the history; a POST (a new order) reads the primary
def orders(request):
    """GET: the user's orders, newest first. POST: create an order from the price step."""
    if request.method == "POST":
        return _create(request)
    page = Paginator(user_order_summary(user=request.user), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # A row changes while its order is open (the time left); a final order's row is kept.
    variant = f"{get_language()}:{timezone.get_current_timezone_name()}"
    rows = render_fragments(
        "orders/partials/_history_row.html",
        [
            (
                None
                if order.status in OPEN_STATUSES
                else f"history-row:{order.pk}:{order.status}:{variant}",
                {"order": order},
            )
            for order in page
        ],
        HISTORY_ROW_SECONDS,
    )
    return render(request, "orders/list.html", {"page": page, "rows": rows})


def _create(request):
    try:
        order = order_create(
            user=request.user,
            qr_data=request.POST.get("qr_text", ""),
            amount_fiat=request.POST.get("amount_fiat", ""),
            fiat_currency=request.POST.get("fiat_currency", ""),
            crypto_token=request.POST.get("crypto_token", ""),
            network=request.POST.get("network", ""),
        )
    except DomainError as error:
        try:
            qr = parse_qr(request.POST.get("qr_text", "").strip(), country=request.user.country)
        except QRRejected:
            context = _new_order_page(request, qr_error=error.message)
        else:
            context = _new_order_page(request, step=_price_step(request, qr, error=error.message))
        return render(request, "orders/new.html", context, status=error.status_code)
    return redirect("orders:detail", order_id=order.pk)


def _is_final(order: Order, dispute: Dispute | None) -> bool:
    """Nothing more will happen that the payer waits for: paid (and not waiting for staff
    or a refund), refunded, or expired before any payment."""
    if order.status == OrderStatus.COMPLETED:
        return dispute is None or dispute.status == Dispute.Status.REJECTED
    return order.status == OrderStatus.REFUNDED or (
        order.status == OrderStatus.EXPIRED and not hasattr(order, "escrow")
    )


def _status_context(order: Order, **extra) -> dict:
    refund = refund_url = None  # shown once the refund is confirmed
    if order.status == OrderStatus.REFUNDED:
        refund = order.transfers.filter(purpose=Transfer.Purpose.REFUND).first()
    if refund is not None and refund.mined_tx_hash and is_enabled(order.network):
        refund_url = network_spec(order.network).explorer_tx_url(refund.mined_tx_hash)
    dispute = None  # the payer's, which only a paid QR can have: not while the page polls
    if order.status in (OrderStatus.COMPLETED, OrderStatus.REFUNDED):
        dispute = (
            order.disputes.filter(kind=Dispute.Kind.NOT_PAID).prefetch_related("evidence").first()
        )
    held = None
    if order.status == OrderStatus.COMPLETED and dispute is None:
        held = order.transfers.filter(
            purpose=Transfer.Purpose.RELEASE,
            status=Transfer.Status.HELD,
            held_until__gt=timezone.now(),
        ).first()
    return {
        "order": order,
        # while it waits for an ally: how many of its country's are there
        "allies_online": (
            allies_online_count(country=FIAT_COUNTRY[order.fiat_currency])
            if order.status == OrderStatus.AVAILABLE
            else None
        ),
        "final": _is_final(order, dispute),
        "refund": refund,
        "refund_url": refund_url,
        "can_cancel": order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.AVAILABLE),
        "held_release": held,
        "dispute": dispute,
        **extra,
    }


@user_page
@require_GET
def detail(request, order_id):
    order = _owned_order(request, order_id)
    context = _status_context(order)
    if order.status == OrderStatus.PENDING_PAYMENT:
        payment = payment_request(order)
        context["payment"] = payment
        context["payment_qr"] = segno.make(payment.eip681, error="m").svg_data_uri(
            scale=5, border=2
        )
    return render(request, "orders/detail.html", context)


@user_page
@require_GET
def status(request, order_id):
    """The status panel the detail page polls; 286 once nothing more will change."""
    order = _owned_order(request, order_id)
    context = _status_context(order)
    template = "orders/detail.html#status"
    if context["final"]:
        return HttpResponseStopPolling(render_to_string(template, context, request))
    return render(request, template, context)


@user_page
@require_POST
def confirm(request, order_id):
    """The payer says the shop got paid: the ally's held payout goes out now."""
    order = _owned_order(request, order_id)
    try:
        order_confirm_paid(order_id=order.pk, user=request.user)
        messages.success(request, _("Thank you. The ally's payout is on its way."))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("orders:detail", order_id=order.pk)


@require_POST
@limited("upload")
def dispute(request, order_id):
    """The payer says the shop was not paid (during the hold), or the ally contests a
    penalty about the order: a statement and up to three files."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    order = (
        Order.objects.select_related("user", "ally", "escrow")
        .filter(Q(user=request.user) | Q(ally=request.user), pk=order_id)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    try:
        dispute_open(order_id=order.pk, user=request.user, **statement_fields(request))
    except NotFound:
        raise Http404(_("No such order.")) from None
    except DomainError as refused:
        status = refusal_status(refused)
        if order.ally_id == request.user.pk:
            return work_page(request, order, dispute_error=refused.message, status=status)
        return render(
            request,
            "orders/detail.html",
            _status_context(order, dispute_error=refused.message),
            status=status,
        )
    if order.ally_id == request.user.pk:
        messages.success(request, _("Your case was sent. Our staff will review it."))
        return redirect("allies:work", order_id=order.pk)
    messages.success(
        request, _("Your dispute was sent. The ally's payout stays frozen until our staff decide.")
    )
    return redirect("orders:detail", order_id=order.pk)


@user_page
@require_POST
def cancel(request, order_id):
    order = _owned_order(request, order_id)
    try:
        order_cancel(order_id=order.pk, user=request.user)
        messages.success(request, _("The order was cancelled."))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("orders:detail", order_id=order.pk)


def _deposit_result(request, order: Order, state: str, message: str, *, status: int = 200):
    if not request.htmx:
        (messages.success if status == 200 else messages.error)(request, message)
        return redirect("orders:detail", order_id=order.pk)
    return render(
        request,
        "orders/detail.html#deposit-result",
        {"order": order, "state": state, "message": message},
        status=status,
    )


@user_page
@require_POST
@limited("deposit-report")
def deposit(request, order_id):
    """The owner reports the wallet transaction that paid the order."""
    order = _owned_order(request, order_id)
    try:
        tx_hash = parse_tx_hash(request.POST.get("tx_hash", ""))
        result = deposit_verify(order=order, tx_hash=tx_hash)
    except DomainError as error:
        return _deposit_result(request, order, "rejected", error.message, status=error.status_code)
    except (ChainUnavailable, UnknownNetwork, NodeError):
        message = _(
            "We can't reach the network right now. Your payment is safe; try again in a minute."
        )
        return _deposit_result(request, order, "unavailable", message, status=503)
    if result.state == "pending":
        transaction.on_commit(lambda: check_deposit_once(order.pk, tx_hash))
    return _deposit_result(request, order, result.state, result.message)


# --- private files -----------------------------------------------------------------------


def receipt_response(stored, *, filename: str):
    """A stored receipt streamed privately: pictures shown, PDFs downloaded, never cached."""
    extension = stored.name.rsplit(".", 1)[-1].lower()
    response = FileResponse(
        stored.open("rb"),
        content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
        as_attachment=extension not in ("png", "jpg", "webp"),
        filename=f"{filename}.{extension}",
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _private_order(request, order_id) -> Order:
    order = order_visible_privately(user=request.user, order_id=order_id)
    if order is None:
        raise Http404(_("No such order."))
    return order


@require_GET
def qr_png(request, order_id):
    """The payment QR as a picture (to pay from a banking app's gallery), for the order's
    payer, its ally and staff; 404 for anyone else."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    order = _private_order(request, order_id)
    picture = io.BytesIO()
    segno.make(order.qr_data, error="m").save(picture, kind="png", scale=10, border=4)
    response = HttpResponse(picture.getvalue(), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="kibo-qr-{order.pk}.png"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def proof(request, order_id):
    """The ally's bank receipt, for the order's payer, its ally and staff; 404 for anyone else."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    order = _private_order(request, order_id)
    if not order.proof_file:
        raise Http404(_("No such order."))
    return receipt_response(order.proof_file, filename=f"kibo-receipt-{order.pk}")


@require_GET
def evidence(request, order_id, evidence_id):
    """A file added to one of the order's disputes, for its payer, its ally and staff."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    order = _private_order(request, order_id)
    found = DisputeEvidence.objects.filter(pk=evidence_id, dispute__order=order).first()
    if found is None:
        raise Http404(_("No such file."))
    return receipt_response(found.file, filename=f"kibo-evidence-{found.pk}")
