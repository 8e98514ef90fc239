"""Flow control on one connection's transport, both ways.

Reading pauses while the app is behind (a request body waits unconsumed, or
too many pipelined requests wait); an app's `send()` calls `drain()` before
it writes, which waits while the transport's write buffer is above its
high-water mark, so no answer is buffered beyond one message, and the next
pipelined request waits for the same. (uvicorn's `FlowControl` has the
same shape.)
"""

from __future__ import annotations

import asyncio


class FlowControl:
    """Pausing and resuming one transport; inert once the connection is lost."""

    __slots__ = ("_transport", "read_paused", "write_paused", "_writable", "_lost")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = False

    def pause_reading(self) -> None:
        if not self.read_paused and not self._lost:
            self._transport.pause_reading()
            self.read_paused = True

    def resume_reading(self) -> None:
        if self.read_paused and not self._lost:
            self._transport.resume_reading()
            self.read_paused = False

    def pause_writing(self) -> None:
        """The transport's write buffer went over its high-water mark."""
        if not self._lost:
            self.write_paused = True
            self._writable.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writable.set()

    async def drain(self) -> None:
        """Wait until the transport takes writes again (callers check `write_paused`
        first: most sends need not create a coroutine)."""
        await self._writable.wait()

    def connection_lost(self) -> None:
        """No more pausing; a waiting `drain()` returns (the write is dropped)."""
        self._lost = True
        self.write_paused = False
        self._writable.set()
