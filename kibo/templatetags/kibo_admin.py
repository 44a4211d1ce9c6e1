from django import template

from escrow.selectors import escrow_address as configured_escrow_address

register = template.Library()


@register.simple_tag
def escrow_address() -> str:
    """The escrow wallet payers send to, as this deployment configures it (read-only)."""
    return configured_escrow_address()
