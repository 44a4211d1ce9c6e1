from django.utils.translation import gettext as _

from kibo.errors import Conflict, DomainError, NotFound


class OrderNotFound(NotFound):
    def __init__(self, message: str | None = None):
        super().__init__(message or _("No such order."))


class InvalidOrder(DomainError):
    """The request to create or change an order is malformed or outside the limits."""


class StaleQuote(DomainError):
    def __init__(self, message: str | None = None):
        super().__init__(message or _("Rates are being updated, try again in a moment."))


class OpenOrderExists(Conflict):
    def __init__(self, message: str | None = None):
        super().__init__(
            message or _("You already have an order in progress; finish or cancel it first.")
        )


class IllegalTransition(Conflict):
    """The order is not in a state that allows this move."""


class OrderAlreadyTaken(Conflict):
    def __init__(self, message: str | None = None):
        super().__init__(message or _("Another ally already took this order."))


class AllyNotEligible(Conflict):
    """The ally may not take orders right now (penalty, busy, not verified, ...)."""


class Underpaid(DomainError):
    """A deposit smaller than the amount due."""
