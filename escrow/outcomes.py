"""What escrow tells the order workflow, which it may not import (the orders app sits above
it): a deposit arrived (which order does it pay?), and a payout or a refund was confirmed on
chain. The orders app connects its implementation in OrdersConfig.ready(); every call runs
inside escrow's transaction, so the order changes commit with the money record, once.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from escrow.chain import IncomingTransfer
from escrow.networks import TokenSpec
from kibo.ports import Port


@dataclass(frozen=True)
class DepositClaim:
    """Which order a deposit pays: `order_id` takes `credited_base` of it (the rest goes
    back to its sender), or no order can take it and `reason` says why (all of it goes
    back). `order_id` is also set for a refusal that concerns an order."""

    order_id: uuid.UUID | None
    credited_base: int = 0
    reason: str = ""

    @property
    def credited(self) -> bool:
        return self.credited_base > 0


class EscrowOutcomes(Protocol):
    def deposit_claim(
        self, *, incoming: IncomingTransfer, token: TokenSpec, order_hint: uuid.UUID | None
    ) -> DepositClaim:
        """A confirmed transfer into escrow, not the operator's: the order it pays (locked
        until the transaction ends), or why none can take it. `order_hint` is the order the
        payer reported it for; without one, the sender's order waiting for this token."""

    def deposit_credited(
        self, *, order_id: uuid.UUID, tx_hash: str, amount_received: Decimal
    ) -> None:
        """The deposit the claim named is recorded as paying that order."""

    def release_confirmed(self, *, order_id: uuid.UUID, tx_hash: str) -> None:
        """The ally's payout of a completed order is confirmed on chain."""

    def refund_confirmed(self, *, order_id: uuid.UUID, tx_hash: str) -> None:
        """The payer's refund is confirmed on chain."""


outcomes: Port[EscrowOutcomes] = Port("escrow.outcomes.outcomes")
