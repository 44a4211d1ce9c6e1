"""Amounts as people read them, in the active language's number format: on pages (the
kibo_format filters) and in notices (kibo.notices)."""

from decimal import Decimal

from django.utils.formats import number_format


def fiat_text(value) -> str:
    """125.5 -> "125,50" in Spanish, "125.50" in English."""
    return number_format(Decimal(value), 2, use_l10n=True, force_grouping=True)


def crypto_text(value) -> str:
    """A token amount with the places it has (at least two): "10,05", "0,00316667"."""
    amount = Decimal(value)
    places = max(2, -min(0, amount.normalize().as_tuple().exponent))
    return number_format(amount, places, use_l10n=True, force_grouping=True)
