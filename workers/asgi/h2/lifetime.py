"""How an HTTP/2 connection of the asgi worker writes, idles, stops and ends.

`H2Lifetime` is the base of `H2Connection` (workers.asgi.h2.connection),
which routes the engine's events to the streams: the request path lives
there, what runs once per turn of the loop or at a connection's end lives
here, as `ConnectionLifetime` is to HTTP/1.1's `HttpProtocol`.

* Writing: what the engine queued goes out once per turn of the loop
  (`flush`), so that many streams answered in one turn go in one write; a
  window a stream's `send()` waits on is checked as the queue drains.
* Idleness: a connection with no stream open is idle: it is closed (GOAWAY)
  after --keep-alive, and may make room for a new one at
  --worker-connections.
* Stopping: `shut_down` answers the streams taken, then sends the GOAWAY
  and closes (it says when, and why not sooner), within --graceful-timeout;
  open WebSockets get a going-away close.
* Ending: a spent flood budget is one warning line and a GOAWAY
  (ENHANCE_YOUR_CALM); nothing more is routed once the transport closes.

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hybrid.logs import error_log as log
from hybrid.protocol import STOP_IDLE_GRACE
from hybrid.protocol.flood import FloodBudget
from hybrid.workers.asgi.cycle import Server
from hybrid.workers.asgi.flow import FlowControl
from hybrid.workers.asgi.h2 import engine as h2

if TYPE_CHECKING:
    from hybrid.protocol import Limits
    from hybrid.typing import ASGIApp
    from hybrid.workers.asgi.h2.stream import StreamCycle
    from hybrid.workers.asgi.h2.tunnel import StreamTunnel
    from hybrid.workers.asgi.http_cycle import HttpCycle
    from hybrid.workers.asgi.idle import IdleConnections
    from hybrid.workers.asgi.lifetime import ServedConnection
    from hybrid.workers.asgi.websocket import WebSocketCycle


class H2Host(Server, Protocol):
    """What an HTTP/2 connection reads of its worker, beyond what its streams do
    (the worker's `Host` for HTTP/1.1 connections says the same of these)."""

    app: ASGIApp
    connections: set[ServedConnection]
    idle: IdleConnections[ServedConnection]
    limits: Limits
    limit_concurrency: int  # 0: no limit

    def connection_ended(self) -> None:
        """A connection closed: a listener paused at the bound may go on."""


class H2Lifetime(asyncio.Protocol):
    """When and how an HTTP/2 connection writes and ends."""

    # What it reads of the class above (set there):
    server: H2Host
    cfg: Any
    transport: asyncio.Transport
    flow: FlowControl
    client: tuple[str, int] | None
    engine: h2.Engine
    budget: FloodBudget
    streams: dict[int, StreamCycle]
    tunnels: dict[int, StreamTunnel]
    skipped: dict[int, int]  # streams answered whose request body still comes
    window_waiters: dict[int, asyncio.Future[None]]

    def __init__(self) -> None:
        self.closed = False
        self.closing = False  # (the transport is closing: nothing more is routed)
        self.stopping = False
        self.refuse_from = 0.0  # stopping: new streams from this loop time on are refused
        self.goaway_due = False  # stopping: the GOAWAY waits for the answers' last bytes
        self.drain_due = False  # no stream open, but answers' bytes still queued
        self.idle = False
        self.websocket: WebSocketCycle | None = None  # (the worker's view: HTTP/1.1's only)
        self.deadline: float | None = None  # swept once a second by the worker's tick
        self.on_deadline: Callable[[], None] = self.close_idle
        self._flush_due = False

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def flush(self) -> None:
        if not self._flush_due and not self.closed:
            self._flush_due = True
            self.server.loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._flush_due = False
        if self.closed:
            return
        data = self.engine.outgoing()
        if data:
            self.transport.write(data)
            self.budget.data_sent(len(data))
            # A window the queue waited on may have opened as the engine wrote.
            if self.window_waiters:
                for stream_id in list(self.window_waiters):
                    if self.engine.queued(stream_id) <= 0:
                        self._window_opened(stream_id)
            if self.goaway_due and not self.engine.queued():
                self._go_away_and_close()
            elif self.drain_due and not self.engine.queued():
                self._maybe_idle()
            elif not self.engine.wants_more:
                self._close()  # (the engine wrote its last GOAWAY: a connection error)

    def _window_opened(self, stream_id: int) -> None:
        """The client opened a window (0: the connection's): what waits may go on."""
        waiters = self.window_waiters
        if not waiters:
            return
        if stream_id:
            waiter = waiters.get(stream_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    def running(self) -> list[HttpCycle[Any]]:
        """The cycles whose app runs now (--request-timeout, the stop's report)."""
        return [cycle for cycle in self.streams.values() if not cycle.complete]

    def _idle_from_now(self, timeout: float) -> None:
        self.idle = True
        self.server.idle.add(self)
        self.deadline = self.server.loop.time() + timeout
        self.on_deadline = self.close_idle

    def _busy(self) -> None:
        self.idle = False
        self.server.idle.discard(self)
        self.deadline = None

    @property
    def open_streams(self) -> int:
        """Streams open as the client sees them: requests and WebSockets being
        served, and answered ones whose request body still comes."""
        return len(self.streams) + len(self.tunnels) + len(self.skipped)

    def _maybe_idle(self) -> None:
        """No stream open and every answer's bytes gone: idle (or, stopping, the
        GOAWAY). Answers still queued for the client's window keep it busy
        (`_write_now` asks again as they drain)."""
        if self.open_streams or self.closed:
            return
        if self.engine.queued():
            self.drain_due = True
            return
        self.drain_due = False
        if self.stopping:
            self._go_away_and_close()
        else:
            self._idle_from_now(self.cfg.keep_alive)

    def close_idle(self) -> None:
        """Idle past --keep-alive, or its place is wanted: GOAWAY, then close."""
        self.engine.go_away(h2.ErrorCode.NO_ERROR)
        self._write_now()
        self._close()

    def shut_down(self, abort: bool) -> None:
        """The worker stops: answer the streams taken, then GOAWAY and close.

        The GOAWAY waits for a moment with no stream open: a client that gets one
        while its streams run may fail them (httpx does, though RFC 9113 section
        6.8 has it finish them), and streams it sends after the GOAWAY are not
        taken, so it retries them elsewhere. New streams are served for
        STOP_IDLE_GRACE, as HTTP/1.1 serves a next request, then refused
        (REFUSED_STREAM, safe to retry), so that the connection drains. A
        connection that has carried no stream yet waits STOP_IDLE_GRACE for its
        first, as HTTP/1.1's fresh connection does: its client has nowhere else
        to go once the listeners are closed.
        """
        if abort:
            self.transport.abort()
            return
        if self.stopping:
            return
        self.stopping = True
        self.refuse_from = self.server.loop.time() + STOP_IDLE_GRACE
        for tunnel in list(self.tunnels.values()):
            if tunnel.websocket is not None:
                tunnel.websocket.shut_down()  # (a going-away close)
        if self.open_streams:
            return
        if self.budget.streams:
            self._go_away_and_close()
        else:  # (a stream that comes meanwhile is served: `_busy` disarms this)
            self.deadline = self.server.loop.time() + min(STOP_IDLE_GRACE, self.cfg.keep_alive)
            self.on_deadline = self._go_away_and_close

    def _go_away_and_close(self) -> None:
        """GOAWAY naming the last stream taken, then close a moment later: a
        stream the client sent meanwhile is not taken (the client retries it),
        and a close at once could reset the connection under the GOAWAY. The
        answers' last bytes go first (the engine would put its GOAWAY before
        them, and h2, httpx's engine, takes nothing after a GOAWAY)."""
        self._write_now()
        if self.engine.queued():
            self.goaway_due = True  # (when the client's window has taken the rest)
            return
        self.goaway_due = False
        self.engine.go_away(h2.ErrorCode.NO_ERROR)
        self._write_now()
        if self.idle:
            self._busy()
        self.deadline = self.server.loop.time() + min(STOP_IDLE_GRACE, self.cfg.keep_alive)
        self.on_deadline = self._close

    def _calm_down(self, reason: str) -> None:
        """A budget spent: one line, a GOAWAY (ENHANCE_YOUR_CALM), the close."""
        if self.closing:
            return
        log.warning("HTTP/2 connection from %s closed: %s", self._client_host(), reason)
        self.engine.terminate(h2.ErrorCode.ENHANCE_YOUR_CALM)
        words = self.engine.outgoing() or self.engine.last_words(
            h2.ErrorCode.ENHANCE_YOUR_CALM, self.budget.last_stream)
        self.transport.write(words)
        self._close()

    def _close(self) -> None:
        if self.closed or self.closing:
            return
        self.closing = True
        if self.idle:
            self._busy()
        self.deadline = None
        self.transport.close()

    def _client_host(self) -> str:
        return self.client[0] if self.client else "-"
