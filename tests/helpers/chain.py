"""Test support for the real local chain (anvil): wallets with funds, payments, time."""

import os
import threading
from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devtools.localchain import mint_local
from escrow.amounts import to_base_units
from escrow.chain import ERC20_ABI, TRANSFER_TOPIC, balance_of
from escrow.networks import network_spec

ETHER = 10**18


def w3() -> Web3:
    return Web3(Web3.HTTPProvider(os.environ["KIBO_RPC_URL_LOCAL"]))


def rpc(method: str, *params):
    response = w3().provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(response["error"])
    return response["result"]


def token(symbol: str):
    return network_spec("local").token(symbol)


def funded_wallet(*, usdt: str = "1000", usdc: str = "1000", eth: int = 10) -> LocalAccount:
    """A fresh wallet holding gas money and test tokens."""
    account = Account.create()
    rpc("anvil_setBalance", account.address, hex(eth * ETHER))
    for symbol, amount in (("USDT", usdt), ("USDC", usdc)):
        if Decimal(amount):
            mint_local(
                os.environ["KIBO_RPC_URL_LOCAL"],
                token_address=token(symbol).address,
                to=account.address,
                amount_base=to_base_units(Decimal(amount), 6),
            )
    return account


def send(
    account: LocalAccount,
    *,
    to: str,
    symbol: str,
    amount_base: int,
    token_address: str | None = None,
) -> str:
    """Pay from a wallet, as a browser wallet would; returns the transaction hash. With
    automine on, returns once the payment is mined, as the tests expect of that mode."""
    web3 = w3()
    tx = {
        "from": account.address,
        "nonce": web3.eth.get_transaction_count(account.address),
        "chainId": 31337,
        "maxFeePerGas": 10 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    spec = token(symbol)
    if spec.is_native and token_address is None:
        tx |= {"to": to, "value": amount_base, "gas": 21000}
    else:
        contract = web3.eth.contract(address=token_address or spec.address, abi=ERC20_ABI)
        tx = contract.functions.transfer(to, amount_base).build_transaction(tx | {"gas": 100_000})
    sent = web3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    if rpc("anvil_getAutomine"):  # "mined at once" still happens a moment after the answer
        web3.eth.wait_for_transaction_receipt(sent, timeout=10, poll_latency=0.02)
    return "0x" + sent.hex().removeprefix("0x")


def balance(symbol: str, address: str) -> int:
    return balance_of("local", token(symbol), address)


def set_token_balance(symbol: str, owner: str, amount_base: int) -> None:
    """Write a test token's balance straight into its storage (balanceOf is slot 3)."""
    from eth_utils import keccak

    slot = keccak(bytes.fromhex(owner[2:].lower().rjust(64, "0")) + (3).to_bytes(32, "big"))
    rpc(
        "anvil_setStorageAt",
        token(symbol).address,
        "0x" + slot.hex(),
        "0x" + amount_base.to_bytes(32, "big").hex(),
    )


def mine(blocks: int = 1) -> None:
    rpc("anvil_mine", hex(blocks))


def confirmed(tx_hash: str, *, seconds: float = 30) -> None:
    """Wait until the transaction is mined and has the confirmations the network requires.
    With automine on, nothing else makes blocks: the missing ones are mined here."""
    from escrow.chain import confirmations, receipt
    from tests.helpers.processes import wait_for

    def done() -> bool:
        mined = receipt("local", tx_hash)
        if mined is None:
            return False
        missing = network_spec("local").confirmations - confirmations("local", mined.block_number)
        if missing > 0 and rpc("anvil_getAutomine"):
            mine(missing)
            return True
        return missing <= 0

    assert wait_for(done, seconds=seconds), f"{tx_hash} was not confirmed in {seconds} s"


class IntervalMiner:
    """A block every `seconds`, mined from a thread with automine off, as a public chain runs:
    transactions wait in the pool, several land in one block, confirmations take time, and
    transfers sent a moment apart overlap. (anvil's own interval mining takes whole seconds.)"""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interval-miner", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            rpc("evm_mine")

    def __enter__(self):
        rpc("evm_setAutomine", False)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        rpc("evm_setAutomine", True)


def token_transfers_to(address: str) -> int:
    """How many ERC-20 Transfer events on the whole chain paid `address`."""
    topic = "0x" + address[2:].lower().rjust(64, "0")
    return len(
        rpc(
            "eth_getLogs",
            {"fromBlock": "0x0", "toBlock": "latest", "topics": [TRANSFER_TOPIC, None, topic]},
        )
    )
