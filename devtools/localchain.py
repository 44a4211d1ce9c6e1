"""The local development chain (anvil): the test tokens deployed from devtools/contracts,
minted out of thin air, and payments sent from wallets whose keys development holds.

Development and tests only: production talks to a chain through escrow.chain alone.
"""

import json
from pathlib import Path

from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from escrow.chain import transfer_call
from escrow.networks import TokenSpec, network_spec

ARTIFACTS = Path(__file__).resolve().parent / "contracts" / "artifacts"
LOCAL_DEPLOYER_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
LOCAL_TOKENS = {
    # symbol: (contract, name, decimals); USDT behaves like mainnet USDT.
    "USDT": ("TetherLikeToken", "Tether USD (test)", 6),
    "USDC": ("KiboTestToken", "USD Coin (test)", 6),
}
RECEIPT_TIMEOUT_SECONDS = 30


def load_artifact(name: str) -> dict:
    """A compiled test contract: {"abi": ..., "bytecode": ...} (make contracts builds them)."""
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _w3(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))


def _create_address(sender: str, nonce: int) -> str:
    """Where a contract deployed by `sender` at `nonce` lands (RLP of [sender, nonce])."""
    assert 0 <= nonce < 128
    encoded_nonce = bytes([0x80]) if nonce == 0 else bytes([nonce])
    return to_checksum_address(keccak(b"\xd6\x94" + bytes.fromhex(sender[2:]) + encoded_nonce)[12:])


def deploy_local_tokens(rpc_url: str) -> dict[str, str]:
    """Deploy the test tokens to a local anvil from a dedicated account; symbol -> address.

    The addresses follow from the deployer's nonce, so a chain restored from saved state
    already has them and nothing is deployed twice.
    """
    w3 = _w3(rpc_url)
    deployer = Account.from_key(LOCAL_DEPLOYER_KEY)
    addresses = {}
    for nonce, (symbol, (contract_name, name, decimals)) in enumerate(LOCAL_TOKENS.items()):
        address = _create_address(deployer.address, nonce)
        if not w3.eth.get_code(address):
            artifact = load_artifact(contract_name)
            factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
            tx = factory.constructor(name, symbol, decimals).build_transaction(
                {"from": deployer.address, "nonce": nonce, "chainId": w3.eth.chain_id}
            )
            sent = w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
            mined = w3.eth.wait_for_transaction_receipt(sent, timeout=RECEIPT_TIMEOUT_SECONDS)
            assert to_checksum_address(mined["contractAddress"]) == address
        addresses[symbol] = address
    return addresses


def mint_local(rpc_url: str, *, token_address: str, to: str, amount_base: int) -> None:
    """Create test tokens out of thin air (the test tokens let anyone mint)."""
    w3 = _w3(rpc_url)
    deployer = Account.from_key(LOCAL_DEPLOYER_KEY)
    contract = w3.eth.contract(address=token_address, abi=load_artifact("KiboTestToken")["abi"])
    tx = contract.functions.mint(to_checksum_address(to), amount_base).build_transaction(
        {
            "from": deployer.address,
            "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    sent = w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    w3.eth.wait_for_transaction_receipt(sent, timeout=RECEIPT_TIMEOUT_SECONDS)


def pay_from(network: str, *, private_key: str, token: TokenSpec, to: str, amount_base: int) -> str:
    """Send a payment from a wallet whose key we hold (the local demo user's); its hash."""
    account = Account.from_key(private_key)
    spec = network_spec(network)
    w3 = _w3(spec.rpc_urls[0])
    tx = {
        **transfer_call(spec, token, to, amount_base),
        "from": account.address,
        "chainId": spec.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
    }
    tx["gas"] = w3.eth.estimate_gas(tx)
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
    tx |= {"maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
    return Web3.to_hex(w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
