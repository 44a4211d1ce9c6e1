from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import ReadOnlyPasswordHashField
from django.core.exceptions import ValidationError
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.admin import OTPAdminAuthenticationForm

from allies.services import user_country_change
from kibo import config
from kibo.cache import hit, over
from kibo.errors import DomainError
from kibo.lockouts import FAILURE_WINDOW_SECONDS, failed_sign_in, locked_for, lockout_lift
from kibo.locks import lock_staff_authenticator
from kibo.models import BlockedWallet, PushDevice, SystemConfig, TelegramChat, User, checksum_wallet
from kibo.ratelimit import client_ip, too_many_response
from kibo.replica import reads_replica
from kibo.selectors import is_wallet_blocked
from kibo.services import config_set
from orders.blocking import wallet_block, wallet_unblock


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Staff sign in with their username or their wallet (kibo.auth_backends), and, when
    KIBO_STAFF_TWO_FACTOR is on, the code their authenticator app shows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Username or wallet address"
        self.fields["otp_token"].label = "Code from your authenticator app"

    def clean(self):
        if settings.KIBO_STAFF_TWO_FACTOR:
            return super().clean()  # the password, then the code
        return AdminAuthenticationForm.clean(self)

    def _chosen_device(self, user):
        """Staff have one authenticator each; the page does not ask which."""
        return super()._chosen_device(user) or lock_staff_authenticator(user.pk)


class KiboAdminSite(admin.AdminSite):
    """The admin: staff only, and, with KIBO_STAFF_TWO_FACTOR, only a session verified by
    a second factor (django-otp) in this sign-in."""

    site_header = site_title = "Kibo staff"
    index_template = "admin/kibo_index.html"  # links the staff console
    login_template = "admin/kibo_login.html"
    login_form = StaffLoginForm

    def has_permission(self, request):
        verified = not settings.KIBO_STAFF_TWO_FACTOR or request.user.is_verified()
        return super().has_permission(request) and verified

    def admin_view(self, view, cacheable=False):
        """Every model's list (and its search) reads the replica (kibo.replica)."""
        if getattr(view, "__name__", "") == "changelist_view":
            view = reads_replica(view)
        return super().admin_view(view, cacheable)


admin.site.__class__ = KiboAdminSite  # the default site, as django-otp documents it


@sensitive_post_parameters()
@never_cache
def staff_login(request, extra_context=None):
    """The admin's login page (kibo.urls routes /admin/login/ here), with its failures
    limited: per client (KIBO_ADMIN_LOGIN_FAILURES_PER_CLIENT in 15 minutes), and per
    account, locked out after KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT (kibo.lockouts). Over
    either, 429 with Retry-After, and the password is not even checked."""
    extra_context = {**(extra_context or {}), "two_factor": settings.KIBO_STAFF_TWO_FACTOR}
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    client, username = client_ip(request), request.POST.get("username", "")
    client_key = f"admin-login-client:{client}"
    per_client = settings.KIBO_ADMIN_LOGIN_FAILURES_PER_CLIENT
    if wait := over(client_key, limit=per_client, window_seconds=FAILURE_WINDOW_SECONDS):
        return too_many_response(request, wait)
    if wait := locked_for(username):
        message = (
            "This account is locked after too many failed sign-ins. Another staff member can "
            f"lift the lock-out in the admin, or try again in {wait // 60 + 1} minutes."
        )
        return too_many_response(request, wait, message)
    response = admin.site.login(request, extra_context)
    if not (request.user.is_authenticated and request.user.is_staff):
        hit(client_key, limit=per_client, window_seconds=FAILURE_WINDOW_SECONDS)
        failed_sign_in(username, client=client)
    return response


class UserForm(forms.ModelForm):
    # Shown as what it is (its algorithm, never the hash) with a link to set a new one.
    password = ReadOnlyPasswordHashField(label="Password")

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
    actions = ("lift_lockout",)

    @admin.action(description="Lift the sign-in lock-out", permissions=["change"])
    def lift_lockout(self, request, queryset):
        lifted = [user for user in queryset if lockout_lift(user=user, staff=request.user)]
        self.message_user(request, f"{len(lifted)} lock-out(s) lifted.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        """A new country goes through the service, audited: for an ally it is the country
        they are approved to work in."""
        if not change or "country" not in form.changed_data:
            return super().save_model(request, obj, form, change)
        country, obj.country = obj.country, form.initial["country"]
        super().save_model(request, obj, form, change)
        try:
            user_country_change(user_id=obj.pk, country=country, staff=request.user)
        except DomainError as refused:
            self.message_user(request, f"Country not changed: {refused.message}", messages.ERROR)


class SystemConfigForm(forms.ModelForm):
    """A value for a declared option (kibo.config), of its type and within its bounds."""

    class Meta:
        model = SystemConfig
        fields = ("key", "value")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "key" in self.fields:  # adding a row: one of the declared options
            self.fields["key"] = forms.ChoiceField(
                choices=[(key, key) for key in sorted(config.OPTIONS)]
            )

    def clean(self):
        cleaned = super().clean()
        key = cleaned.get("key", self.instance.key)
        if key in config.OPTIONS and "value" in cleaned:
            try:
                config.OPTIONS[key].read(cleaned["value"])
            except config.InvalidConfigValue as refused:
                self.add_error("value", refused.message)
        return cleaned


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    """Staff change values; what each option is, its type and bounds, are kibo.config's."""

    form = SystemConfigForm
    list_display = ("key", "value", "meaning", "updated_at")
    list_editable = ("value",)
    search_fields = ("key",)
    ordering = ("key",)

    def get_readonly_fields(self, request, obj=None):
        return ("key", "meaning") if obj else ("meaning",)

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=SystemConfigForm, **kwargs)

    @admin.display(description="what it is")
    def meaning(self, obj):
        option = config.OPTIONS.get(obj.key)
        return option.description if option else "(no longer used)"

    def has_delete_permission(self, request, obj=None):
        return False  # a key without a row has its default: edit the value instead

    def save_model(self, request, obj, form, change):
        config_set(key=obj.key, value=obj.value, staff=request.user)


class BlockedWalletForm(forms.ModelForm):
    class Meta:
        model = BlockedWallet
        fields = ("wallet_address", "reason")

    def clean_wallet_address(self):
        try:
            wallet = checksum_wallet(self.cleaned_data["wallet_address"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None
        if is_wallet_blocked(wallet=wallet):
            raise forms.ValidationError("This wallet is blocked already.")
        return wallet


@admin.register(BlockedWallet)
class BlockedWalletAdmin(admin.ModelAdmin):
    """Staff block a wallet with the form (a reason is required) and lift blocks with the
    action; both go through the services, audited with the staff member."""

    form = BlockedWalletForm
    list_display = ("wallet_address", "reason", "blocked_by", "created_at", "unblocked_at")
    list_filter = (("unblocked_at", admin.EmptyFieldListFilter),)
    search_fields = ("=wallet_address",)
    list_select_related = ("blocked_by", "unblocked_by")
    actions = ("unblock",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "wallet_address",
            "reason",
            "blocked_by",
            "created_at",
            "unblocked_at",
            "unblocked_by",
        )

    def has_delete_permission(self, request, obj=None):
        return False  # a block is lifted, not erased

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing of a block changes but its lifting (the action)
        block = wallet_block(wallet=obj.wallet_address, reason=obj.reason, staff=request.user)
        obj.pk, obj.created_at, obj.blocked_by = block.pk, block.created_at, block.blocked_by

    @admin.action(description="Unblock the selected wallets", permissions=["change"])
    def unblock(self, request, queryset):
        for block in queryset.filter(unblocked_at__isnull=True):
            wallet_unblock(block_id=block.pk, staff=request.user)
        self.message_user(request, "The selected wallets can use Kibo again.", messages.SUCCESS)


@admin.register(PushDevice)
class PushDeviceAdmin(admin.ModelAdmin):
    """The browsers that get a person's notices. Staff may remove one; its keys and address
    (which let anyone write to that browser) are not shown."""

    list_display = ("user", "label", "push_service", "language", "created_at", "last_pushed_at")
    search_fields = ("user__wallet_address", "user__username")
    list_select_related = ("user",)
    fields = ("user", "label", "push_service", "language", "created_at", "last_pushed_at")
    readonly_fields = fields

    @admin.display(description="push service")
    def push_service(self, device: PushDevice) -> str:
        return urlsplit(device.endpoint).hostname or ""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TelegramChat)
class TelegramChatAdmin(admin.ModelAdmin):
    list_display = ("user", "language", "linked_at")
    search_fields = ("user__wallet_address", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("user", "chat_id", "language", "linked_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
