from django.contrib import admin

from allies.models import AllyPenalty


@admin.register(AllyPenalty)
class AllyPenaltyAdmin(admin.ModelAdmin):
    list_display = ("ally", "reason", "penalty_minutes", "penalty_until", "order_id", "created_at")
    list_filter = ("reason",)
    search_fields = ("ally__wallet_address", "ally__username", "=order__id")
    list_select_related = ("ally",)
    raw_id_fields = ("ally", "order")
    date_hierarchy = "created_at"
