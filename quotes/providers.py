"""Where market rates come from. Each provider answers one question: how many units of `fiat`
does one `token` buy right now? It raises RateUnavailable when it cannot say.

Rates are parsed as Decimal straight from the JSON text; a float never touches a price.
"""

import statistics
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

from quotes.models import LocalRate


class RateUnavailable(Exception):
    """The provider has no usable rate for the pair (down, slow, empty, or nonsense)."""


def _positive(value) -> Decimal:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise RateUnavailable(f"not a number: {value!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise RateUnavailable(f"not a positive rate: {value!r}")
    return rate


class HttpProvider:
    name = ""

    def __init__(self, *, base_url: str, timeout: float | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if timeout is not None else settings.KIBO_QUOTE_HTTP_TIMEOUT

    def _json(self, method: str, path: str, **kwargs):
        try:
            response = httpx.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
            response.raise_for_status()
            return response.json(parse_float=Decimal, parse_int=Decimal)
        except httpx.HTTPError as error:
            raise RateUnavailable(f"{self.name}: {type(error).__name__}: {error}") from None
        except ValueError:
            raise RateUnavailable(f"{self.name}: the answer is not JSON") from None


class BinanceP2P(HttpProvider):
    """The market that really prices USDT and USDC in bolivianos and pesos: the median price
    of the best advertisements of people buying the token for the fiat (what a user who pays
    with the token gets for it)."""

    name = "binance_p2p"
    ADVERTISEMENTS = 10

    def rate(self, token: str, fiat: str) -> Decimal:
        if token not in ("USDT", "USDC"):
            raise RateUnavailable(f"{self.name} does not trade {token}")
        body = self._json(
            "POST",
            "/bapi/c2c/v2/friendly/c2c/adv/search",
            json={
                "asset": token,
                "fiat": fiat,
                "tradeType": "SELL",
                "page": 1,
                "rows": self.ADVERTISEMENTS,
                "payTypes": [],
                "publisherType": None,
            },
        )
        if not isinstance(body, dict) or body.get("code") != "000000":
            raise RateUnavailable(f"{self.name}: error answer {str(body)[:200]!r}")
        ads = body.get("data")
        if not isinstance(ads, list) or not ads:
            raise RateUnavailable(f"{self.name}: no advertisements for {token}/{fiat}")
        try:
            prices = [_positive(ad["adv"]["price"]) for ad in ads[: self.ADVERTISEMENTS]]
        except (KeyError, TypeError):
            raise RateUnavailable(f"{self.name}: advertisements without a price") from None
        return statistics.median(prices)


class CoinGecko(HttpProvider):
    """CoinGecko's simple price. Where it has no price in the fiat (it may lack BOB), the
    price in USD is converted with `usd_in_fiat`, the market's USDT rate for that fiat."""

    name = "coingecko"
    IDS = {"ETH": "ethereum", "USDT": "tether", "USDC": "usd-coin"}

    def __init__(self, *, usd_in_fiat=None, **kwargs):
        super().__init__(**kwargs)
        self.usd_in_fiat = usd_in_fiat

    def rate(self, token: str, fiat: str) -> Decimal:
        coin = self.IDS[token]
        body = self._json(
            "GET", "/simple/price", params={"ids": coin, "vs_currencies": f"{fiat.lower()},usd"}
        )
        prices = body.get(coin) if isinstance(body, dict) else None
        if not isinstance(prices, dict):
            raise RateUnavailable(f"{self.name}: no price for {coin}")
        if fiat.lower() in prices:
            return _positive(prices[fiat.lower()])
        if "usd" in prices and self.usd_in_fiat is not None:
            return _positive(prices["usd"]) * self.usd_in_fiat(fiat)
        raise RateUnavailable(f"{self.name}: no {fiat} price for {coin}")


class Local:
    """Rates staff set in the admin."""

    name = "local"

    def rate(self, token: str, fiat: str) -> Decimal:
        local = LocalRate.objects.filter(token=token, fiat=fiat).first()
        if local is None:
            raise RateUnavailable(f"no local rate for {token}/{fiat}")
        return local.rate


def provider(name: str, *, usd_in_fiat=None):
    if name == BinanceP2P.name:
        return BinanceP2P(base_url=settings.KIBO_BINANCE_P2P_URL)
    if name == CoinGecko.name:
        return CoinGecko(base_url=settings.KIBO_COINGECKO_URL, usd_in_fiat=usd_in_fiat)
    if name == Local.name:
        return Local()
    raise RateUnavailable(f"unknown rate source {name!r}")
