import json
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from eth_utils import is_address, to_checksum_address

from allies.services import user_country_set
from escrow.chain import ChainUnavailable, head_block
from escrow.networks import configured_networks
from kibo import pwa, siwe, telegram, webpush
from kibo.cache import hit
from kibo.celery import app as celery_app
from kibo.errors import DomainError, WalletBlocked, refusal_status
from kibo.models import TelegramChat, User
from kibo.ratelimit import client_ip, limited
from kibo.services import (
    push_device_remove,
    push_device_subscribe,
    push_devices_forget,
    user_sign_in,
)
from quotes.models import Quote

NONCE_SESSION_KEY = "siwe_nonce"
DEVICES_SESSION_KEY = "push_devices"  # the devices this browser subscribed in this session
WALLET_BACKEND = "kibo.auth_backends.WalletBackend"


def _home(user) -> str:
    """Where a signed-in person starts."""
    if user.is_staff:
        return reverse("admin:index")
    if user.role == User.Role.ALLY:
        return reverse("allies:board")
    return reverse("orders:new")


@require_GET
def landing(request):
    home = _home(request.user) if request.user.is_authenticated else None
    if home:
        return redirect(home)
    return render(request, "kibo/landing.html")


@require_GET
def auth_page(request):
    """Sign in with the browser's wallet (static/kibo/wallet.js does the talking)."""
    if request.user.is_authenticated and _home(request.user):
        return redirect(_home(request.user))
    return render(request, "kibo/signin.html", {"next": _safe_next(request)})


def _safe_next(request) -> str:
    """Where to go next, when it is a path on this site ("" for anything else)."""
    target = request.GET.get("next") or request.POST.get("next") or ""
    allowed = target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


def _too_many(retry_after: int) -> JsonResponse:
    return JsonResponse(
        {"error": _("Too many sign-in attempts. Wait a minute and try again.")},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def _chain_ids() -> set[int]:
    return {spec.chain_id for spec in configured_networks()}


@require_GET
def auth_nonce(request):
    """A fresh nonce for one sign-in, kept in this session for a few minutes. With `address`
    and `chain_id`, also the EIP-4361 message to sign (a browser cannot checksum addresses)."""
    limit = 2 * settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP
    if wait := hit(f"siwe-nonce:{client_ip(request)}", limit=limit):
        return _too_many(wait)
    nonce = secrets.token_hex(16)
    request.session[NONCE_SESSION_KEY] = {
        "value": nonce,
        "expires": time.time() + settings.KIBO_SIWE_NONCE_SECONDS,
    }
    body = {"nonce": nonce}
    address, chain_id = request.GET.get("address", ""), request.GET.get("chain_id", "")
    if is_address(address) and chain_id.isascii() and chain_id.isdigit():
        body["message"] = siwe.prepare_message(
            scheme=request.scheme,
            host=request.get_host(),
            address=to_checksum_address(address),
            chain_id=int(chain_id),
            nonce=nonce,
            statement=_("Sign in to Kibo to pay QR codes with your crypto."),
            issued_at=timezone.now(),
            lifetime=timedelta(seconds=settings.KIBO_SIWE_NONCE_SECONDS),
        )
    return JsonResponse(body, headers={"Cache-Control": "no-store"})


@require_POST
def auth_login(request):
    """POST message (EIP-4361) and signature (0x hex) -> {"address", "role"} and a session.

    Every attempt counts against the client. Only one whose signature proves the wallet
    counts against the wallet too: anyone can name a wallet, so unsigned attempts must not
    be able to lock its owner out."""
    per_ip = settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP
    if wait := hit(f"siwe-login-ip:{client_ip(request)}", limit=per_ip):
        return _too_many(wait)
    stored = request.session.pop(NONCE_SESSION_KEY, None)  # single use, whatever follows
    expected = stored["value"] if stored and stored["expires"] > time.time() else None
    text, signature = request.POST.get("message", ""), request.POST.get("signature", "")
    try:
        message = siwe.parse_message(text)
        if siwe.signed_by(text, signature, address=message.address):
            per_wallet = settings.KIBO_LOGIN_ATTEMPTS_PER_MINUTE_WALLET
            if wait := hit(f"siwe-login-wallet:{message.address}", limit=per_wallet):
                return _too_many(wait)
        siwe.verify(
            message,
            text,
            signature,
            scheme=request.scheme,
            host=request.get_host(),
            expected_nonce=expected,
            chain_ids=_chain_ids(),
        )
        user = user_sign_in(address=message.address)
    except (siwe.SiweRejected, WalletBlocked) as rejected:
        return JsonResponse({"error": rejected.message}, status=rejected.status_code)
    login(request, user, backend=WALLET_BACKEND)
    return JsonResponse({"address": user.wallet_address, "role": user.role})


@require_POST
def auth_logout(request):
    """Sign out; the devices this browser subscribed stop getting the person's notices
    (the next person on the phone must not read them)."""
    if request.user.is_authenticated:
        push_devices_forget(
            user=request.user, device_ids=request.session.get(DEVICES_SESSION_KEY, [])
        )
    logout(request)
    return redirect("landing")


@login_required
@require_POST
def account_country(request):
    """The signed-in user picks the country whose QRs they pay."""
    try:
        user_country_set(user=request.user, country=request.POST.get("country", ""))
    except DomainError as error:
        messages.error(request, error.message)
    next_url = _safe_next(request)
    return HttpResponseRedirect(next_url) if next_url else redirect("landing")


# --- where a person's notices go (kibo.notices) ------------------------------------------


def _person(request) -> User:
    """The signed-in payer or ally (staff get no notices here: 404)."""
    if not request.user.is_authenticated or request.user.is_staff:
        raise Http404()
    return request.user


def _devices(request, *, error: str | None = None, status: int = 200):
    user = _person(request)
    return render(
        request,
        "kibo/partials/_devices.html",
        {
            "devices": user.push_devices.order_by("created_at"),
            "vapid_key": webpush.public_key(),
            "telegram": telegram.enabled(),
            "telegram_chat": TelegramChat.objects.filter(user=user).first(),
            "error": error,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@limited("devices")
def devices(request):
    """The person's devices that get notices (a partial the board and the order page
    load), and a browser subscribing (POST: its PushSubscription as JSON)."""
    user = _person(request)
    if request.method == "POST":
        try:
            subscription = json.loads(request.body)
        except ValueError:
            subscription = None
        try:
            device = push_device_subscribe(
                user=user,
                subscription=subscription,
                language=get_language(),
                user_agent=request.headers.get("User-Agent", ""),
            )
            subscribed_here = request.session.get(DEVICES_SESSION_KEY, [])
            request.session[DEVICES_SESSION_KEY] = [*subscribed_here, str(device.pk)]
        except DomainError as refused:
            return _devices(request, error=refused.message, status=refusal_status(refused))
    return _devices(request)


@require_POST
def device_remove(request, device_id):
    try:
        push_device_remove(user=_person(request), device_id=device_id)
    except DomainError:
        raise Http404(_("No such device.")) from None
    return _devices(request)


@require_POST
@limited("devices")
def telegram_link(request):
    """Off to Telegram with a one-time link that links the chat to this person."""
    user = _person(request)
    if not telegram.enabled():
        raise Http404()
    try:
        return HttpResponseRedirect(telegram.link_start(user=user, language=get_language()))
    except telegram.TelegramFailed:
        return _devices(request, error=_("Telegram can't be reached now. Try again."), status=503)


@require_POST
def telegram_unlink(request):
    telegram.chat_unlink(user=_person(request))
    return _devices(request)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


# Readiness is asked every few seconds by every load balancer and monitor; the chain nodes
# are asked at most this often, whoever asks.
CHAIN_HEADS_CACHE_SECONDS = 5


def _chain_heads() -> dict[str, int | None]:
    """Each enabled network's latest block, or None where its node does not answer; read
    from the nodes at most every CHAIN_HEADS_CACHE_SECONDS (shared by every process)."""
    heads = cache.get("healthz:chain-heads")
    if heads is None:
        heads = {}
        for spec in configured_networks():
            try:
                heads[spec.name] = head_block(spec.name)
            except ChainUnavailable:
                heads[spec.name] = None
        cache.set("healthz:chain-heads", heads, timeout=CHAIN_HEADS_CACHE_SECONDS)
    return heads


@require_GET
def livez(request):
    """Liveness, for an orchestrator deciding whether to restart the process: it answers,
    and asks nothing of the network."""
    return JsonResponse({"status": "ok"})


@require_GET
def healthz(request):
    """Readiness, for load balancers and monitors: 200 when the database and broker answer,
    503 otherwise; a slow chain node must not take the web tier out. Only staff see the
    detail (each check, each network's latest block, each quote's age)."""
    database, broker = _database_ok(), _broker_ok()
    healthy = database and broker
    body: dict = {"status": "ok" if healthy else "failing"}
    if request.user.is_authenticated and request.user.is_staff:
        now = timezone.now()
        quotes = Quote.objects.filter(is_active=True).order_by("token", "fiat") if database else []
        body |= {
            "database": database,
            "broker": broker,
            "chain": _chain_heads(),
            "quotes": {
                f"{q.token}/{q.fiat}": {
                    "rate": str(q.rate),
                    "source": q.source,
                    "age_seconds": int((now - q.timestamp).total_seconds()),
                }
                for q in quotes
            },
        }
    return JsonResponse(body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})


@require_GET
def manifest(request):
    """The web app manifest: Kibo installs as an app that opens on this person's home."""
    response = JsonResponse(
        pwa.manifest(request.user),
        content_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )
    patch_vary_headers(response, ("Cookie", "Accept-Language"))  # the role, the language
    return response


@require_GET
def service_worker(request):
    """The service worker, from the site's root so that it may serve the whole site. The
    browser asks for it again on every visit (no-cache) and installs it when it changed."""
    script = render_to_string("kibo/sw.js", {"kibo": json.dumps(pwa.worker_settings())})
    response = HttpResponse(
        script,
        content_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": pwa.scope()},
    )
    patch_vary_headers(response, ("Cookie", "Accept-Language"))  # the language
    return response


@require_GET
def offline(request):
    """What the service worker shows when the network is gone: the same for everyone, since
    the copy it keeps must hold nothing of whoever fetched it."""
    response = HttpResponse(pwa.offline_page(), headers={"Cache-Control": "no-cache"})
    patch_vary_headers(response, ("Cookie", "Accept-Language"))  # the language
    return response
