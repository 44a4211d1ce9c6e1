"""The ally's pages: apply, the live order board, take an order, pay its QR, prove it, stats.

An order is the assigned ally's to work; anyone else gets 404. The board polls a partial
that answers 204 (nothing to swap) while nothing on it changed.
"""

import hashlib
from functools import wraps

import segno
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from allies.models import AllyApplication
from allies.presence import DAY_MINUTES, ally_switch, parse_hours, working_hours_set
from allies.selectors import pending_application
from allies.services import ally_apply
from escrow.models import Transfer
from kibo.cache import render_fragments
from kibo.charts import bar_chart
from kibo.errors import DomainError, NotFound, refusal_status
from kibo.models import Country, User
from kibo.ratelimit import limited
from kibo.replica import reads_replica
from orders.board import ally_board_state, ally_dashboard
from orders.disputes import PENALTY_DISPUTE_WINDOW, dispute_answer
from orders.errors import OrderAlreadyTaken
from orders.forms import statement_fields
from orders.models import OPEN_STATUSES, Dispute, Order, OrderStatus
from orders.qr import QRRejected, parse_qr
from orders.selectors import order_disputes
from orders.services import order_complete, order_take


def ally_page(view):
    """Pages for allies: the signed-out go to sign in, staff find nothing, and a wallet that
    is not an ally yet is sent to apply."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.user.is_staff:
            raise Http404()
        if request.user.role != User.Role.ALLY:
            return redirect("allies:apply")
        return view(request, *args, **kwargs)

    return wrapper


def _htmx_redirect(request, url: str):
    if request.htmx:
        return HttpResponseClientRedirect(url, status=204)  # no body: nothing for htmx to swap
    return redirect(url)


# --- becoming an ally --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def apply(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user.is_staff:
        raise Http404()
    if request.user.role == User.Role.ALLY:
        return redirect("allies:board")
    pending = pending_application(user=request.user)
    form = {
        "country": request.POST.get("country", request.user.country or ""),
        "display_name": request.POST.get("display_name", ""),
        "bank": request.POST.get("bank", ""),
    }
    error = None
    if request.method == "POST" and pending is None:
        try:
            pending = ally_apply(user=request.user, **form)
        except DomainError as refused:
            error = refused.message
        else:
            messages.success(request, _("Thank you. Kibo's staff will review your application."))
            return redirect("allies:apply")
    rejected = request.user.ally_applications.filter(
        status=AllyApplication.Status.REJECTED
    ).exists()
    return render(
        request,
        "allies/apply.html",
        {
            "pending": pending,
            "rejected": rejected and pending is None,
            "form": form,
            "error": error,
            "countries": Country.choices,
        },
        status=422 if error else 200,
    )


# --- the board ---------------------------------------------------------------------------


BOARD_POLL_SECONDS = 5  # an order waits minutes; every ally of a country polls
CSRF_FIELD = "<!-- csrf -->"
CARD_SECONDS = 15 * 60  # longer than an order waits on a board


def _cards(request, board) -> list[str]:
    """The board's order cards. An order's card never changes while it waits, so each is
    rendered once per language, time zone and take-permission and kept in the cache; the
    per-session CSRF field is put in as the board is assembled."""
    variant = f"{get_language()}:{timezone.get_current_timezone_name()}:{int(board.can_take)}"
    # CSRF_FIELD is our own constant placeholder, and each card was rendered by our template.
    context = {"can_take": board.can_take, "csrf_field": mark_safe(CSRF_FIELD)}  # nosec B308 B703
    cards = render_fragments(
        "allies/partials/_board_card.html",
        [(f"board-card:{o.pk}:{variant}", {**context, "order": o}) for o in board.orders],
        CARD_SECONDS,
    )
    field = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )
    return [mark_safe(card.replace(CSRF_FIELD, field)) for card in cards]  # nosec B308 B703


def _board_context(request) -> dict:
    state = ally_board_state(ally=request.user)
    version = hashlib.sha256(state.fingerprint.encode()).hexdigest()[:16]
    return {
        "board": state,
        "version": version,
        "cards": lambda: _cards(request, state),
        "poll_seconds": BOARD_POLL_SECONDS,
    }


@ally_page
@require_GET
def board(request):
    return render(request, "allies/board.html", _board_context(request))


@ally_page
@require_GET
def board_part(request):
    """What the board polls: 204 while nothing changed since the version the page shows."""
    context = _board_context(request)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(request, "allies/board.html#board", context)


@ally_page
@require_POST
def take(request, order_id):
    try:
        order = order_take(order_id=order_id, ally=request.user)
    except NotFound:
        raise Http404(_("No such order.")) from None
    except DomainError as refused:
        message = (
            _("Another ally took this order.")
            if isinstance(refused, OrderAlreadyTaken)
            else refused.message
        )
        if not request.htmx:
            messages.error(request, message)
            return redirect("allies:board")
        response = render(
            request, "allies/board.html#take-refused", {"message": message}, status=409
        )
        return trigger_client_event(response, "board-refresh")
    return _htmx_redirect(request, reverse("allies:work", kwargs={"order_id": order.pk}))


@ally_page
@require_POST
def presence(request):
    """The board's switch: online (told of new orders, counted for payers) or offline."""
    ally_switch(ally=request.user, online=request.POST.get("online") == "1")
    if request.htmx:
        return render(request, "allies/board.html#board", _board_context(request))
    return redirect("allies:board")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@ally_page
@require_http_methods(["GET", "POST"])
def hours(request):
    """The ally's working hours, per weekday in their country's time: online in them
    unless they switch off, offline outside them unless they switch on."""
    error = None
    if request.method == "POST":
        try:
            working_hours_set(ally=request.user, hours=parse_hours(request.POST))
        except DomainError as refused:
            error = refused.message
        else:
            messages.success(request, _("Your working hours are saved."))
            return redirect("allies:board")
    if error:
        shown = request.POST  # what was typed, to mend
    else:
        shown = {}
        for span in request.user.working_hours.all():
            shown[f"starts-{span.weekday}"] = _clock(span.starts)
            shown[f"ends-{span.weekday}"] = _clock(span.ends)
    days = [
        {
            "weekday": day,
            "name": name,
            "starts": shown.get(f"starts-{day}", ""),
            "ends": shown.get(f"ends-{day}", ""),
        }
        for day, name in WEEKDAYS.items()
    ]
    return render(
        request,
        "allies/hours.html",
        {"days": days, "error": error, "day_end": _clock(DAY_MINUTES)},
        status=422 if error else 200,
    )


# --- working an order --------------------------------------------------------------------


def _assigned_order(request, order_id) -> Order:
    order = (
        Order.objects.select_related("user", "escrow")
        .filter(pk=order_id, ally=request.user)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    return order


def _to_answer(disputes: list[Dispute]) -> Dispute | None:
    """The payer's open dispute, while the ally has not given their side."""
    return next(
        (
            d
            for d in disputes
            if d.kind == Dispute.Kind.NOT_PAID
            and d.status == Dispute.Status.OPEN
            and d.answered_at is None
        ),
        None,
    )


def _contestable(penalties: list, disputes: list[Dispute], *, now) -> object | None:
    """The newest penalty about the order the ally may still contest (none while a dispute
    about the order is open)."""
    if any(d.status == Dispute.Status.OPEN for d in disputes):
        return None
    contested = {d.penalty_id for d in disputes}
    return next(
        (
            p
            for p in penalties
            if p.pk not in contested and p.created_at > now - PENALTY_DISPUTE_WINDOW
        ),
        None,
    )


def _work_context(order: Order, **extra) -> dict:
    try:
        qr = parse_qr(order.qr_data, country=order.user.country)
    except QRRejected:
        qr = None
    now = timezone.now()
    disputes = order_disputes(order=order)
    penalties = list(order.penalties.filter(ally=order.ally_id).order_by("-created_at"))
    return {
        "order": order,
        "qr": qr,
        "qr_svg": segno.make(order.qr_data, error="m").svg_data_uri(scale=8, border=4),
        "working": order.status == OrderStatus.TAKEN and order.expires_at > now,
        "disputes": disputes,
        "to_answer": _to_answer(disputes),
        "penalties": penalties,
        "contestable": _contestable(penalties, disputes, now=now),
        "late_proofs": list(order.late_proofs.filter(ally=order.ally_id)),
        "release": (
            None
            if order.status in OPEN_STATUSES  # no payout before the receipt
            else order.transfers.filter(purpose=Transfer.Purpose.RELEASE).first()
        ),
        **extra,
    }


def work_page(request, order: Order, *, status: int = 200, **extra):
    """The page of an order the ally took, with any message for a refused form."""
    return render(request, "allies/work.html", _work_context(order, **extra), status=status)


@ally_page
@require_GET
def work(request, order_id):
    return work_page(request, _assigned_order(request, order_id))


@ally_page
@require_POST
@limited("upload")
def answer(request, order_id):
    """The ally's side of the payer's open dispute: a statement and up to three files."""
    order = _assigned_order(request, order_id)
    try:
        dispute_answer(order_id=order.pk, ally=request.user, **statement_fields(request))
    except NotFound:
        raise Http404(_("No such order.")) from None
    except DomainError as refused:
        status = refusal_status(refused)
        return work_page(request, order, answer_error=refused.message, status=status)
    messages.success(request, _("Your side was sent. Our staff will review it."))
    return redirect("allies:work", order_id=order.pk)


@ally_page
@require_POST
@limited("upload")
def proof(request, order_id):
    """The ally's bank receipt: a valid one completes the order and queues the payout."""
    order = _assigned_order(request, order_id)
    upload = request.FILES.get("proof")
    try:
        if upload is None:
            raise DomainError(_("Choose the receipt file to upload."))
        order_complete(order_id=order.pk, ally=request.user, proof=upload)
    except NotFound:
        raise Http404(_("No such order.")) from None
    except DomainError as refused:
        order.refresh_from_db()
        if request.htmx:
            return render(
                request,
                "allies/work.html#proof-error",
                {"error": refused.message},
                status=422,
            )
        return work_page(request, order, error=refused.message, status=422)
    messages.success(request, _("Receipt received. Your payout is on its way to your wallet."))
    return _htmx_redirect(request, reverse("allies:work", kwargs={"order_id": order.pk}))


# --- stats -------------------------------------------------------------------------------


CHART_SECONDS = 24 * 60 * 60


@ally_page
@require_GET
@reads_replica
def stats(request):
    dashboard = ally_dashboard(ally=request.user)
    days = dashboard.daily_completed
    # The chart is the page's costliest part to render and changes with its numbers only.
    drawn = hashlib.sha256(repr(days).encode()).hexdigest()[:16]
    (chart,) = render_fragments(
        "allies/partials/_chart.html",
        [(f"ally-chart:{get_language()}:{drawn}", {"chart": bar_chart(days)})],
        CHART_SECONDS,
    )
    return render(
        request,
        "allies/stats.html",
        {"dashboard": dashboard, "stats": dashboard.stats, "chart": chart},
    )
