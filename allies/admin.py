from django.contrib import admin, messages

from allies.models import AllyApplication, AllyPenalty
from allies.selectors import standing_generation
from allies.services import ally_application_decide
from kibo.cache import renew_generations
from kibo.errors import DomainError


@admin.register(AllyPenalty)
class AllyPenaltyAdmin(admin.ModelAdmin):
    list_display = ("ally", "reason", "penalty_minutes", "penalty_until", "order_id", "created_at")
    list_filter = ("reason",)
    search_fields = ("ally__wallet_address", "ally__username", "=order__id")
    list_select_related = ("ally",)
    raw_id_fields = ("ally", "order")
    date_hierarchy = "created_at"

    # The board caches each ally's standing: staff's edits show on the next poll.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        allies = {obj.ally_id, form.initial.get("ally")} - {None}
        renew_generations(*(standing_generation(ally) for ally in allies))

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        renew_generations(standing_generation(obj.ally_id))

    def delete_queryset(self, request, queryset):
        allies = set(queryset.values_list("ally_id", flat=True))
        super().delete_queryset(request, queryset)
        renew_generations(*(standing_generation(ally) for ally in allies))


@admin.register(AllyApplication)
class AllyApplicationAdmin(admin.ModelAdmin):
    """Applications are decided with the actions (approve / reject), each one audited."""

    list_display = ("display_name", "user", "country", "bank", "status", "created_at", "decided_by")
    list_filter = ("status", "country")
    search_fields = ("display_name", "bank", "user__wallet_address")
    list_select_related = ("user", "decided_by")
    readonly_fields = (
        "user",
        "country",
        "display_name",
        "bank",
        "status",
        "created_at",
        "decided_at",
        "decided_by",
    )
    actions = ("approve", "reject")
    ordering = ("status", "-created_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _decide(self, request, queryset, *, approve: bool) -> None:
        done = 0
        for application in queryset:
            try:
                ally_application_decide(
                    application_id=application.pk, staff=request.user, approve=approve
                )
                done += 1
            except DomainError as refused:
                self.message_user(request, f"{application}: {refused.message}", messages.ERROR)
        if done:
            verb = "approved" if approve else "rejected"
            self.message_user(request, f"{done} application(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Approve: the wallet becomes a verified ally", permissions=["change"])
    def approve(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject", permissions=["change"])
    def reject(self, request, queryset):
        self._decide(request, queryset, approve=False)
