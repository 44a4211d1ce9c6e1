"""Amounts and addresses as people read them, in the active language's number format."""

from django import template

from kibo.formats import crypto_text, fiat_text

register = template.Library()
register.filter("fiat", fiat_text)
register.filter("crypto", crypto_text)


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
