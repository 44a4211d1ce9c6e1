from django.contrib import admin, messages
from django.db.models import Q

from escrow.amounts import format_base_units
from escrow.deposits import deposit_return_kept
from escrow.models import (
    ChainCursor,
    Deposit,
    EscrowAccount,
    NonceCursor,
    SignedTransaction,
    Transfer,
)
from escrow.networks import network_spec
from escrow.transfers import transfer_retry
from kibo.admin_tools import BigTableAdmin, SearchTerm
from kibo.errors import DomainError


class ReadOnlyAdmin(BigTableAdmin):
    """Escrow records change only through their services, never by hand."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EscrowAccount)
class EscrowAccountAdmin(ReadOnlyAdmin):
    list_display = (
        "order_id",
        "amount",
        "token",
        "network",
        "status",
        "locked_at",
        "released_at",
        "refunded_at",
    )
    list_filter = ("status", "network", "token")
    search_by = {"order": ["order_id"], "tx": ["deposit_tx_hash"]}
    ordering = ("-locked_at",)


class KeptFilter(admin.SimpleListFilter):
    """Deposits below RETURN_MIN_<TOKEN> that were kept, not returned automatically."""

    title = "kept (dust)"
    parameter_name = "kept"

    def lookups(self, request, model_admin):
        return [("waiting", "Kept, not returned"), ("returned", "Kept, then returned by staff")]

    def queryset(self, request, queryset):
        returns = Transfer.objects.filter(purpose=Transfer.Purpose.RETURN).values("deposit_id")
        if self.value() == "waiting":
            return queryset.filter(kept_base__gt=0).exclude(pk__in=returns)
        if self.value() == "returned":
            return queryset.filter(kept_base__gt=0, pk__in=returns)
        return queryset


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "network",
        "token",
        "amount_base",
        "sender",
        "outcome",
        "order_id",
        "tx_hash",
        "reason",
        "kept_base",
    )
    list_filter = (KeptFilter, "outcome", "network", "token")
    search_by = {"order": ["order_id"], "wallet": ["sender"], "tx": ["tx_hash"]}
    ordering = ("-created_at",)
    actions = ["return_kept"]

    @admin.action(description="Return the kept amount (dust) to the sender", permissions=["change"])
    def return_kept(self, request, queryset):
        returned = 0
        for deposit in queryset.filter(kept_base__gt=0):
            try:
                deposit_return_kept(deposit_id=deposit.pk, staff=request.user)
                returned += 1
            except DomainError as refused:
                self.message_user(request, f"{deposit.pk}: {refused.message}", messages.ERROR)
        self.message_user(request, f"{returned} return(s) queued.", messages.SUCCESS)


class SignedTransactionInline(admin.TabularInline):
    model = SignedTransaction
    fields = ("created_at", "nonce", "tx_hash", "max_fee_per_gas", "max_priority_fee_per_gas")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "purpose",
        "status",
        "network",
        "token",
        "amount_base",
        "recipient",
        "nonce",
        "attempts",
        "shortfall",
        "mined_tx_hash",
        "last_error",
    )
    list_filter = ("status", "purpose", "network", "token")
    search_by = {"order": ["order_id"], "wallet": ["recipient"], "tx": ["mined_tx_hash"]}
    ordering = ("-created_at",)

    def search_q(self, term: SearchTerm):
        if term.kind == "tx":  # any attempt's hash, not only the one that was mined
            attempts = SignedTransaction.objects.filter(tx_hash=term.value)
            return Q(mined_tx_hash=term.value) | Q(pk__in=attempts.values("transfer_id"))
        return super().search_q(term)

    inlines = [SignedTransactionInline]
    actions = ["retry"]

    @admin.display(description="short of")
    def shortfall(self, transfer: Transfer) -> str:
        """What a WAITING transfer lacks, in the coin's own units."""
        if transfer.shortfall_base is None:
            return ""
        spec = network_spec(transfer.network)
        coin = spec.tokens.get(transfer.shortfall_coin) or spec.gas_coin
        (text,) = format_base_units(
            int(transfer.shortfall_base), decimals=coin.decimals, symbol=coin.symbol
        )
        return text

    @admin.action(description="Retry the selected failed transfers", permissions=["change"])
    def retry(self, request, queryset):
        failed = queryset.filter(status=Transfer.Status.FAILED)
        for transfer in failed:
            transfer_retry(transfer_id=transfer.pk)
        self.message_user(request, f"{failed.count()} transfer(s) queued again.", messages.SUCCESS)


@admin.register(NonceCursor)
class NonceCursorAdmin(ReadOnlyAdmin):
    list_display = ("network", "address", "next_nonce")


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyAdmin):
    list_display = ("network", "block_number", "block_hash", "updated_at")
