"""What the HTTP and WebSocket cycles share.

`Channel` and `Server` are what a cycle sees of its connection and of the
worker: typed interfaces (`HttpProtocol` and `AsgiWorker` implement them),
so no cycle reaches into the connection's internals and no module imports
the one above it. `Cycle` holds the waiter that the connection wakes when
something arrives, and the ladder that runs the app: an app that raises,
returns early, or finds the client gone is each handled by the cycle's own
hook, and the worker's count of work in flight always comes down.

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

import abc
import asyncio
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from mypy_extensions import mypyc_attr

from hybrid.logs import AccessLog
from hybrid.metrics import Row
from hybrid.forwarded import ProxyHeaders

if TYPE_CHECKING:
    from hybrid.config import Config
    from hybrid.typing import ASGIApp, Message, Scope


@mypyc_attr(native_class=False)
class ClientDisconnected(OSError):
    """What an app's `send()` raises once the client has gone (ASGI spec 2.4),
    on a WebSocket or an HTTP response alike."""


class Server(Protocol):
    """What cycles read of their worker."""

    cfg: Config
    loop: asyncio.AbstractEventLoop
    app: ASGIApp  # (a WSGI app's: its WSGIBridge)
    alive: bool
    keeps_alive: bool  # False under --keep-alive 0: a connection carries one request
    in_flight: int  # requests and WebSockets whose app runs now
    access_log: AccessLog
    log_access: bool
    proxy: ProxyHeaders
    root_path: str
    state: dict[str, Any]  # lifespan state, copied into every scope
    stats: Row  # the worker's counters (cycles run on the loop: one writer)

    def request_served(self) -> None:
        """Count one request against --max-requests."""


class WritePressure(Protocol):
    """Whether a send must wait (`Channel.drain`) before it writes: `FlowControl`."""

    @property
    def write_paused(self) -> bool: ...


class Channel(Protocol):
    """What cycles see of their connection."""

    @property
    def server(self) -> Server: ...

    @property
    def closed(self) -> bool:
        """The transport is gone (or the stream, on HTTP/2): writes are dropped."""

    client: tuple[str, int] | None
    peer_trusted: bool
    address: tuple[str, int | None] | None  # the server side of the connection
    scheme: str  # "http", or "https" on TLS
    tls: dict[str, Any] | None  # the ASGI TLS extension's facts, on TLS

    @property
    def flow(self) -> WritePressure:
        """`write_paused`: a send must `drain()` before it writes."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def input_backlogged(self) -> None:
        """The cycle holds too much unconsumed input: pause reading."""

    def input_consumed(self) -> None:
        """The cycle took its input: reading may resume."""


_C = TypeVar("_C", bound=Channel)  # (mypyc: a subclass may not narrow `channel`)


@mypyc_attr(allow_interpreted_subclasses=True)  # (WebSocketCycle)
class Cycle(abc.ABC, Generic[_C]):
    """One unit of an app's work on a connection: an HTTP request or a WebSocket."""

    __slots__ = ("channel", "_waiter")

    scope: Scope

    def __init__(self, channel: _C) -> None:
        self.channel = channel
        self._waiter: asyncio.Future[None] | None = None  # receive() waiting for news

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None = None) -> None:
        """Sleep until `_wake()` (or `timeout` seconds: asyncio.TimeoutError)."""
        waiter = self._waiter = self.channel.server.loop.create_future()
        try:
            if timeout is None:
                await waiter
            else:
                await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiter = None

    async def run(self, app: ASGIApp) -> None:
        """Run the app; the connection counted it in the worker's work in flight."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self._cancelled_by_timeout():
                raise
            self._timed_out()
        except ClientDisconnected:
            self._client_left()
        except Exception:
            self._app_raised()
        else:
            self._app_returned()
        finally:
            self.channel.server.in_flight -= 1
            self._app_ended()

    @abc.abstractmethod
    async def receive(self) -> Message:
        """The app's `receive()`."""

    @abc.abstractmethod
    async def send(self, message: Message) -> None:
        """The app's `send()`."""

    def _cancelled_by_timeout(self) -> bool:
        """Whether the worker cancelled the app's task (--request-timeout)."""
        return False

    def _timed_out(self) -> None:
        """The worker cancelled the app's task for --request-timeout."""

    def _client_left(self) -> None:
        """The app's send() found the client gone (and the app let it propagate)."""

    def _app_raised(self) -> None:
        """The app raised; called inside the except block (log.exception works)."""

    def _app_returned(self) -> None:
        """The app returned."""

    def _app_ended(self) -> None:
        """After any of the above."""
