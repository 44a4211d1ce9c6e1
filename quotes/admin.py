from django.contrib import admin
from django.utils import timezone

from kibo.admin_tools import BigTableAdmin
from quotes.models import LocalRate, Quote


@admin.register(Quote)
class QuoteAdmin(BigTableAdmin):
    """Every rate ever used, per pair: filter by token and fiat for one pair's history."""

    list_display = ("token", "fiat", "rate", "source", "timestamp", "age", "is_active")
    list_filter = ("is_active", "token", "fiat", "source")
    readonly_fields = ("token", "fiat", "rate", "source", "timestamp", "is_active")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    ordering = ("-timestamp",)

    @admin.display(description="age")
    def age(self, quote):
        return f"{int((timezone.now() - quote.timestamp).total_seconds())} s"


@admin.register(LocalRate)
class LocalRateAdmin(admin.ModelAdmin):
    """Rates staff set by hand. They are used when `local` comes first in QUOTE_SOURCES
    (SYSTEM_CONFIG), or when the sources before it fail."""

    list_display = ("token", "fiat", "rate", "updated_at")
    list_editable = ("rate",)
    list_filter = ("token", "fiat")
    ordering = ("token", "fiat")
