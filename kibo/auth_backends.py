from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from kibo.models import User, checksum_wallet


class StaffPasswordBackend(ModelBackend):
    """Password sign-in, for staff only: by username, or by wallet address.

    Users and allies sign in with their wallet (EIP-4361); a password is never theirs.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password:
            return None
        user = User.objects.filter(username=username, is_staff=True).first()
        if user is None:
            try:
                wallet = checksum_wallet(username)
            except ValidationError:
                wallet = None
            user = User.objects.filter(wallet_address=wallet, is_staff=True).first()
        if user is None:
            User().set_password(password)  # same work as a real check, against timing probes
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class WalletBackend(ModelBackend):
    """Sessions of users and allies who signed in with their wallet (EIP-4361, verified in
    kibo.views.auth_login). It never authenticates a password."""

    def authenticate(self, request, **credentials):
        return None
