from django.contrib import admin

from escrow.models import EscrowAccount, RefundJob


@admin.register(EscrowAccount)
class EscrowAccountAdmin(admin.ModelAdmin):
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
    search_fields = ("=order__id", "deposit_tx_hash")
    readonly_fields = [f.name for f in EscrowAccount._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RefundJob)
class RefundJobAdmin(admin.ModelAdmin):
    list_display = (
        "order_id",
        "to_address",
        "amount",
        "token",
        "network",
        "status",
        "attempts",
        "tx_hash",
        "created_at",
        "processed_at",
    )
    list_filter = ("status", "network", "token")
    search_fields = ("=order__id", "to_address", "tx_hash")
    readonly_fields = [f.name for f in RefundJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
