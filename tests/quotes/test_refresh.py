from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import Action, Log
from kibo.services import config_set
from quotes.models import LocalRate, Quote
from quotes.services import PAIRS, quotes_refresh
from tests.helpers.rates import BINANCE_PATH, binance_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def providers(httpserver, settings):
    """Both market providers live on a local HTTP server; staff rates for every pair."""
    settings.KIBO_BINANCE_P2P_URL = httpserver.url_for("/")
    settings.KIBO_COINGECKO_URL = httpserver.url_for("/api/v3")
    settings.KIBO_QUOTE_HTTP_TIMEOUT = 0.5
    for token, fiat in PAIRS:
        LocalRate.objects.create(
            token=token, fiat=fiat, rate=Decimal("30000") if token == "ETH" else Decimal("10")
        )
    return httpserver


def active(token, fiat) -> Quote:
    return Quote.objects.get(token=token, fiat=fiat, is_active=True)


def test_sources_are_tried_in_the_configured_order_with_fallback(providers):
    # given Binance prices USDT/USDC, CoinGecko is down, staff rates for the rest
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("9.90", "9.95"))
    providers.expect_request("/api/v3/simple/price").respond_with_data("down", status=503)
    fell_back = {"pair": "ETH/MXN", "source": "local", "fallback": "true", "outcome": "stored"}
    before = REGISTRY.get_sample_value("kibo_quote_refreshes_total", fell_back) or 0

    stored = quotes_refresh()

    assert len(stored) == 9
    assert REGISTRY.get_sample_value("kibo_quote_refreshes_total", fell_back) - before == 1
    assert (active("USDT", "BOB").rate, active("USDT", "BOB").source) == (
        Decimal("9.925"),
        "binance_p2p",
    )
    assert active("ETH", "MXN").source == "local"


def test_coingecko_prices_ether_through_the_usdt_rate_when_it_lacks_the_fiat(providers):
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("9.90"))
    providers.expect_request("/api/v3/simple/price").respond_with_json({"ethereum": {"usd": 3000}})
    quotes_refresh()
    assert active("ETH", "BOB").rate == Decimal("29700.00000000")
    assert active("ETH", "BOB").source == "coingecko"


def test_staff_switch_the_source_order_without_a_restart(providers):
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("9.90"))
    config_set(key="QUOTE_SOURCES", value="local,binance_p2p")
    quotes_refresh()
    assert active("USDT", "BOB").source == "local"


def test_refreshing_again_within_the_interval_changes_nothing(providers):
    config_set(key="QUOTE_SOURCES", value="local")
    quotes_refresh()
    assert quotes_refresh() == []
    assert Quote.objects.count() == 9


def test_a_due_pair_gets_a_new_quote_and_exactly_one_stays_active(providers):
    config_set(key="QUOTE_SOURCES", value="local")
    quotes_refresh()
    Quote.objects.update(timestamp=timezone.now() - timedelta(seconds=31))
    LocalRate.objects.filter(token="USDT", fiat="BOB").update(rate=Decimal("10.5"))

    quotes_refresh()

    assert Quote.objects.filter(token="USDT", fiat="BOB").count() == 2
    assert active("USDT", "BOB").rate == Decimal("10.5")


def test_a_rate_that_jumps_too_far_is_refused_and_shown_to_staff(providers):
    config_set(key="QUOTE_SOURCES", value="local")
    quotes_refresh()
    LocalRate.objects.filter(token="USDT", fiat="ARS").update(rate=Decimal("11.5"))  # +15 %

    quotes_refresh(force=True)

    assert active("USDT", "ARS").rate == Decimal("10")
    refused = Log.objects.get(action=Action.QUOTE_REJECTED)
    assert refused.metadata["pair"] == "USDT/ARS" and refused.metadata["jump_percent"] == "15.00"


def test_a_pair_no_source_can_price_keeps_its_old_quote(providers):
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer())
    config_set(key="QUOTE_SOURCES", value="binance_p2p")
    assert quotes_refresh() == []
    assert not Quote.objects.exists()


def test_beat_asks_for_a_refresh_every_few_seconds():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["refresh-quotes"]
    assert entry["task"] == "quotes.tasks.refresh_quotes" and entry["schedule"] <= 10


def test_a_rate_far_from_the_second_source_is_refused_and_logged(providers):
    # given a few fake advertisements that put USDT at 12 BOB on Binance P2P, while
    # CoinGecko is down and the next source (staff's local rate) says 10
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("12.00", "12.10"))
    providers.expect_request("/api/v3/simple/price").respond_with_data("down", status=503)

    quotes_refresh()

    # then USDT/BOB gets no quote from it, and staff can see why
    assert not Quote.objects.filter(token="USDT", fiat="BOB").exists()
    entry = Log.objects.get(action=Action.QUOTE_REJECTED, metadata__pair="USDT/BOB")
    assert entry.metadata["source"] == "binance_p2p" and entry.metadata["rate"] == "12.05000000"
    assert entry.metadata["second_source"] == "local"
    assert entry.metadata["second_rate"] == "10.00000000"
    assert entry.metadata["jump_percent"] == "20.50" and entry.metadata["max_percent"] == "10"


def test_a_rate_close_to_the_second_source_is_kept(providers):
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("10.50"))
    providers.expect_request("/api/v3/simple/price").respond_with_data("down", status=503)
    quotes_refresh()
    assert active("USDT", "BOB").rate == Decimal("10.5")


def test_without_a_cross_check_the_first_source_decides(providers):
    config_set(key="QUOTE_CROSS_CHECK_PERCENT", value="0")
    providers.expect_request(BINANCE_PATH).respond_with_json(binance_answer("12.00"))
    quotes_refresh()
    assert active("USDT", "BOB").rate == Decimal("12")
