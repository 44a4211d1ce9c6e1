from django.contrib import admin
from django.db.models.fields.json import KT

from audit.models import Log
from kibo.admin_tools import BigTableAdmin


@admin.register(Log)
class LogAdmin(BigTableAdmin):
    """Read-only: the audit trail is append-only, here as in the database."""

    list_display = ("created_at", "action", "order_id", "actor_wallet", "metadata")
    list_filter = ("action",)
    search_by = {"order": ["order_id"], "wallet": ["actor_wallet"], "tx": ["tx_hash"]}
    ordering = ("-created_at",)
    list_select_related = False

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term_text):
        # The transaction a row is about is in its metadata: indexed as an expression.
        return super().get_search_results(
            request, queryset.annotate(tx_hash=KT("metadata__tx_hash")), search_term_text
        )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
