"""The only module that talks to an EVM node (web3.py).

Everything else speaks in network names, token specs, addresses and integer base units.
It never holds a key: a transfer is signed by the signer its caller passes
(escrow.signers).
"""

import math
import time
from dataclasses import dataclass
from functools import cache

from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from escrow.networks import NetworkSpec, TokenSpec, UnknownToken, network_spec
from escrow.signers import Signer
from kibo.telemetry import RPC_ERRORS, RPC_SECONDS, endpoint_label

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
NATIVE_LOG_INDEX = -1  # a native-coin deposit has no log; one per transaction
RPC_TIMEOUT_SECONDS = 10
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 9, 8  # +12.5 %: nodes require at least +10 %
ERC20_ABI = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    # No declared output: mainnet USDT's transfer returns nothing, and we never read it.
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [],
    },
]


class ChainUnavailable(Exception):
    """The node could not be reached or did not answer; try again later."""


class NodeError(Exception):
    """The node answered with an error instead of a result."""


class TransferWouldFail(Exception):
    """The node predicts the transfer would revert, or could not be paid for; `reason` is
    what it said."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IncomingTransfer:
    """One movement of value into an address, as the chain records it."""

    network: str
    tx_hash: str
    log_index: int  # NATIVE_LOG_INDEX for the native coin
    block_number: int
    block_hash: str
    token_address: str | None  # None for the native coin
    sender: str
    recipient: str
    amount_base: int


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int  # 1 success, 0 reverted
    block_number: int
    block_hash: str
    sender: str
    to: str | None
    value: int
    logs: tuple
    fee_paid: int  # in the chain's native coin, base units


@dataclass(frozen=True)
class SignedTransfer:
    raw_tx: str
    tx_hash: str
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


# --- connections ----------------------------------------------------------------------


@cache
def _provider(url: str) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))


def _call(network: str, work):
    """Run `work(w3)` against the network's RPC URLs in order; the first that answers wins.
    A node that answers with an error raises NodeError; one that does not answer,
    ChainUnavailable once every URL was tried."""
    spec = network_spec(network)
    for url in spec.rpc_urls:
        endpoint = endpoint_label(url)
        started = time.perf_counter()
        try:
            return work(_provider(url))
        except (OSError, TimeoutError) as error:  # requests' errors derive from OSError
            RPC_ERRORS.labels(network, endpoint, "unreachable").inc()
            last_error = error
        except Web3RPCError as error:
            RPC_ERRORS.labels(network, endpoint, "error").inc()
            raise NodeError(error.message or str(error)) from None
        finally:
            RPC_SECONDS.labels(network, endpoint).observe(time.perf_counter() - started)
    raise ChainUnavailable(f"The {network} node is unreachable ({type(last_error).__name__}).")


def _hex(value) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


# --- reads ----------------------------------------------------------------------------


def head_block(network: str) -> int:
    return _call(network, lambda w3: w3.eth.block_number)


def newest_block(network: str) -> tuple[int, int]:
    """The node's newest block: its number and its timestamp (seconds since the epoch). A
    node that fell behind the network shows an old timestamp."""
    block = _call(network, lambda w3: w3.eth.get_block("latest"))
    return block["number"], block["timestamp"]


def block_hash(network: str, number: int) -> str | None:
    def work(w3):
        block = w3.eth.get_block(number)
        return _hex(block["hash"]) if block else None

    try:
        return _call(network, work)
    except NodeError:
        return None


def final_block(network: str, *, head: int | None = None) -> int:
    """The newest block this network's finality rule counts as final: the head (`head`, when
    the caller just read it) less `confirmations` - 1 (DEPTH), or the node's SAFE or
    FINALIZED block. Everything Kibo records from the chain (deposits, settled transfers,
    the books) is read up to it."""
    spec = network_spec(network)
    if spec.finality == "depth":
        return max(0, (head_block(network) if head is None else head) - (spec.confirmations - 1))
    return _call(network, lambda w3: w3.eth.get_block(spec.finality)["number"])


def confirmations(network: str, block_number: int) -> int:
    """How many blocks confirm a transaction mined in `block_number` (itself included)."""
    return max(0, head_block(network) - block_number + 1)


def receipt(network: str, tx_hash: str) -> Receipt | None:
    """The mined transaction, or None when the node does not know it as mined."""

    def work(w3):
        try:
            mined = w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        tx = w3.eth.get_transaction(tx_hash)
        return Receipt(
            tx_hash=_hex(mined["transactionHash"]),
            status=mined["status"],
            block_number=mined["blockNumber"],
            block_hash=_hex(mined["blockHash"]),
            sender=to_checksum_address(mined["from"]),
            to=to_checksum_address(mined["to"]) if mined["to"] else None,
            value=tx["value"],
            logs=tuple(mined["logs"]),
            fee_paid=mined["gasUsed"] * mined.get("effectiveGasPrice", 0),
        )

    return _call(network, work)


def transaction_known(network: str, tx_hash: str) -> bool:
    """True when the node has the transaction, mined or waiting in its pool."""

    def work(w3):
        try:
            w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    return _call(network, work)


def _transfer_from_log(network: str, log, block_hash_: str) -> IncomingTransfer | None:
    topics = [_hex(t) for t in log["topics"]]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
        return None
    return IncomingTransfer(
        network=network,
        tx_hash=_hex(log["transactionHash"]),
        log_index=log["logIndex"],
        block_number=log["blockNumber"],
        block_hash=block_hash_,
        token_address=to_checksum_address(log["address"]),
        sender=to_checksum_address("0x" + topics[1][-40:]),
        recipient=to_checksum_address("0x" + topics[2][-40:]),
        amount_base=int(_hex(log["data"]), 16),
    )


def incoming_in_receipt(network: str, mined: Receipt) -> list[IncomingTransfer]:
    """Every value transfer a mined transaction made: its native value and its ERC-20 logs."""
    found = []
    if mined.value and mined.to:
        found.append(
            IncomingTransfer(
                network=network,
                tx_hash=mined.tx_hash,
                log_index=NATIVE_LOG_INDEX,
                block_number=mined.block_number,
                block_hash=mined.block_hash,
                token_address=None,
                sender=mined.sender,
                recipient=mined.to,
                amount_base=mined.value,
            )
        )
    for log in mined.logs:
        transfer = _transfer_from_log(network, log, mined.block_hash)
        if transfer:
            found.append(transfer)
    return found


def incoming_between(
    network: str, *, recipient: str, from_block: int, to_block: int
) -> list[IncomingTransfer]:
    """Transfers of allow-listed tokens (and the native coin) to `recipient` in a block range."""
    spec = network_spec(network)
    recipient = to_checksum_address(recipient)
    padded = "0x" + recipient[2:].lower().rjust(64, "0")

    def work(w3):
        found = []
        if spec.erc20_addresses:
            logs = w3.eth.get_logs(
                {
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "address": spec.erc20_addresses,
                    "topics": [TRANSFER_TOPIC, None, padded],
                }
            )
            for log in logs:
                transfer = _transfer_from_log(network, log, _hex(log["blockHash"]))
                if transfer:
                    found.append(transfer)
        if any(t.is_native for t in spec.tokens.values()):
            for number in range(from_block, to_block + 1):
                block = w3.eth.get_block(number, full_transactions=True)
                for tx in block["transactions"]:
                    if tx["to"] and to_checksum_address(tx["to"]) == recipient and tx["value"]:
                        mined = w3.eth.get_transaction_receipt(tx["hash"])
                        if mined["status"] != 1:
                            continue
                        found.append(
                            IncomingTransfer(
                                network=network,
                                tx_hash=_hex(tx["hash"]),
                                log_index=NATIVE_LOG_INDEX,
                                block_number=number,
                                block_hash=_hex(block["hash"]),
                                token_address=None,
                                sender=to_checksum_address(tx["from"]),
                                recipient=recipient,
                                amount_base=tx["value"],
                            )
                        )
        return found

    return _call(network, work)


def balance_of(network: str, token: TokenSpec, address: str, *, block: int | str = "latest") -> int:
    """What `address` holds of `token` as of `block` (a number pins several reads together)."""
    address = to_checksum_address(address)

    def work(w3):
        if token.is_native:
            return w3.eth.get_balance(address, block)
        contract = w3.eth.contract(address=token.address, abi=ERC20_ABI)
        return contract.functions.balanceOf(address).call(block_identifier=block)

    return _call(network, work)


def nonce_of(network: str, address: str, *, block: int | str = "latest") -> int:
    """How many transactions `address` has had mined as of `block`: its next nonce."""
    return _call(network, lambda w3: w3.eth.get_transaction_count(address, block))


@dataclass(frozen=True)
class SentTransaction:
    """A transaction the chain has from a wallet, decoded as a transfer of one token."""

    nonce: int
    tx_hash: str
    raw_tx: str
    block_number: int
    token: TokenSpec | None  # None: not a plain transfer of a token this network accepts
    recipient: str | None
    amount_base: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


TRANSFER_SELECTOR = "a9059cbb"  # transfer(address,uint256)


def _decoded(spec: NetworkSpec, tx) -> tuple[TokenSpec | None, str | None, int]:
    data = _hex(tx.get("input") or b"")[2:]
    if not data:
        return spec.gas_coin, to_checksum_address(tx["to"]), int(tx["value"])
    token = spec.token_at(tx["to"]) if tx.get("to") else None
    if token is None or not data.startswith(TRANSFER_SELECTOR) or len(data) != 8 + 128:
        return None, None, 0
    return token, to_checksum_address("0x" + data[8 + 24 : 8 + 64]), int(data[8 + 64 :], 16)


def sent_from(
    network: str, address: str, *, nonces: set[int], from_block: int
) -> list[SentTransaction]:
    """The mined transactions of `address` at these nonces, found by reading blocks from
    `from_block` up until each is found (or the head is reached), with their signed bytes."""
    spec = network_spec(network)
    address = to_checksum_address(address)
    found: list[SentTransaction] = []
    wanted = set(nonces)

    def work(w3):
        head = w3.eth.block_number
        for number in range(from_block, head + 1):
            if not wanted:
                break
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                if to_checksum_address(tx["from"]) != address or tx["nonce"] not in wanted:
                    continue
                wanted.discard(tx["nonce"])
                tx_hash = _hex(tx["hash"])
                raw = w3.provider.make_request("eth_getRawTransactionByHash", [tx_hash])
                token, recipient, amount = _decoded(spec, tx)
                found.append(
                    SentTransaction(
                        nonce=tx["nonce"],
                        tx_hash=tx_hash,
                        raw_tx=raw["result"],
                        block_number=number,
                        token=token,
                        recipient=recipient,
                        amount_base=amount,
                        max_fee_per_gas=int(tx.get("maxFeePerGas") or tx.get("gasPrice") or 0),
                        max_priority_fee_per_gas=int(tx.get("maxPriorityFeePerGas") or 0),
                    )
                )
        return found

    return _call(network, work)


# --- writes ---------------------------------------------------------------------------


def transfer_call(spec: NetworkSpec, token: TokenSpec, to: str, amount_base: int) -> dict:
    """The transaction fields (to, value, data) that move `amount_base` of `token` to `to`."""
    if token.is_native:
        return {"to": to_checksum_address(to), "value": amount_base, "data": "0x"}
    if token.address is None:
        raise UnknownToken(f"{token.symbol} has no contract on {spec.name} here.")
    contract = Web3().eth.contract(address=to_checksum_address(token.address), abi=ERC20_ABI)
    data = contract.encode_abi("transfer", args=[to_checksum_address(to), amount_base])
    return {"to": token.address, "value": 0, "data": data}


def estimate_transfer_gas(
    network: str, token: TokenSpec, to: str, amount_base: int, *, sender: str
) -> int:
    """Gas for the transfer from `sender`, with headroom; raises TransferWouldFail if the
    node predicts a revert."""
    spec = network_spec(network)
    call = {**transfer_call(spec, token, to, amount_base), "from": sender}

    def work(w3):
        try:
            return w3.eth.estimate_gas(call)
        except (ContractLogicError, Web3RPCError) as error:
            raise TransferWouldFail(error.message or str(error)) from None

    gas = _call(network, work)
    return gas if token.is_native else math.ceil(gas * 1.25)


def suggested_fees(network: str) -> tuple[int, int]:
    """(max_fee_per_gas, max_priority_fee_per_gas) for a transaction that should mine soon."""

    def work(w3):
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
        priority = w3.eth.max_priority_fee
        return 2 * base_fee + priority, priority

    return _call(network, work)


def bumped_fees(previous: tuple[int, int], current: tuple[int, int]) -> tuple[int, int]:
    """Fees for a replacement: at least 12.5 % above the previous, and no less than current."""
    bump = lambda fee: -(-fee * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR)  # noqa: E731
    priority = max(bump(previous[1]), current[1], 1)
    return max(bump(previous[0]), current[0], priority), priority


def sign_transfer(
    network: str,
    *,
    signer: Signer,
    token: TokenSpec,
    to: str,
    amount_base: int,
    nonce: int,
    gas: int,
    fees: tuple[int, int],
) -> SignedTransfer:
    spec = network_spec(network)
    tx = {
        **transfer_call(spec, token, to, amount_base),
        "chainId": spec.chain_id,
        "nonce": nonce,
        "gas": gas,
        "maxFeePerGas": fees[0],
        "maxPriorityFeePerGas": fees[1],
        "type": 2,
    }
    signed = signer.sign_transaction(tx)
    return SignedTransfer(
        raw_tx=_hex(signed.raw_transaction),
        tx_hash=_hex(signed.tx_hash),
        nonce=nonce,
        max_fee_per_gas=fees[0],
        max_priority_fee_per_gas=fees[1],
    )


class Rejected(Exception):
    """The node refused a raw transaction; `reason` is its message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def already_known(self) -> bool:
        return "already known" in self.reason.lower() or "already imported" in self.reason.lower()

    @property
    def nonce_too_low(self) -> bool:
        return "nonce too low" in self.reason.lower()


def broadcast(network: str, raw_tx: str) -> None:
    """Hand the stored signed bytes to the node. Sending the same bytes twice is harmless."""

    def work(w3):
        try:
            w3.eth.send_raw_transaction(raw_tx)
        except Web3RPCError as error:
            message = (
                error.rpc_response.get("error", {}).get("message")
                if error.rpc_response
                else str(error)
            )
            raise Rejected(str(message)) from None

    _call(network, work)
