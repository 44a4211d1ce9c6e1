from django.contrib import admin, messages

from allies.models import AllyApplication, AllyPenalty, AllyPresence, WorkingHours
from allies.services import ally_application_decide, ally_penalty_lift
from kibo.admin_tools import decide_with_note
from kibo.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """What only the services change (penalties, presence, hours): staff read it here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AllyPenalty)
class AllyPenaltyAdmin(ReadOnlyAdmin):
    """Penalties are read here and lifted with the action (audited, with a note); they are
    created by the services (a timer, a dispute, the order's NO_PAYMENT action), never added,
    edited or deleted by hand."""

    list_display = ("ally", "reason", "penalty_minutes", "penalty_until", "order_id", "created_at")
    list_filter = ("reason",)
    search_fields = ("ally__wallet_address", "ally__username", "=order__id")
    list_select_related = ("ally",)
    date_hierarchy = "created_at"
    actions = ("lift",)

    def has_lift_permission(self, request):
        return request.user.has_perm("allies.change_allypenalty")

    @admin.action(description="Lift the selected penalties now", permissions=["lift"])
    def lift(self, request, queryset):
        return decide_with_note(
            self,
            request,
            queryset,
            question="Lift these penalties now?",
            submit="Lift them",
            decide=lambda penalty, note: ally_penalty_lift(
                penalty_id=penalty.pk, staff=request.user, note=note
            ),
        )


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


@admin.register(AllyPresence)
class AllyPresenceAdmin(ReadOnlyAdmin):
    """The board's switch of each ally, as the ally last left it (allies.presence)."""

    list_display = (
        "ally",
        "switched_on",
        "switch_holds_until",
        "missed_in_row",
        "switched_off_for_missing",
        "updated_at",
    )
    list_filter = ("switched_on", "switched_off_for_missing")
    search_fields = ("ally__wallet_address", "ally__username")
    list_select_related = ("ally",)


@admin.register(WorkingHours)
class WorkingHoursAdmin(ReadOnlyAdmin):
    list_display = ("ally", "weekday", "starts", "ends")
    list_filter = ("weekday",)
    search_fields = ("ally__wallet_address", "ally__username")
    list_select_related = ("ally",)
