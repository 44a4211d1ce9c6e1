"""The EVM networks Kibo accepts deposits on, and the tokens it recognises there.

Tokens are recognised by contract address, never by symbol: a contract calling itself
"USDT" at another address is not USDT. Every value can be overridden from the environment
(settings.KIBO_NETWORKS), e.g. KIBO_RPC_URL_BASE, KIBO_CONFIRMATIONS_BASE,
KIBO_TOKEN_BASE_USDC.
"""

import functools
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models
from eth_utils import to_checksum_address


class Network(models.TextChoices):
    MANTLE = "mantle", "Mantle"
    BASE = "base", "Base"
    MANTLE_SEPOLIA = "mantle-sepolia", "Mantle Sepolia"
    BASE_SEPOLIA = "base-sepolia", "Base Sepolia"
    LOCAL = "local", "Local (anvil)"


NATIVE = "native"
ERC20 = "erc20"


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    kind: str  # NATIVE or ERC20
    decimals: int
    address: str | None = None  # EIP-55; None for the chain's native coin

    @property
    def is_native(self) -> bool:
        return self.kind == NATIVE


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    chain_id: int
    rpc_urls: tuple[str, ...]
    confirmations: int
    native_symbol: str = "ETH"  # the coin gas is paid in (MNT on Mantle)
    tokens: dict[str, TokenSpec] = field(default_factory=dict)
    explorer_url: str | None = None

    @property
    def label(self) -> str:
        return Network(self.name).label

    def explorer_tx_url(self, tx_hash: str) -> str | None:
        return f"{self.explorer_url.rstrip('/')}/tx/{tx_hash}" if self.explorer_url else None

    @property
    def gas_coin(self) -> TokenSpec:
        return TokenSpec(symbol=self.native_symbol, kind=NATIVE, decimals=18)

    def token(self, symbol: str) -> TokenSpec | None:
        return self.tokens.get(symbol)

    def token_at(self, address: str) -> TokenSpec | None:
        """The allow-listed ERC-20 at `address`, if any."""
        address = to_checksum_address(address)
        return next((t for t in self.tokens.values() if t.address == address), None)

    @property
    def erc20_addresses(self) -> list[str]:
        return [t.address for t in self.tokens.values() if not t.is_native]


class UnknownNetwork(LookupError):
    pass


@functools.lru_cache(maxsize=256)
def _checksum(address: str) -> str:
    """EIP-55 form, remembered: network_spec is read for every transfer row a sweep writes."""
    return to_checksum_address(address)


def network_spec(name: str) -> NetworkSpec:
    """The configured network; raises UnknownNetwork when it has no RPC endpoint."""
    raw = settings.KIBO_NETWORKS.get(name)
    if raw is None or name not in settings.KIBO_ENABLED_NETWORKS or not raw["rpc_urls"]:
        raise UnknownNetwork(f"The {name!r} network is not configured.")
    tokens = {
        symbol: TokenSpec(
            symbol=symbol,
            kind=token["kind"],
            decimals=token["decimals"],
            address=_checksum(token["address"]) if token.get("address") else None,
        )
        for symbol, token in raw["tokens"].items()
        if token["kind"] == NATIVE or token.get("address")
    }
    return NetworkSpec(
        name=name,
        chain_id=raw["chain_id"],
        rpc_urls=tuple(raw["rpc_urls"]),
        confirmations=raw["confirmations"],
        native_symbol=raw["native_symbol"],
        tokens=tokens,
        explorer_url=raw.get("explorer_url"),
    )


def is_enabled(name: str) -> bool:
    try:
        network_spec(name)
    except UnknownNetwork:
        return False
    return True


def configured_networks() -> list[NetworkSpec]:
    """The networks Kibo takes payments on here (KIBO_ENABLED_NETWORKS)."""
    return [network_spec(name) for name in settings.KIBO_ENABLED_NETWORKS if is_enabled(name)]
