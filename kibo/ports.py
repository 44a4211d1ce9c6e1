"""Ports: how a lower layer reaches the layer above it without importing it.

The lower app owns the port and the Protocol it speaks (escrow.outcomes: a deposit arrived,
a payout or refund was confirmed; allies.ports: does this wallet pay an order now?). The
app above connects its implementation in its AppConfig.ready(). A call goes straight to the
implementation, inside the caller's transaction, so what it changes commits or rolls back
with the caller's own rows: exactly once, or not at all.

Unlike a Django signal, a port has exactly one implementation, and calling one that nothing
connected fails loudly (PortNotConnected) instead of doing nothing.
"""

from typing import Generic, TypeVar

T = TypeVar("T")


class PortNotConnected(RuntimeError):
    pass


class Port(Generic[T]):
    def __init__(self, name: str):
        self.name = name
        self._implementation: T | None = None

    def connect(self, implementation: T) -> None:
        """Connect the one implementation (again, the same kind of one, is harmless)."""
        connected = self._implementation
        if connected is not None and type(connected) is not type(implementation):
            raise RuntimeError(f"{self.name} is connected to {connected!r} already.")
        self._implementation = implementation

    def __call__(self) -> T:
        if self._implementation is None:
            raise PortNotConnected(
                f"Nothing is connected to {self.name}: the app that implements it must be "
                "installed and connect it in its AppConfig.ready()."
            )
        return self._implementation

    def __repr__(self) -> str:
        return f"<Port {self.name}: {self._implementation!r}>"
