"""Transactions and constraints, as every service uses them."""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.db import IntegrityError, connection, transaction

P = ParamSpec("P")
R = TypeVar("R")


class TransactionRequired(RuntimeError):
    """A function that relies on its caller's row locks was called outside a transaction."""


def in_callers_transaction(function: Callable[P, R]) -> Callable[P, R]:
    """For a function that relies on rows its caller has locked: it runs inside the caller's
    transaction (no savepoint of its own), and fails at once when there is none, so a
    caller that forgot its transaction fails in the tests, not in production."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not connection.in_atomic_block:
            raise TransactionRequired(
                f"{function.__module__}.{function.__qualname__} relies on its caller's row "
                "locks: call it inside the caller's transaction."
            )
        with transaction.atomic(savepoint=False):
            return function(*args, **kwargs)

    return wrapper


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint an INSERT or UPDATE broke, as PostgreSQL reports it (never
    read out of the message's text)."""
    diagnostic = getattr(error.__cause__, "diag", None)
    return getattr(diagnostic, "constraint_name", None)
