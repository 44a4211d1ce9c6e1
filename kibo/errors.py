"""Domain errors carry a message a person can read and the HTTP status a view answers with."""

from django.utils.translation import gettext as _


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class WalletBlocked(DomainError):
    status_code = 403

    def __init__(self):
        super().__init__(_("Kibo's staff have blocked this wallet."))


def refusal_status(error: DomainError) -> int:
    """The HTTP status of a refused form: 422 for what the form itself said, the error's own
    otherwise (409 when the order's state is in the way, 404, ...)."""
    return 422 if error.status_code == 400 else error.status_code
