"""One HTTP/2 connection of the asgi worker: an asyncio Protocol that only
carries bytes between the engine and the streams' ASGI cycles.

It takes over a connection `HttpProtocol` (workers.asgi.connection) opened:
when TLS's ALPN chose "h2", when a cleartext connection began with the
HTTP/2 preface (h2c by prior knowledge), or when an HTTP/1.1 request asked
to upgrade (`Upgrade: h2c`); who the peer is came before (the preamble),
and is kept.

Bytes read are counted against the flood budgets (`hybrid.protocol.flood`)
before the engine parses them; a spent budget, or a client that breaks
HTTP/2, ends the connection with a GOAWAY. A stream's header list becomes a
`Request` by the core's rules (`hybrid.protocol.stream_request`), or its
error is answered on that stream alone. What the engine queues to send is
written once per turn of the loop, so that many streams answered in one
turn go out in one write.

Streams beyond --http2-max-concurrent-streams are refused by the engine
(REFUSED_STREAM): the client may retry them. --limit-concurrency counts a
stream as a request (503), --worker-connections counts the connection. A
connection with no stream open is idle: it is closed (GOAWAY) after
--keep-alive, and may make room for a new one at --worker-connections. A
stopping worker announces the end at once (a GOAWAY that lets the streams
on their way in), names the last stream it takes a moment later, and closes
once those are answered, within --graceful-timeout.

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable
from typing import Any

from hybrid import logs
from hybrid.logs import error_log as log
from hybrid.protocol import ProtocolError, Request, error_body
from hybrid.protocol import persistence
from hybrid.protocol.flood import Flood, FloodBudget
from hybrid.protocol.stream_request import (
    PREFACE,
    BodyCount,
    declared_length,
    extended_protocol,
    stream_request,
    upgraded_request,
)
from hybrid.workers.asgi.flow import FlowControl
from hybrid.workers.asgi.h2 import engine as h2
from hybrid.workers.asgi.h2.lifetime import H2Host, H2Lifetime
from hybrid.workers.asgi.h2.stream import StreamCycle, answer_with_error
from hybrid.workers.asgi.h2.tunnel import StreamTunnel
from hybrid.workers.asgi.http_cycle import http_scope, resolved_peer
from hybrid.workers.asgi.websocket import WebSocketCycle



class H2Connection(H2Lifetime):
    """One HTTP/2 connection: bytes to the engine, streams to their cycles."""

    def __init__(self, server: H2Host, transport: asyncio.Transport, facts: Any,
                 settings: h2.H2Settings) -> None:
        super().__init__()
        self.server = server
        self.cfg = server.cfg
        self.transport = transport
        self.flow = FlowControl(transport)
        # Who is at the other end, as the connection's preamble learnt it.
        self.client: tuple[str, int] | None = facts.client
        self.peer_trusted: bool = facts.peer_trusted
        self.address: tuple[str, int | None] | None = facts.address
        self.scheme: str = facts.scheme
        self.tls: dict[str, Any] | None = facts.tls
        self.base_context = contextvars.copy_context()
        self.engine = h2.Engine(settings)
        # Every way in has the client's preface come first: the engine checks it.
        self.budget = FloodBudget(settings.max_concurrent_streams,
                                  max(settings.max_header_list_size, server.limits.head),
                                  skip=len(PREFACE))
        self.streams: dict[int, StreamCycle] = {}
        self.bodies: dict[int, BodyCount] = {}
        self.skipped: dict[int, int] = {}  # streams answered before their body ended
        self.client_resets: set[int] = set()  # streams the client reset, until they close
        self.tunnels: dict[int, StreamTunnel] = {}  # streams carrying WebSockets
        self.window_waiters: dict[int, asyncio.Future[None]] = {}

    # --- starting ----------------------------------------------------------------------

    def begin(self, data: bytes) -> None:
        """The client's preface came (TLS, or h2c by prior knowledge): our SETTINGS
        go out, then `data`, what was read so far, is taken."""
        self.engine.start()
        self._idle_from_now(self.cfg.header_timeout)
        self.flush()
        if data:
            self._take(data)  # (counted in the stats as the HTTP/1.1 protocol read it)

    def begin_upgraded(self, settings_payload: bytes, request: Request, data: bytes) -> None:
        """An HTTP/1.1 request asked for h2c and was answered 101: it is stream 1,
        whose body (none) is complete; `data` is what followed it."""
        self.engine.start_upgraded(settings_payload, request.method == "HEAD")
        self.flush()
        self._open_stream(1, upgraded_request(request), end_stream=True)
        if data:
            self._take(data)

    # --- transport callbacks ---------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.server.stats.received(len(data))
        self._take(data)

    def _take(self, data: bytes) -> None:
        """Bytes read: to the budgets, then the engine, then the streams."""
        server = self.server
        try:
            self.budget.scan(data, server.loop.time())
        except Flood as flood:
            self._calm_down(str(flood))
            return
        try:
            events = self.engine.receive(data)
        except h2.DenialOfServiceError as exc:
            self._calm_down(f"the engine refused it: {exc}")
            return
        except h2.EngineError as exc:
            log.debug("HTTP/2 connection from %s closed: %s", self._client_host(), exc)
            self._write_now()
            self._close()
            return
        for event in events:
            if self.closing:
                return  # (a budget spent, or the connection failed: the rest is moot)
            self._route(event)
        if self.budget.retiring and not self.stopping:
            self.shut_down(abort=False)  # (a graceful GOAWAY; the client reconnects)
        if self.budget.in_header_block != (self.on_deadline == self._header_stalled):
            self._time_header_block()
        self.flush()

    def _time_header_block(self) -> None:
        """A header block split across frames is --header-timeout's, as an HTTP/1.1
        head is: nothing else may come on the connection until it ends."""
        if self.budget.in_header_block:
            self.deadline = self.server.loop.time() + self.cfg.header_timeout
            self.on_deadline = self._header_stalled
        else:
            self.deadline, self.on_deadline = None, self.close_idle
            self._maybe_idle()

    def _header_stalled(self) -> None:
        log.debug("HTTP/2 connection from %s closed: a header block stalled past "
                  "--header-timeout", self._client_host())
        self.engine.terminate(h2.ErrorCode.PROTOCOL_ERROR)
        self._write_now()
        self._close()

    def eof_received(self) -> bool:
        return False  # (HTTP/2 has no half-close: the client is gone)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        server = self.server
        server.connections.discard(self)
        if self.idle:
            self._busy()
        server.connection_ended()
        self.deadline = None
        self.flow.connection_lost()
        for waiter in self.window_waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        for cycle in list(self.streams.values()):
            cycle.stream_reset()
        for tunnel in list(self.tunnels.values()):
            tunnel.stream_over()

    # --- events from the engine -----------------------------------------------------

    def _route(self, event: h2.Event) -> None:
        # Exact types, most common first (type() is cheaper than isinstance()).
        if type(event) is h2.RequestReceived:
            self._on_request(event.stream_id, event.headers, event.end_stream)
        elif type(event) is h2.DataReceived:
            self._on_data(event.stream_id, event.data, event.end_stream)
        elif type(event) is h2.WindowUpdated:
            self._window_opened(event.stream_id)
        elif type(event) is h2.TrailersReceived:
            self._on_body_end(event.stream_id)
        elif type(event) is h2.StreamReset:
            self._on_reset(event.stream_id)
        elif type(event) is h2.StreamClosed:
            self._on_closed(event)
        elif type(event) is h2.ConnectionClosed:
            self._write_now()
            self._close()

    def _on_request(self, stream_id: int, fields: Iterable[tuple[bytes, bytes]],
                    end_stream: bool) -> None:
        if self.stopping and self.server.loop.time() >= self.refuse_from:
            self.engine.reset(stream_id, h2.ErrorCode.REFUSED_STREAM)  # (safe to retry)
            return
        if self.open_streams >= self.engine.settings.max_concurrent_streams:
            # Past the limit we announced (RFC 9113 section 5.1.2): this stream alone
            # is refused, and the reset counts as one the client caused.
            self.engine.reset(stream_id, h2.ErrorCode.REFUSED_STREAM)
            self._count_server_reset()
            return
        try:
            request = stream_request(fields, self.server.limits)
        except ProtocolError as error:
            self._refuse_stream(stream_id, error, end_stream)
            return
        if request.method == "CONNECT" and extended_protocol(fields) == b"websocket":
            self._open_tunnel(stream_id, request)
            return
        self._open_stream(stream_id, request, end_stream)

    def _count_server_reset(self) -> bool:
        """A stream the client made the server reset (MadeYouReset's lever); False
        when that spent the budget (the connection is going away)."""
        try:
            self.budget.server_reset(self.server.loop.time())
        except Flood as flood:
            self._calm_down(str(flood))
            return False
        return True

    def _open_stream(self, stream_id: int, request: Request, end_stream: bool) -> None:
        cycle = StreamCycle(self, stream_id, request)
        self.streams[stream_id] = cycle
        if self.idle or self.deadline is not None:
            self._busy()
        if end_stream:
            cycle.body_complete()
        else:
            self.bodies[stream_id] = BodyCount(declared_length(request),
                                               self.server.limits.body)
        server = self.server
        if server.limit_concurrency and server.in_flight >= server.limit_concurrency:
            cycle.refuse(503, "too many requests in flight; try again")
            return
        server.in_flight += 1
        cycle.task = self.base_context.run(server.loop.create_task, cycle.run(server.app))

    def _open_tunnel(self, stream_id: int, request: Request) -> None:
        """An extended CONNECT for a WebSocket (RFC 8441): the stream carries it."""
        tunnel = StreamTunnel(self, stream_id)
        websocket = WebSocketCycle(tunnel, request,
                                   http_scope(tunnel, request, *resolved_peer(tunnel, request)))
        error = websocket.handshake_error()
        if error is not None:
            status, detail, headers = error
            logs.rejected(self._client_host(), ProtocolError(status, detail))
            tunnel.refuse(status, detail, headers)
            return
        tunnel.websocket = websocket
        self.tunnels[stream_id] = tunnel
        if self.idle or self.deadline is not None:
            self._busy()
        server = self.server
        server.in_flight += 1
        self.base_context.run(server.loop.create_task, websocket.run(server.app))

    def tunnel_done(self, tunnel: StreamTunnel) -> None:
        if self.tunnels.pop(tunnel.stream_id, None) is not None:
            self._maybe_idle()

    def _refuse_stream(self, stream_id: int, error: ProtocolError, end_stream: bool) -> None:
        """A request the core refused: its error answers it, on its stream alone,
        and counts as a reset the client caused (MadeYouReset's lever)."""
        logs.rejected(self._client_host(), error)
        self.server.stats.refused(error.status, len(error_body(error.status, error.detail)),
                                  http2=True)
        if not self._count_server_reset():
            return
        answer_with_error(self.engine, stream_id, error.status, error.detail,
                          head_request=False)
        if not end_stream:
            self.decline_body(stream_id)

    def _on_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self.tunnels:
            tunnel = self.tunnels.get(stream_id)
            if tunnel is not None:
                tunnel.data_received(data)
                if end_stream:
                    tunnel.stream_over()
                return
        cycle = self.streams.get(stream_id)
        if cycle is None or cycle.complete or cycle.disconnected:
            self._skip(stream_id, len(data), end_stream)  # answered already: dropped
            return
        count = self.bodies.get(stream_id)
        if count is not None:
            try:
                count.arrived(len(data))
                if end_stream:
                    count.ended()
            except ProtocolError as error:
                self.engine.credit(stream_id, len(data))
                self.bodies.pop(stream_id, None)
                cycle.body_failed(error)
                return
        if data:
            cycle.body_arrived(data)
        if end_stream:
            self._on_body_end(stream_id)

    def decline_body(self, stream_id: int) -> None:
        """Answered before its body ended: the rest is credited and dropped as it
        comes, within the skip budget HTTP/1.1 has (`persistence.may_keep_skipping`);
        past it the stream is reset (NO_ERROR: RFC 9113 section 8.1's way to say
        the rest is not needed). A reset at once would be allowed too, but clients
        (httpx) take it for a failed answer."""
        self.bodies.pop(stream_id, None)
        self.skipped.setdefault(stream_id, 0)

    def _skip(self, stream_id: int, size: int, end_stream: bool) -> None:
        self.engine.credit(stream_id, size)
        if end_stream:
            self.bodies.pop(stream_id, None)
            if self.skipped.pop(stream_id, None) is not None:
                self._maybe_idle()
            return
        skipped = self.skipped.get(stream_id)
        if skipped is None:
            return
        skipped += size
        if persistence.may_keep_skipping(skipped):
            self.skipped[stream_id] = skipped
        else:
            del self.skipped[stream_id]
            self.engine.reset(stream_id, h2.ErrorCode.NO_ERROR)
            self._maybe_idle()

    def _on_body_end(self, stream_id: int) -> None:
        count = self.bodies.pop(stream_id, None)
        cycle = self.streams.get(stream_id)
        if cycle is None or cycle.body_done:
            return
        if count is not None:
            try:
                count.ended()
            except ProtocolError as error:
                cycle.body_failed(error)
                return
        cycle.body_complete()

    def _on_reset(self, stream_id: int) -> None:
        if stream_id in self.streams or stream_id in self.tunnels or stream_id in self.skipped:
            self.client_resets.add(stream_id)  # (until it closes: not for a closed one)
        tunnel = self.tunnels.get(stream_id)
        if tunnel is not None:
            tunnel.stream_over()
        self.bodies.pop(stream_id, None)
        if self.skipped.pop(stream_id, None) is not None:
            self._maybe_idle()
        cycle = self.streams.get(stream_id)
        if cycle is not None:
            cycle.stream_reset()
        self._window_opened(stream_id)

    def _on_closed(self, event: h2.StreamClosed) -> None:
        stream_id = event.stream_id
        self.bodies.pop(stream_id, None)
        self.skipped.pop(stream_id, None)
        reset_by_client = stream_id in self.client_resets
        self.client_resets.discard(stream_id)
        if not self.engine.was_reset_here(stream_id) and event.error_code \
                and not reset_by_client:
            # The engine reset a stream the client broke: MadeYouReset's lever.
            if not self._count_server_reset():
                return
        cycle = self.streams.get(stream_id)
        if cycle is not None and not cycle.ended:
            cycle.stream_reset()
            self._window_opened(stream_id)
        tunnel = self.tunnels.get(stream_id)
        if tunnel is not None:
            tunnel.stream_over()
            self._window_opened(stream_id)

    # --- from the streams ----------------------------------------------------------------

    def response_done(self, cycle: Any, keep_alive: bool) -> None:
        stream_id = cycle.stream_id
        self.streams.pop(stream_id, None)
        unread = cycle.unread()
        if unread:  # (credits the connection's window even if the stream is gone)
            self.engine.credit(stream_id, unread)
        self._window_opened(stream_id)
        self._maybe_idle()

    def credit(self, stream_id: int, size: int) -> None:
        self.engine.credit(stream_id, size)
        self.flush()

    async def window_opens(self, stream_id: int, timeout: float) -> bool:
        """Wait until the stream's queue has gone (False: not within `timeout`
        seconds in all, however the client opens its window meanwhile: a byte a
        second is no way to keep a stream alive)."""
        loop = self.server.loop
        deadline = loop.time() + timeout if timeout else None
        while self.engine.queued(stream_id) > 0 and not self.closed:
            waiter = self.window_waiters[stream_id] = loop.create_future()
            try:
                await asyncio.wait_for(waiter, deadline - loop.time() if deadline else None)
            except asyncio.TimeoutError:
                return False
            finally:
                self.window_waiters.pop(stream_id, None)
        return True

    def write(self, data: bytes) -> None:
        """(Streams write through the engine; nothing is written here directly.)"""

    async def drain(self) -> None:
        await self.flow.drain()

    def input_backlogged(self) -> None:
        """(Flow control bounds a stream's body: the client waits for its window.)"""

    def input_consumed(self) -> None:
        """(See input_backlogged.)"""

    # --- idleness, stopping, closing ----------------------------------------------------
