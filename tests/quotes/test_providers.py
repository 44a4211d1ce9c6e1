"""The real HTTP client against a local server answering in each provider's documented shape."""

import time
from decimal import Decimal

import pytest
from werkzeug import Response

from quotes.models import LocalRate
from quotes.providers import BinanceP2P, CoinGecko, Local, RateUnavailable
from tests.helpers.rates import BINANCE_PATH, binance_answer


@pytest.fixture
def binance(httpserver):
    return BinanceP2P(base_url=httpserver.url_for("/"), timeout=0.5)


@pytest.fixture
def coingecko(httpserver):
    return CoinGecko(
        base_url=httpserver.url_for("/api/v3"),
        timeout=0.5,
        usd_in_fiat=lambda fiat: Decimal("9.90"),
    )


def test_binance_gives_the_median_of_the_best_advertisements(httpserver, binance):
    httpserver.expect_request(
        BINANCE_PATH,
        method="POST",
        json={
            "asset": "USDT",
            "fiat": "BOB",
            "tradeType": "SELL",
            "page": 1,
            "rows": 10,
            "payTypes": [],
            "publisherType": None,
        },
    ).respond_with_json(binance_answer("9.85", "9.80", "9.91", "9.79", "10.40"))
    assert binance.rate("USDT", "BOB") == Decimal("9.85")


@pytest.mark.parametrize(
    "answer",
    [
        binance_answer(),  # nobody advertises
        binance_answer("9.8", code="100001"),  # an error code
        {"code": "000000", "data": [{"adv": {}}]},  # an advertisement without a price
        {"code": "000000", "data": [{"adv": {"price": "-1"}}]},
        {"code": "000000", "data": [{"adv": {"price": "lots"}}]},
        {"code": "000000", "data": None},
        ["not", "an", "object"],
    ],
)
def test_binance_answers_without_a_usable_price_are_refused(httpserver, binance, answer):
    httpserver.expect_request(BINANCE_PATH).respond_with_json(answer)
    with pytest.raises(RateUnavailable):
        binance.rate("USDT", "BOB")


@pytest.mark.parametrize(
    "response",
    [
        Response("<html>busy</html>", status=200),
        Response("oops", status=500),
        Response("", status=429),
    ],
)
def test_binance_garbage_and_http_errors_are_refused(httpserver, binance, response):
    httpserver.expect_request(BINANCE_PATH).respond_with_response(response)
    with pytest.raises(RateUnavailable):
        binance.rate("USDC", "MXN")


@pytest.mark.slow  # waits for the timeout
def test_a_slow_provider_times_out(httpserver, binance):
    def slow(request):
        time.sleep(1.0)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(BINANCE_PATH).respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(RateUnavailable, match="Timeout"):
        binance.rate("USDT", "ARS")
    assert time.monotonic() - started < 0.9
    time.sleep(0.6)  # the test server answers one request at a time: let it finish


def test_binance_does_not_price_ether(binance):
    with pytest.raises(RateUnavailable):
        binance.rate("ETH", "BOB")


def test_coingecko_gives_the_price_in_the_fiat(httpserver, coingecko):
    httpserver.expect_request(
        "/api/v3/simple/price",
        query_string={"ids": "ethereum", "vs_currencies": "mxn,usd"},
    ).respond_with_data(
        '{"ethereum": {"mxn": 59012.123456789, "usd": 3201.5}}', content_type="application/json"
    )
    assert coingecko.rate("ETH", "MXN") == Decimal("59012.123456789")  # never a float


def test_coingecko_converts_through_the_dollar_where_it_lacks_the_fiat(httpserver, coingecko):
    httpserver.expect_request("/api/v3/simple/price").respond_with_json({"ethereum": {"usd": 3200}})
    assert coingecko.rate("ETH", "BOB") == Decimal("3200") * Decimal("9.90")


@pytest.mark.parametrize(
    "answer", [{}, {"ethereum": {}}, {"ethereum": {"mxn": 0}}, {"error": "rate limited"}]
)
def test_coingecko_answers_without_a_price_are_refused(httpserver, answer):
    provider = CoinGecko(base_url=httpserver.url_for("/api/v3"), timeout=0.5)
    httpserver.expect_request("/api/v3/simple/price").respond_with_json(answer)
    with pytest.raises(RateUnavailable):
        provider.rate("ETH", "MXN")


@pytest.mark.django_db
def test_the_local_source_is_what_staff_set():
    LocalRate.objects.create(token="USDC", fiat="ARS", rate=Decimal("1448.5"))
    assert Local().rate("USDC", "ARS") == Decimal("1448.5")
    with pytest.raises(RateUnavailable):
        Local().rate("ETH", "ARS")
