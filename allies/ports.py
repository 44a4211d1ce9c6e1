"""What the allies app asks of the order workflow, which it may not import (the orders app
sits above it): whether a wallet is paying an order right now, which keeps it from becoming
an ally until that order is finished. The orders app connects it in OrdersConfig.ready().
"""

import uuid
from typing import Protocol

from kibo.ports import Port


class PayersOrders(Protocol):
    def pays_an_order(self, *, user_id: uuid.UUID) -> bool:
        """Whether the user has an order not finished yet (waiting for payment, on the
        board, or being paid by an ally)."""


payers_orders: Port[PayersOrders] = Port("allies.ports.payers_orders")
