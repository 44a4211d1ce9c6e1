"""Amounts and addresses as people read them, in the active language's number format."""

from decimal import Decimal

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def fiat(value) -> str:
    """125.5 -> "125,50" in Spanish, "125.50" in English."""
    return number_format(Decimal(value), 2, use_l10n=True, force_grouping=True)


@register.filter
def crypto(value) -> str:
    """A token amount with the places it has (at least two): "10,05", "0,00316667"."""
    amount = Decimal(value)
    places = max(2, -min(0, amount.normalize().as_tuple().exponent))
    return number_format(amount, places, use_l10n=True, force_grouping=True)


@register.filter
def short_address(value: str) -> str:
    return f"{value[:6]}…{value[-4:]}" if value and len(value) > 12 else value


@register.filter
def minutes_seconds(value) -> str:
    """A duration as staff read it: "3 min 20 s", "45 s"; "—" for none."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
