"""Who signs for the escrow wallet: the one thing that needs its key.

Only the worker that sends transfers signs, so only its process loads a signer; the web
and beat processes never do, and never see a key. `KIBO_ESCROW_SIGNER` names the class
(default: the key in the worker's environment). Another signer, a KMS or an HSM, is a new
class with the same two members: the address it signs for, and `sign_transaction`, which
takes an EIP-1559 transaction (a dict, as web3 builds them) and returns the signed bytes
and their hash. The key itself is never stored, logged or put in an exception's message.
"""

import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from eth_account import Account


class SignerUnavailable(Exception):
    """This process cannot sign for the escrow wallet (its message says why, never a key)."""


@dataclass(frozen=True)
class Signature:
    raw_transaction: bytes
    tx_hash: bytes


class Signer(Protocol):
    @property
    def address(self) -> str:
        """The EIP-55 address of the wallet it signs for."""

    def sign_transaction(self, transaction: dict[str, Any]) -> Signature: ...


class LocalKeySigner:
    """Signs with the private key in the worker's environment (KIBO_ESCROW_PRIVATE_KEY)."""

    def __init__(self) -> None:
        key = os.environ.get("KIBO_ESCROW_PRIVATE_KEY", "")
        if not key:
            raise SignerUnavailable("KIBO_ESCROW_PRIVATE_KEY is not set.")
        try:
            self._account = Account.from_key(key)
        except (ValueError, TypeError):
            raise SignerUnavailable("KIBO_ESCROW_PRIVATE_KEY is not a valid private key.") from None

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, transaction: dict[str, Any]) -> Signature:
        signed = self._account.sign_transaction(transaction)
        return Signature(raw_transaction=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash))

    def __repr__(self) -> str:
        return f"<LocalKeySigner for {self.address}>"  # never the key


@cache
def escrow_signer() -> Signer:
    """The configured signer, made once per process (making one reads its key)."""
    signer: Signer = import_string(settings.KIBO_ESCROW_SIGNER)()
    return signer
