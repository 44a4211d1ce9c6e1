from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from kibo.models import SystemConfig, User, checksum_wallet
from kibo.services import config_set


class UserForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("wallet_address", "role", "country", "verified")

    def clean_wallet_address(self):
        return checksum_wallet(self.cleaned_data["wallet_address"])


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserForm
    add_form = UserForm
    list_display = (
        "wallet_address",
        "username",
        "role",
        "country",
        "verified",
        "reputation",
        "successful_orders",
        "last_active",
        "is_staff",
    )
    list_filter = ("role", "country", "verified", "is_staff", "is_active")
    search_fields = ("wallet_address", "username")
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "last_active", "last_login")
    fieldsets = (
        (None, {"fields": ("wallet_address", "role", "country", "verified")}),
        ("Record", {"fields": ("reputation", "successful_orders", "created_at", "last_active")}),
        (
            "Staff",
            {
                "fields": (
                    "username",
                    "password",
                    "is_staff",
                    "is_superuser",
                    "is_active",
                    "groups",
                    "user_permissions",
                    "last_login",
                )
            },
        ),
    )
    add_fieldsets = ((None, {"fields": ("wallet_address", "role", "country", "verified")}),)


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    list_display = ("key", "value", "description", "updated_at")
    list_editable = ("value",)
    search_fields = ("key", "description")
    ordering = ("key",)

    def save_model(self, request, obj, form, change):
        config_set(key=obj.key, value=obj.value, description=obj.description)
