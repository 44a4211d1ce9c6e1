from django.contrib import admin

from audit.models import Log


@admin.register(Log)
class LogAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only, here as in the database."""

    list_display = ("created_at", "action", "order_id", "actor_wallet", "metadata")
    list_filter = ("action",)
    search_fields = ("=order__id", "actor_wallet", "metadata__tx_hash")
    date_hierarchy = "created_at"
    list_select_related = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
