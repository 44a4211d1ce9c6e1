"""What an order for an amount would cost now: the one computation both the price a user
sees before paying and order_create use, so the two can never differ."""

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _

from kibo import config
from orders.errors import InvalidOrder, StaleQuote
from quotes.models import Quote
from quotes.pricing import Price, price_order
from quotes.selectors import get_current_rate

CRYPTO_AMOUNT_LIMIT = Decimal(10) ** 10  # amounts are stored as NUMERIC(18,8)


def parse_amount_fiat(amount_fiat, fiat_currency: str) -> Decimal:
    """The amount to pay the QR, within the currency's limits; raises InvalidOrder."""
    try:
        amount = Decimal(str(amount_fiat).strip().replace(",", "."))
    except InvalidOperation:
        raise InvalidOrder(_("Enter the amount as a number, e.g. 125.50.")) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidOrder(_("The amount must be greater than zero."))
    if fiat_currency not in config.ORDER_LIMITS:
        raise InvalidOrder(_("Kibo does not pay QRs in %(fiat)r.") % {"fiat": fiat_currency})
    low, high = (limit.get() for limit in config.ORDER_LIMITS[fiat_currency])
    if not low <= amount <= high:
        raise InvalidOrder(
            _("Orders in %(fiat)s must be between %(low)s and %(high)s.")
            % {"fiat": fiat_currency, "low": low, "high": high}
        )
    if amount != amount.quantize(Decimal("0.01")):  # safe: the amount is bounded by now
        raise InvalidOrder(_("The amount can have at most two decimals."))
    return amount


@dataclass(frozen=True)
class OrderQuote:
    quote: Quote
    price: Price
    pay_within: timedelta

    @property
    def pay_within_minutes(self) -> int:
        return math.ceil(self.pay_within.total_seconds() / 60)


def order_quote(*, amount_fiat: Decimal, fiat_currency: str, crypto_token: str) -> OrderQuote:
    """Price `amount_fiat` in `crypto_token` with the active quote; raises StaleQuote when it
    is too old and InvalidOrder when the amount cannot be priced."""
    quote = get_current_rate(token=crypto_token, fiat=fiat_currency)
    max_age = timedelta(seconds=config.QUOTE_MAX_AGE_SECONDS.get())
    if quote is None or timezone.now() - quote.timestamp > max_age:
        raise StaleQuote(_("Rates are being updated, try again in a moment."))
    price = price_order(
        amount_fiat=amount_fiat,
        rate=quote.rate,
        token=crypto_token,
        spread_percent=config.QUOTE_SPREAD_PERCENT.get(),
        fee_percent=config.PLATFORM_FEE_PERCENT.get(),
    )
    if price.amount_crypto >= CRYPTO_AMOUNT_LIMIT:
        raise InvalidOrder(_("That amount is too large to price at the current rate."))
    if price.payout_crypto <= 0:
        raise InvalidOrder(
            _("That amount is too small to pay in %(token)s.") % {"token": crypto_token}
        )
    return OrderQuote(
        quote=quote,
        price=price,
        pay_within=config.PENDING_PAYMENT_TIMEOUT.get(),
    )
