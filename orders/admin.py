from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from allies.models import AllyPenalty
from allies.services import ally_penalize
from audit.models import Log
from escrow.models import Deposit, EscrowAccount, RefundJob, Transfer
from escrow.networks import is_enabled, network_spec
from kibo.admin_tools import BigTableAdmin, SearchTerm
from kibo.models import User
from kibo.selectors import get_config_int
from orders.models import LateProof, Order, OrderStatus
from orders.proofs import receipt_response
from orders.selectors import admin_metrics


class StoryInline(admin.TabularInline):
    """A read-only part of an order's story on its admin page."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


def explorer_link(network: str, tx_hash: str | None):
    """The hash, linked to the network's explorer when it has one."""
    if not tx_hash:
        return "—"
    url = network_spec(network).explorer_tx_url(tx_hash) if is_enabled(network) else None
    return format_html('<a href="{}">{}</a>', url, tx_hash) if url else tx_hash


class LogInline(StoryInline):
    model = Log
    fields = ("created_at", "action", "actor_wallet", "metadata")
    ordering = ("created_at",)


class DepositInline(StoryInline):
    model = Deposit
    fields = ("created_at", "outcome", "reason", "sender", "token", "amount_base", "paid_in")
    ordering = ("created_at",)

    @admin.display(description="transaction")
    def paid_in(self, obj):
        return explorer_link(obj.network, obj.tx_hash)


class EscrowInline(StoryInline):
    model = EscrowAccount
    fields = ("status", "amount", "token", "network", "locked_at", "released_at", "refunded_at")


class RefundJobInline(StoryInline):
    model = RefundJob
    fields = ("status", "to_address", "amount", "token", "attempts", "last_error", "sent_in")

    @admin.display(description="transaction")
    def sent_in(self, obj):
        return explorer_link(obj.network, obj.tx_hash)


class TransferInline(StoryInline):
    model = Transfer
    fields = (
        "purpose",
        "status",
        "recipient",
        "token",
        "amount_base",
        "nonce",
        "hashes",
        "last_error",
        "created_at",
        "confirmed_at",
    )
    ordering = ("created_at",)

    @admin.display(description="transactions (the mined one first)")
    def hashes(self, obj):
        signed = [s.tx_hash for s in obj.signed.all()]
        signed.sort(key=lambda h: h != obj.mined_tx_hash)
        links = [explorer_link(obj.network, h) for h in signed]
        return format_html_join(mark_safe("<br>"), "{}", ((link,) for link in links)) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("signed")


class PenaltyInline(StoryInline):
    model = AllyPenalty
    fields = ("created_at", "ally", "reason", "penalty_minutes", "penalty_until")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ally")


class LateProofInline(StoryInline):
    model = LateProof
    fields = ("received_at", "ally", "order_status", "proof_sha256")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ally")


@admin.register(Order)
class OrderAdmin(BigTableAdmin):
    """Orders change state only through their services; the admin shows them."""

    list_display = (
        "id",
        "status",
        "amount_fiat",
        "fiat_currency",
        "amount_crypto",
        "crypto_token",
        "network",
        "user",
        "ally",
        "created_at",
        "expires_at",
    )
    list_filter = ("status", "fiat_currency", "crypto_token", "network")
    search_by = {"order": ["id"], "tx": ["deposit_tx_hash", "release_tx_hash"]}
    list_select_related = ("user", "ally")
    ordering = ("-created_at",)
    readonly_fields = [*(f.name for f in Order._meta.fields), "receipt"]
    # The whole story in one place: what was paid in, held, sent out, decided and said.
    inlines = [
        DepositInline,
        EscrowInline,
        TransferInline,
        RefundJobInline,
        PenaltyInline,
        LateProofInline,
        LogInline,
    ]
    actions = ("penalize_no_payment",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="receipt")
    def receipt(self, obj):
        if not obj.proof_file:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("orders:proof", args=[obj.pk]), "open")

    @admin.action(
        description="Penalize the ally: did not pay the QR (NO_PAYMENT)", permissions=["change"]
    )
    def penalize_no_payment(self, request, queryset):
        """For an ally who took an order and did not pay its QR; once per order, audited
        with the staff member, as long as the other penalties (ALLY_PENALTY_MINUTES)."""
        taken = list(
            queryset.filter(ally__isnull=False)
            .exclude(status=OrderStatus.COMPLETED)  # a false receipt is a dispute's matter
            .select_related("ally")
        )
        already = AllyPenalty.objects.filter(
            order__in=taken, reason=AllyPenalty.Reason.NO_PAYMENT
        ).count()
        minutes = get_config_int("ALLY_PENALTY_MINUTES")
        for order in taken:
            ally_penalize(
                ally=order.ally,
                order=order,
                reason=AllyPenalty.Reason.NO_PAYMENT,
                minutes=minutes,
                staff=request.user,
            )
        if len(taken) > already:
            self.message_user(
                request, f"{len(taken) - already} ally penalty(ies) recorded.", messages.SUCCESS
            )
        if already:
            self.message_user(request, f"{already} had been recorded before.", messages.INFO)
        if len(taken) < queryset.count():
            self.message_user(
                request,
                "Orders nobody took, or completed ones, were left alone.",
                messages.WARNING,
            )

    def has_delete_permission(self, request, obj=None):
        return False

    def search_q(self, term: SearchTerm):
        if term.kind == "wallet":  # the payer's or the ally's: two index lookups, no join
            person = (
                User.objects.filter(wallet_address=term.value).values_list("pk", flat=True).first()
            )
            return Q(user_id=person) | Q(ally_id=person) if person else Q(pk__in=[])
        return super().search_q(term)

    def get_urls(self):
        metrics = path(
            "metrics/", self.admin_site.admin_view(self.metrics_view), name="orders_order_metrics"
        )
        return [metrics, *super().get_urls()]

    def metrics_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "title": "Today's metrics",
            "metrics": admin_metrics(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/metrics.html", context)


@admin.register(LateProof)
class LateProofAdmin(admin.ModelAdmin):
    """Receipts that came after their order ran out: staff judge whether the QR was paid."""

    list_display = ("received_at", "order", "ally", "order_status", "receipt")
    list_select_related = ("order", "ally")
    search_fields = ("=order__id", "ally__wallet_address", "proof_sha256")
    readonly_fields = ("order", "ally", "receipt", "proof_sha256", "order_status", "received_at")
    exclude = ("proof_file",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="receipt")
    def receipt(self, obj):
        url = reverse("admin:orders_lateproof_file", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.proof_file.name.rsplit("/", 1)[-1])

    def get_urls(self):
        file = path(
            "<uuid:pk>/file/",
            self.admin_site.admin_view(self.file_view),
            name="orders_lateproof_file",
        )
        return [file, *super().get_urls()]

    def file_view(self, request, pk):
        late = LateProof.objects.filter(pk=pk).first()
        if late is None:
            raise Http404()
        return receipt_response(late.proof_file, filename=f"kibo-late-receipt-{late.order_id}")
