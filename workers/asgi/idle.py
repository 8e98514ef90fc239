"""`IdleConnections`: the asgi worker's kept-alive connections that wait for a
next request, in the order they became idle.

At --worker-connections a new connection takes the place of the one idle
longest; keeping them in that order gives it at once, where a scan of every
open connection cost each accept milliseconds with ten thousand held.

Thread boundaries: none. Only the worker's event loop touches it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class IdleConnections(Generic[T]):
    """Connections idle now, oldest first (a dict keeps insertion order)."""

    __slots__ = ("_order",)

    def __init__(self) -> None:
        self._order: dict[T, None] = {}

    def add(self, connection: T) -> None:
        """`connection` became idle: it is now the newest."""
        self._order.pop(connection, None)
        self._order[connection] = None

    def discard(self, connection: T) -> None:
        """`connection` is busy again, or closing: no room to make from it."""
        self._order.pop(connection, None)

    def oldest(self) -> T | None:
        return next(iter(self._order), None)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, connection: object) -> bool:
        return connection in self._order
