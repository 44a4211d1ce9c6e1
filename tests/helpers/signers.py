from typing import Any

from eth_account import Account

from escrow.signers import Signature

# anvil's account 0: the test escrow wallet (KIBO_ESCROW_ADDRESS in the test settings)
ESCROW_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


class RemoteSigner:
    """A signer that is not a key in the environment, as a KMS or an HSM would be: it holds
    its key elsewhere (here, in itself) and says what it signed."""

    signed: list[dict[str, Any]] = []

    def __init__(self) -> None:
        self._account = Account.from_key(ESCROW_KEY)

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, transaction: dict[str, Any]) -> Signature:
        RemoteSigner.signed.append(transaction)
        signed = self._account.sign_transaction(transaction)
        return Signature(raw_transaction=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash))
