"""How an asgi connection ends: the deadline the worker sweeps, keep-alive
idleness, a client that shut its sending side, the lingering close, and a
stopping worker's grace.

`ConnectionLifetime` is the lowest base of `HttpProtocol`
(workers.asgi.connection), which carries the requests: the request path
lives there, what runs on a timer or at a connection's end lives here. To
decide, it reads what the class above holds (the cycle being answered, those
waiting, the parser); it routes nothing.

Closing lingers when the core's connection state says the client may still
be sending: our side is shut first and input dropped for a moment, so a
request on its way is not answered by a reset.

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from hybrid.protocol import LINGER_BYTES, LINGER_SECONDS, STOP_IDLE_GRACE, RequestParser
from hybrid.workers.asgi.cycle import Server
from hybrid.workers.asgi.flow import FlowControl
from hybrid.workers.asgi.idle import IdleConnections

if TYPE_CHECKING:
    from hybrid.workers.asgi.http_cycle import Http1Cycle, HttpCycle
    from hybrid.workers.asgi.websocket import WebSocketCycle

WEBSOCKET_CLOSE_GRACE: Final = 5.0  # seconds a client has to answer our close frame


class ServedConnection(Protocol):
    """What the worker reads of an open connection, HTTP/1.1 (`HttpProtocol`) or
    HTTP/2 (`H2Connection`): its deadline, its requests, and how it ends."""

    deadline: float | None  # swept once a second by the worker's tick
    on_deadline: Callable[[], None]
    websocket: WebSocketCycle | None

    def running(self) -> list[HttpCycle[Any]]:
        """The requests whose app runs now (--request-timeout, the stop's report)."""

    def shut_down(self, abort: bool) -> None:
        """The worker stops: end now, or after the answers due."""

    def close_idle(self) -> None:
        """Close this idle connection to make room for a new one."""


class LifetimeHost(Server, Protocol):
    """What a connection's lifetime reads of its worker, beyond what its cycles do."""

    idle: IdleConnections[ServedConnection]  # kept alive and waiting, oldest first


_H = TypeVar("_H", bound=LifetimeHost)  # (mypyc: a subclass may not narrow `server`)


class ConnectionLifetime(asyncio.Protocol, Generic[_H]):
    """When and how a connection ends."""

    transport: asyncio.Transport
    flow: FlowControl
    # What it reads of the class above (set there) to decide:
    parser: RequestParser
    tls: dict[str, Any] | None  # (no half-close on TLS)
    active: Http1Cycle | None  # the cycle being answered
    waiting: deque[Http1Cycle]  # pipelined, not started
    websocket: WebSocketCycle | None

    def __init__(self, server: _H) -> None:
        self.server = server
        self.cfg = server.cfg
        # Where reads go instead of the parser: an accepted WebSocket, or a lingering close.
        self.divert: Callable[[bytes], None] | None = None
        self.lingering = False
        self.peer_done = False  # the client shut its sending side (eof_received)
        self.dropped = 0  # input bytes skipped or lingered over
        self.closed = False
        self.deadline: float | None = None  # swept once a second by the worker's tick
        self.on_deadline: Callable[[], None] = self._close
        self.idle = False  # kept alive, no byte of a next request yet (in server.idle)
        self.fresh = True  # no byte received yet

    # --- the deadline ------------------------------------------------------------------

    def _arm_timer(self, delay: float, callback: Callable[[], None]) -> None:
        # A deadline the worker checks every second, not a loop timer per
        # request: arming and cancelling one costs more than serving a request.
        self.deadline = self.server.loop.time() + delay
        self.on_deadline = callback

    def _cancel_timer(self) -> None:
        self.deadline = None

    def _busy(self) -> None:
        """No longer idle: a next request began, or the connection ends."""
        self.idle = False
        self.server.idle.discard(self)

    # --- a client that shut its sending side -------------------------------------------

    def _stays_open_for_answers(self) -> bool:
        """The client shut its sending side (eof_received, its last events routed):
        whether the connection stays open for the answers still due."""
        # A client that shut its side after its requests waits for the answers (RFC
        # 9112 9.6): one not begun is still due. A FIN looks like a full close, so
        # one while an answer streams, nothing waiting, is the client leaving (a
        # closed tab), as on an idle connection: False closes after what was written.
        # (TLS has no half-close here: the loop's TLS layer closes on close_notify.)
        active = self.active
        answers_due = bool(self.waiting) or (active is not None and not active.answer_begun)
        if answers_due and self.tls is None and not self.transport.is_closing():
            self._arm_timer(self.cfg.keep_alive, self._on_peer_silent)
            return True
        return False

    def _on_peer_silent(self) -> None:
        """The client shut its side and nothing was written to it for --keep-alive:
        an app waiting for it to leave is told it has (only a write could tell), so
        a closed client holds no connection for ever; an app at work gets more time."""
        active = self.active
        if active is not None and active.awaiting_disconnect:
            active.client_gone()
        else:
            self._arm_timer(self.cfg.keep_alive, self._on_peer_silent)

    # --- closing -----------------------------------------------------------------------

    def _close(self, linger: bool = False) -> None:
        """Close; lingering if the client may be sending, or if `linger`: a kept-alive
        connection the server ends may have a request on its way."""
        transport = self.transport
        if self.closed or self.lingering:
            return  # (a lingering close keeps its own deadline)
        self._cancel_timer()
        if self.idle:
            self._busy()  # (closing: no room to make from it any more)
        if (linger or self.parser.client_may_be_sending) and not self.peer_done \
                and not transport.is_closing() and transport.can_write_eof():
            # Linger (see the module docstring): shut our side, drop input a moment.
            self.lingering = True
            self.divert = self._drop_input
            self.dropped = 0
            transport.write_eof()  # after what is buffered
            self.flow.resume_reading()
            self._arm_timer(LINGER_SECONDS, transport.close)
            return
        transport.close()

    def close_idle(self) -> None:
        """Close this idle keep-alive connection to make room for a new one."""
        self._close()

    def running(self) -> list[HttpCycle[Any]]:
        return [self.active] if self.active is not None else []

    def _end_idle(self) -> None:
        """A stopping worker's idle connection: a lingering close, never a bare one
        that could reset a request on its way."""
        self._close(linger=True)

    def _drop_input(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > LINGER_BYTES:
            self.transport.close()

    def close_after_websocket(self, grace: bool = False) -> None:
        """Close now, or, after sending our close frame, once the client answers
        (or within a few seconds)."""
        if grace:
            self._arm_timer(WEBSOCKET_CLOSE_GRACE, self._close)
        else:
            self._close()

    def shut_down(self, abort: bool) -> None:
        """The worker stops: end an idle connection now (any, if aborting), others after
        their response; an open WebSocket gets a going-away close."""
        if abort:
            self.transport.abort()
        elif self.websocket is not None:
            self.websocket.shut_down()
        elif self.idle or self.fresh:
            # A request may be on its way (the next one, or the first on a connection
            # accepted and silent yet): it has STOP_IDLE_GRACE to come, and is served
            # with Connection: close; then a lingering close. A request begun is
            # served too.
            grace = min(STOP_IDLE_GRACE, self.cfg.keep_alive)
            if self.deadline is None or self.deadline > self.server.loop.time() + grace:
                self._arm_timer(grace, self._end_idle)
