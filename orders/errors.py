from kibo.errors import Conflict, DomainError, NotFound


class OrderNotFound(NotFound):
    def __init__(self, message: str = "No such order."):
        super().__init__(message)


class InvalidOrder(DomainError):
    """The request to create or change an order is malformed or outside the limits."""


class StaleQuote(DomainError):
    def __init__(self, message: str = "Rates are being updated, try again in a moment."):
        super().__init__(message)


class OpenOrderExists(Conflict):
    def __init__(
        self, message: str = "You already have an order in progress; finish or cancel it first."
    ):
        super().__init__(message)


class IllegalTransition(Conflict):
    """The order is not in a state that allows this move."""


class OrderAlreadyTaken(Conflict):
    def __init__(self, message: str = "Another ally already took this order."):
        super().__init__(message)


class AllyNotEligible(Conflict):
    """The ally may not take orders right now (penalty, busy, not verified, ...)."""


class Underpaid(DomainError):
    """A deposit smaller than the amount due."""
