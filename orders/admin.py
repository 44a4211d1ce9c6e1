from django.contrib import admin
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from allies.models import AllyPenalty
from audit.models import Log
from escrow.models import Deposit, EscrowAccount, Transfer
from escrow.networks import is_enabled, network_spec
from kibo.admin_tools import BigTableAdmin, SearchTerm, decide_with_note
from kibo.models import User
from orders.disputes import ally_penalize_no_payment, dispute_decide, late_proof_decide
from orders.models import Dispute, LateProof, Order
from orders.selectors import PRIVATE_FILES_PERMISSION, admin_metrics, dispute_sla_cutoff
from orders.views import receipt_response

# Between links format_html built: a constant, safe as it is.
LINE_BREAK = mark_safe("<br>")  # nosec B308


class StoryInline(admin.TabularInline):
    """A read-only part of an order's story on its admin page."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


def receipt_link(order):
    """The order's receipt (served to staff by the payer's private route), if it has one."""
    if not order.proof_file:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("orders:proof", args=[order.pk]), "open")


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
        return format_html_join(LINE_BREAK, "{}", ((link,) for link in links)) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("signed")


class PenaltyInline(StoryInline):
    model = AllyPenalty
    fields = ("created_at", "ally", "reason", "penalty_minutes", "penalty_until")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ally")


class DisputeInline(StoryInline):
    model = Dispute
    fields = ("opened_at", "kind", "status", "opened_by", "statement", "answer", "decision_note")
    ordering = ("opened_at",)
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("opened_by")


class LateProofInline(StoryInline):
    model = LateProof
    fields = ("received_at", "ally", "order_status", "proof_sha256", "decision", "decision_note")

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
        PenaltyInline,
        DisputeInline,
        LateProofInline,
        LogInline,
    ]
    actions = ("penalize_no_payment",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="receipt")
    def receipt(self, obj):
        return receipt_link(obj)

    @admin.action(
        description="Penalize the ally: did not pay the QR (NO_PAYMENT)", permissions=["change"]
    )
    def penalize_no_payment(self, request, queryset):
        """For an ally who took an order and did not pay its QR: asks for a note first."""
        return decide_with_note(
            self,
            request,
            queryset.select_related("ally"),
            question="Penalize the allies of these orders for not paying the QR (NO_PAYMENT)?",
            submit="Penalize",
            decide=lambda order, note: ally_penalize_no_payment(
                order=order, staff=request.user, note=note
            ),
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


def order_link(order_id):
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html('<a href="{}">{}</a>', url, order_id)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Open longer than DISPUTE_SLA_HOURS")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=Dispute.Status.OPEN, opened_at__lt=dispute_sla_cutoff())
        return queryset


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    """Disputes wait for staff: uphold or reject each, with a note (both sides see it)."""

    list_display = ("opened_at", "kind", "status", "overdue", "order_id_link", "opened_by")
    list_filter = ("status", OverdueFilter, "kind")
    list_select_related = ("opened_by",)
    search_fields = ("=order__id", "opened_by__wallet_address")
    ordering = ("-opened_at",)
    fields = (
        "order_id_link",
        "kind",
        "status",
        "overdue",
        "opened_by",
        "opened_at",
        "statement",
        "receipt",
        "penalty",
        "answer",
        "answered_at",
        "files",
        "payout",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    readonly_fields = fields
    actions = ("uphold", "reject")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="order")
    def order_id_link(self, obj):
        return order_link(obj.order_id)

    @admin.display(boolean=True)
    def overdue(self, obj):
        return obj.status == Dispute.Status.OPEN and obj.opened_at < dispute_sla_cutoff()

    @admin.display(description="the ally's receipt")
    def receipt(self, obj):
        return receipt_link(obj.order)  # none for a penalty over an order that ran out

    @admin.display(description="evidence")
    def files(self, obj):
        links = [
            (reverse("orders:evidence", args=[obj.order_id, f.pk]), f.submitted_by)
            for f in obj.evidence.select_related("submitted_by")
        ]
        return format_html_join(LINE_BREAK, '<a href="{}">from {}</a>', links) or "—"

    @admin.display(description="the ally's payout")
    def payout(self, obj):
        release = obj.order.transfers.filter(purpose=Transfer.Purpose.RELEASE).first()
        return release.get_status_display() if release else "—"

    @admin.action(
        description="Uphold: the payer is refunded and the ally penalized (FAKE_PROOF); "
        "an ally's penalty is lifted",
        permissions=["change"],
    )
    def uphold(self, request, queryset):
        return decide_with_note(
            self,
            request,
            queryset,
            question="Uphold these disputes?",
            submit="Uphold",
            decide=lambda d, note: dispute_decide(
                dispute_id=d.pk, staff=request.user, uphold=True, note=note
            ),
        )

    @admin.action(
        description="Reject: the ally's payout goes out; an ally's penalty stands",
        permissions=["change"],
    )
    def reject(self, request, queryset):
        return decide_with_note(
            self,
            request,
            queryset,
            question="Reject these disputes?",
            submit="Reject",
            decide=lambda d, note: dispute_decide(
                dispute_id=d.pk, staff=request.user, uphold=False, note=note
            ),
        )


@admin.register(LateProof)
class LateProofAdmin(admin.ModelAdmin):
    """Receipts that came after their order ran out: staff judge whether the QR was paid."""

    list_display = ("received_at", "decision", "order", "ally", "order_status", "receipt")
    list_filter = ("decision",)
    list_select_related = ("order", "ally")
    search_fields = ("=order__id", "ally__wallet_address", "proof_sha256")
    readonly_fields = (
        "order",
        "ally",
        "receipt",
        "proof_sha256",
        "order_status",
        "received_at",
        "decision",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    exclude = ("proof_file",)
    actions = ("ally_paid", "not_paid")

    @admin.action(
        description="The ally did pay: record that Kibo owes the payout (settled outside Kibo)",
        permissions=["change"],
    )
    def ally_paid(self, request, queryset):
        return decide_with_note(
            self,
            request,
            queryset,
            question="Record that these allies did pay the QR?",
            submit="The ally paid",
            decide=lambda late, note: late_proof_decide(
                late_proof_id=late.pk, staff=request.user, ally_paid=True, note=note
            ),
        )

    @admin.action(
        description="Not paid: the receipt shows no payment; the ally is penalized (FAKE_PROOF)",
        permissions=["change"],
    )
    def not_paid(self, request, queryset):
        return decide_with_note(
            self,
            request,
            queryset,
            question="Record that these receipts show no payment and penalize the allies?",
            submit="Not paid",
            decide=lambda late, note: late_proof_decide(
                late_proof_id=late.pk, staff=request.user, ally_paid=False, note=note
            ),
        )

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
        if late is None or not request.user.has_perm(PRIVATE_FILES_PERMISSION):
            raise Http404()
        return receipt_response(late.proof_file, filename=f"kibo-late-receipt-{late.order_id}")
