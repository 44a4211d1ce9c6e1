"""The EVM networks Kibo accepts deposits on, and the tokens it recognises there.

`REGISTRY` is what each network is: its chain id, public RPC endpoint, how many
confirmations make a transfer final, its explorer, and each token's contract. A deployment
changes any of it from the environment, which the settings read into `settings.KIBO_NETWORKS`
(`from_environment`): KIBO_CHAIN_ID_<NET>, KIBO_RPC_URL_<NET> (a comma-separated list, tried
in order), KIBO_CONFIRMATIONS_<NET>, KIBO_EXPLORER_URL_<NET>, KIBO_TOKEN_<NET>_<SYMBOL>,
where <NET> is the name in capitals with "_" for "-" (BASE_SEPOLIA).

Tokens are recognised by contract address, never by symbol: a contract calling itself
"USDT" at another address is not USDT. A token without a contract address on a network is
not accepted there.
"""

from dataclasses import dataclass, field, replace
from typing import Any

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
    # What makes a block final: DEPTH (`confirmations` blocks, itself included) or the
    # node's SAFE or FINALIZED block tag (escrow.chain.final_block).
    finality: str = "depth"
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

    def token(self, symbol: str) -> TokenSpec:
        """The token of that symbol here; UnknownToken when this network has none."""
        try:
            return self.tokens[symbol]
        except KeyError:
            raise UnknownToken(f"{symbol} has no contract on {self.name} here.") from None

    def token_at(self, address: str) -> TokenSpec | None:
        """The allow-listed ERC-20 at `address`, if any."""
        address = to_checksum_address(address)
        return next((t for t in self.tokens.values() if t.address == address), None)

    @property
    def erc20_addresses(self) -> list[str]:
        return [t.address for t in self.tokens.values() if not t.is_native and t.address]


def _erc20(symbol: str, decimals: int, address: str | None = None) -> TokenSpec:
    return TokenSpec(symbol, ERC20, decimals, to_checksum_address(address) if address else None)


def _native(symbol: str) -> TokenSpec:
    return TokenSpec(symbol, NATIVE, 18)


def _tokens(*tokens: TokenSpec) -> dict[str, TokenSpec]:
    return {token.symbol: token for token in tokens}


# On Mantle the gas coin is MNT and ETH is the bridged WETH token. The testnets' USDT and the
# local chain's tokens have no fixed contract: the environment names them (`make run` and
# the tests deploy the local ones).
REGISTRY: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec(
            name="mantle",
            chain_id=5000,
            rpc_urls=("https://rpc.mantle.xyz",),
            confirmations=3,
            native_symbol="MNT",
            explorer_url="https://explorer.mantle.xyz",
            tokens=_tokens(
                _erc20("USDT", 6, "0x201EBa5CC46D216Ce6DC03F6a759e8E766e956aE"),
                _erc20("USDC", 6, "0x09Bc4E0D864854c6aFB6eB9A9cdF58aC190D0dF9"),
                _erc20("ETH", 18, "0xdEAddEaDdeadDEadDEADDEAddEADDEAddead1111"),
            ),
        ),
        NetworkSpec(
            name="base",
            chain_id=8453,
            rpc_urls=("https://mainnet.base.org",),
            confirmations=3,
            explorer_url="https://basescan.org",
            tokens=_tokens(
                _erc20("USDT", 6, "0xfde4C96c8593536E31F229EA8f37b2ADa2699bb2"),
                _erc20("USDC", 6, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
                _native("ETH"),
            ),
        ),
        NetworkSpec(
            name="mantle-sepolia",
            chain_id=5003,
            rpc_urls=("https://rpc.sepolia.mantle.xyz",),
            confirmations=2,
            native_symbol="MNT",
            explorer_url="https://explorer.sepolia.mantle.xyz",
            tokens=_tokens(_erc20("USDT", 6), _erc20("USDC", 6), _erc20("ETH", 18)),
        ),
        NetworkSpec(
            name="base-sepolia",
            chain_id=84532,
            rpc_urls=("https://sepolia.base.org",),
            confirmations=2,
            explorer_url="https://sepolia.basescan.org",
            tokens=_tokens(
                _erc20("USDT", 6),
                _erc20("USDC", 6, "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
                _native("ETH"),
            ),
        ),
        NetworkSpec(
            name="local",
            chain_id=31337,
            rpc_urls=(),  # `make run` and the tests start anvil and say where
            confirmations=1,
            tokens=_tokens(_erc20("USDT", 6), _erc20("USDC", 6), _native("ETH")),
        ),
    )
}


def from_environment(env: Any) -> dict[str, NetworkSpec]:
    """The registry as this deployment configures it: each value the environment sets (a
    django-environ Env) in place of the registry's, and the tokens left without a contract
    address dropped."""
    configured = {}
    for name, spec in REGISTRY.items():
        key = name.upper().replace("-", "_")
        tokens = {}
        for symbol, token in spec.tokens.items():
            address = env(f"KIBO_TOKEN_{key}_{symbol}", default=token.address)
            if token.is_native or address:
                tokens[symbol] = replace(
                    token, address=to_checksum_address(address) if address else None
                )
        configured[name] = replace(
            spec,
            chain_id=env.int(f"KIBO_CHAIN_ID_{key}", default=spec.chain_id),
            rpc_urls=tuple(env.list(f"KIBO_RPC_URL_{key}", default=list(spec.rpc_urls))),
            confirmations=env.int(f"KIBO_CONFIRMATIONS_{key}", default=spec.confirmations),
            finality=_finality(env(f"KIBO_FINALITY_{key}", default=spec.finality), key),
            explorer_url=env(f"KIBO_EXPLORER_URL_{key}", default=spec.explorer_url) or None,
            tokens=tokens,
        )
    return configured


FINALITY_RULES = ("depth", "safe", "finalized")


def _finality(rule: str, key: str) -> str:
    if rule not in FINALITY_RULES:
        raise ValueError(f"KIBO_FINALITY_{key} must be one of {', '.join(FINALITY_RULES)}.")
    return rule


class UnknownNetwork(LookupError):
    pass


class UnknownToken(LookupError):
    pass


def network_spec(name: str) -> NetworkSpec:
    """The network as configured here; raises UnknownNetwork when this deployment does not
    take payments on it (not enabled, or no RPC endpoint)."""
    spec = settings.KIBO_NETWORKS.get(name)
    if spec is None or name not in settings.KIBO_ENABLED_NETWORKS or not spec.rpc_urls:
        raise UnknownNetwork(f"The {name!r} network is not configured.")
    return spec


def is_enabled(name: str) -> bool:
    try:
        network_spec(name)
    except UnknownNetwork:
        return False
    return True


def configured_networks() -> list[NetworkSpec]:
    """The networks Kibo takes payments on here (KIBO_ENABLED_NETWORKS)."""
    return [network_spec(name) for name in settings.KIBO_ENABLED_NETWORKS if is_enabled(name)]
