"""The moments of the transfer protocol where a crash tells the most: the nonce taken, the
signed bytes stored, the bytes broadcast (escrow.transfers).

Production passes them by. The exactly-once tests listen (devtools.failpoints) and kill a
worker at one, to show that whatever stopped there is finished exactly once.
"""

from collections.abc import Callable

_listeners: list[Callable[[str], None]] = []


def listen(callback: Callable[[str], None]) -> None:
    _listeners.append(callback)


def reached(name: str) -> None:
    for callback in _listeners:
        callback(name)
