from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from audit.models import Log
from orders.models import Order
from orders.selectors import admin_metrics


class LogInline(admin.TabularInline):
    model = Log
    fields = ("created_at", "action", "actor_wallet", "metadata")
    readonly_fields = fields
    ordering = ("created_at",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
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
    search_fields = (
        "=id",
        "user__wallet_address",
        "ally__wallet_address",
        "deposit_tx_hash",
        "release_tx_hash",
    )
    list_select_related = ("user", "ally")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [LogInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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
