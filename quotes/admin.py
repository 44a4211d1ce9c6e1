from django.contrib import admin
from django.utils import timezone

from quotes.models import Quote


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = ("token", "fiat", "rate", "source", "timestamp", "age", "is_active")
    list_filter = ("is_active", "token", "fiat", "source")
    ordering = ("-timestamp",)
    date_hierarchy = "timestamp"

    @admin.display(description="age")
    def age(self, quote):
        return f"{int((timezone.now() - quote.timestamp).total_seconds())} s"
