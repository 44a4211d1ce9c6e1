from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotes.pricing import price_order, token_quantum

amounts = st.decimals(min_value="0.01", max_value="99999999.99", places=2)
rates = st.decimals(min_value="0.00000001", max_value="9999999999.99999999", places=8)
percents = st.decimals(min_value="0", max_value="10", places=2)


def test_amounts_are_rounded_up_for_the_user_and_down_for_the_ally():
    price = price_order(
        amount_fiat=Decimal("100"),
        rate=Decimal("3"),
        token="USDT",
        spread_percent=Decimal("0"),
        fee_percent=Decimal("1"),
    )
    assert price.amount_crypto == Decimal("33.333334")  # 33.3333333... rounded up
    assert price.payout_crypto == Decimal("33.000000")  # 33.0000006... rounded down
    assert price.fee_crypto == Decimal("0.333334")


def test_ether_is_priced_to_eight_decimals():
    assert token_quantum("ETH") == Decimal("0.00000001")
    assert token_quantum("USDC") == Decimal("0.000001")


@given(
    amount=amounts,
    rate=rates,
    spread=percents,
    fee=percents,
    token=st.sampled_from(["USDT", "USDC", "ETH"]),
)
def test_the_user_never_pays_less_than_the_market_and_nothing_is_paid_twice(
    amount, rate, spread, fee, token
):
    price = price_order(
        amount_fiat=amount, rate=rate, token=token, spread_percent=spread, fee_percent=fee
    )
    assert price.amount_crypto >= amount / rate * (1 + spread / 100) - Decimal("1e-20")
    assert price.payout_crypto + price.fee_crypto == price.amount_crypto
    assert price.fee_crypto >= 0 and price.payout_crypto >= 0
    for value in (price.amount_crypto, price.fee_crypto, price.payout_crypto):
        assert value == value.quantize(token_quantum(token))


class Rollback(Exception):
    pass


@pytest.mark.slow  # many random prices
@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.decimals(min_value="10", max_value="10000", places=2),
    rate=st.decimals(min_value="0.00000001", max_value="9999999999", places=8),
    token=st.sampled_from(["USDT", "USDC", "ETH"]),
)
def test_every_order_priced_fits_its_columns_or_is_refused_clearly(amount, rate, token):
    from django.db import transaction

    from escrow.amounts import to_base_units
    from orders.errors import InvalidOrder
    from tests.factories import make_order, make_quote

    try:
        with transaction.atomic():
            make_quote(token=token, rate=str(rate))
            try:
                order = make_order(amount_fiat=str(amount), token=token)
            except InvalidOrder as refused:
                assert "too large" in refused.message or "too small" in refused.message
                raise Rollback from None
            order.refresh_from_db()  # what the NUMERIC(18,8) columns kept
            assert order.amount_crypto >= amount / rate
            assert order.payout_crypto + order.fee_crypto <= order.amount_crypto
            decimals = 18 if token == "ETH" else 6
            assert to_base_units(order.payout_crypto, decimals) <= to_base_units(
                order.amount_crypto, decimals, round_up=True
            )
            raise Rollback
    except Rollback:
        pass
