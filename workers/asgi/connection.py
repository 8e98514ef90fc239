"""One HTTP/1.1 connection of the asgi worker: an asyncio Protocol that
only moves bytes.

It feeds what it reads to the shared HTTP core (`hybrid.protocol`) and
routes the events to cycles, one per request, answered strictly in arrival
order (pipelining): `RequestCycle`s for an ASGI app, `WsgiCycle`s (the
direct path) for a WSGI app, or hands the connection to a `WebSocketCycle`.
`FlowControl` pauses reading while a cycle is behind (a body waits
unconsumed, or MAX_PIPELINED requests wait) and makes `send()` wait while
the write buffer is full. What HTTP decides is asked of the core's
connection state: whether an unread body may be skipped (then it is, so the
connection stays alive), and which 408 a timeout gets.

`HttpProtocol` keeps the request path (the transport's callbacks, the
routing, a request's start and end) and builds on two bases that hold what
runs rarely: `ConnectionPreamble` (workers.asgi.preamble: who the peer is,
TLS, the PROXY header) above `ConnectionLifetime` (workers.asgi.lifetime:
the deadline, idleness, half-close, the lingering close, the stop).
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol, cast

from hybrid import logs
from hybrid.protocol import persistence
from hybrid.protocol import (
    STOP_IDLE_GRACE,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    Limits,
    RequestParser,
    error_body,
    error_response,
    switching_protocols,
)
from hybrid.protocol.stream_request import PREFACE, h2c_settings
from hybrid.workers.asgi.flow import FlowControl
from hybrid.workers.asgi.http_cycle import Http1Cycle, RequestCycle, http_scope, resolved_peer
from hybrid.workers.asgi.idle import IdleConnections
from hybrid.workers.asgi.lifetime import ServedConnection
from hybrid.workers.asgi.preamble import ConnectionPreamble, PreambleHost
from hybrid.workers.asgi.websocket import WebSocketCycle, is_websocket
from hybrid.workers.asgi.wsgi_cycle import WsgiCycle

if TYPE_CHECKING:
    from hybrid.bridge import WSGIBridge
    from hybrid.typing import ASGIApp
    from hybrid.workers.asgi.h2.connection import H2Connection
    from hybrid.workers.asgi.h2.engine import H2Settings

MAX_PIPELINED: Final = 16  # requests parsed ahead of the one being answered
H2C_SWITCH: Final = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"


class Host(PreambleHost, Protocol):
    """What a connection reads of its worker, beyond what its cycles do."""

    app: ASGIApp
    direct_wsgi: WSGIBridge | None  # a WSGI app's bridge: its HTTP/1.1 requests skip ASGI
    connections: set[ServedConnection]
    idle: IdleConnections[ServedConnection]  # kept alive and waiting, oldest first
    limits: Limits
    limit_concurrency: int  # 0: no limit
    opening: set[HttpProtocol]  # connections accepted here, not made yet (TLS: handshaking)
    alive: bool
    descriptor_watch: int  # a connection's descriptor from which the worker is near a bound
    connection_watch: int  # as many connections, from which it is
    h2_settings: H2Settings | None  # what HTTP/2 clients are told; None: no HTTP/2 here
    h2c_prior_knowledge: bool  # a cleartext connection may open with the HTTP/2 preface
    h2c_upgrade: bool  # an HTTP/1.1 request may ask for h2c (Upgrade: h2c)

    def near_a_bound(self, descriptor: int) -> None:
        """Connections come close to --worker-connections or to the descriptor
        limit: the listeners accept themselves (see workers.asgi.listener)."""

    def connection_ended(self) -> None:
        """A connection closed: a listener paused at the bound may go on."""

    def make_room(self) -> bool:
        """At --worker-connections: close the longest-idle keep-alive connection;
        False when none is idle."""


class HttpProtocol(ConnectionPreamble[Host]):
    """One HTTP/1.1 connection: bytes to the core, events to request cycles."""

    base_context: contextvars.Context  # what each request's task starts from a copy of

    def __init__(self, server: Host) -> None:
        super().__init__(server)
        self.parser = RequestParser(server.limits)
        self.active: Http1Cycle | None = None  # the one being answered
        self.receiving: Http1Cycle | None = None  # the one whose body arrives now
        self.waiting: deque[Http1Cycle] = deque()  # pipelined, not started
        self.pending_error: ProtocolError | None = None
        self.websocket: WebSocketCycle | None = None
        self._preface = b""  # the start of an HTTP/2 preface, under h2c by prior knowledge

    # --- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is no subclass)
        self.base_context = contextvars.copy_context()
        self.flow = FlowControl(self.transport)
        self.server.connections.add(self)
        self.server.opening.discard(self)
        sock = transport.get_extra_info("socket")
        server = self.server
        if sock is not None and ((descriptor := sock.fileno()) >= server.descriptor_watch
                                 or len(server.connections) >= server.connection_watch):
            server.near_a_bound(descriptor)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head_time = self._meet_peer(transport, sock)
        self._arm_timer(head_time, self._on_head_timeout)
        if len(self.server.connections) > self.cfg.worker_connections and self.server.alive \
                and not self.server.make_room():
            # Past the bound (libuv accepted a burst at once), with none idle: refuse.
            self._reject(ProtocolError(503, "too many connections; try again"))
        elif self.tls is not None and server.h2_settings is not None and \
                transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2":
            self._switch_to_h2(b"")
        elif not self.server.alive:
            self.shut_down(abort=False)  # (opened during a stop: a fresh one's grace)

    def data_received(self, data: bytes) -> None:
        self.server.stats.received(len(data))
        if self.awaiting_proxy_header:
            data = self._take_proxy_header(data)
            if not data:
                return
        if self.fresh and self.server.h2c_prior_knowledge:
            data = self._h2c_preface(data)
            if not data:
                return
        self.fresh = False
        divert = self.divert
        if divert is not None:
            divert(data)
            return
        for event in self.parser.feed(data):
            self._route(event)
        if self.idle and self.parser.in_message:
            # Part of the next head came: from now on it has --header-timeout.
            self._busy()
            self._arm_timer(self.cfg.header_timeout, self._on_head_timeout)

    def eof_received(self) -> bool:
        if self.websocket is not None or self.lingering:
            return False  # connection_lost tells the app; a lingering close is over
        self.peer_done = True
        for event in self.parser.feed_eof():
            self._route(event)
        return self._stays_open_for_answers()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser.release()
        self.server.connections.discard(self)
        if self.idle:
            self._busy()
        self.server.connection_ended()
        self._cancel_timer()
        self.flow.connection_lost()
        for cycle in (self.active, self.receiving, *self.waiting, self.websocket):
            if cycle is not None:
                cycle.client_gone()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.active is None and self.waiting and not self.closed:
            self._carry_on()  # the pipelined request held back below

    # --- events from the parser ------------------------------------------------------------

    def _route(self, event: Event) -> None:
        # Exact types, most common first (type() is cheaper than isinstance()).
        if type(event) is Request:
            if self.lingering:
                return  # closing: what the client sent after that is dropped
            self.deadline = None
            if self.idle:
                self._busy()
            if event.upgrade and self.active is None and self.websocket is None:
                if is_websocket(event):
                    self._start_websocket(event)
                    return
                if self.server.h2c_upgrade and (payload := h2c_settings(event)) is not None:
                    self._upgrade_to_h2(event, payload)
                    return
            direct = self.server.direct_wsgi
            cycle = self.receiving = RequestCycle(self, event) if direct is None \
                else WsgiCycle(self, event, direct)
            if self.active is None:
                self._start(cycle)
            else:
                self.waiting.append(cycle)
                if len(self.waiting) >= MAX_PIPELINED:
                    self.flow.pause_reading()
        elif type(event) is EndOfMessage:
            receiving = self.receiving
            if receiving is not None:  # (None: the end of a WebSocket handshake request)
                receiving.body_complete()
                if receiving.complete and not self.lingering:  # its skipped body ended
                    self.receiving = None
                    self._carry_on()
        elif type(event) is Data:
            receiving = self.receiving
            if receiving is not None:
                if receiving.complete:
                    self._skip(len(event.data))
                else:
                    receiving.body_arrived(event.data)
        elif type(event) is ProtocolError:
            receiving = self.receiving
            if receiving is not None and not receiving.body_done:
                if receiving.complete:  # answered already, its body being skipped: close
                    self._close()
                    return
                if receiving is self.active:
                    receiving.body_failed(event)  # its answer, or a cut, and the close
                    return
                # A pipelined request whose body failed before its turn never runs:
                # the error is answered in its place.
                self.waiting.remove(receiving)
                self.receiving = None
            if self.active is None:
                self._reject(event)
            else:
                self.pending_error = event  # answered after the requests before it
        elif type(event) is ConnectionClosed and self.active is None:
            self._close()

    # --- HTTP/2 ------------------------------------------------------------------------

    def _h2c_preface(self, data: bytes) -> bytes:
        """A cleartext connection's first bytes, under h2c by prior knowledge: b""
        when they are (or may yet be, split across reads) the HTTP/2 preface, and
        taken here; else all the bytes read so far, for HTTP/1.1's parser."""
        received = self._preface + data
        self._preface = b""
        if received[:len(PREFACE)] != PREFACE[:len(received)]:
            return received  # (HTTP/1.1 after all: the parser judges it)
        if len(received) < len(PREFACE):
            self._preface = received  # the rest is on its way
            return b""
        self.fresh = False
        self._switch_to_h2(received)
        return b""

    def _switch_to_h2(self, data: bytes) -> None:
        """Hand the connection to HTTP/2 (TLS's ALPN chose it, or the client opened
        with its preface): `data` is what was read so far."""
        h2 = self._hand_over()
        h2.begin(data)
        if not self.server.alive:
            h2.shut_down(abort=False)  # (it came during a stop)

    def _upgrade_to_h2(self, request: Request, settings_payload: bytes) -> None:
        """An HTTP/1.1 request asked for h2c: 101, then it is answered as stream 1."""
        self.transport.write(H2C_SWITCH)
        h2 = self._hand_over()
        h2.begin_upgraded(settings_payload, request, self.parser.take_unparsed())
        if not self.server.alive:
            h2.shut_down(abort=False)

    def _hand_over(self) -> H2Connection:
        # Imported here: HTTP/2's engine is an extra (h2_settings says it is installed).
        from hybrid.workers.asgi.h2.connection import H2Connection

        server = self.server
        assert server.h2_settings is not None
        h2 = H2Connection(server, self.transport, self, server.h2_settings)
        self._cancel_timer()
        if self.idle:
            self._busy()
        server.connections.discard(self)
        server.connections.add(h2)
        self.closed = True  # (this protocol is done with the transport)
        self.parser.release()
        self.transport.set_protocol(h2)
        return h2

    def _start_websocket(self, request: Request) -> None:
        websocket = WebSocketCycle(self, request,
                                   http_scope(self, request, *resolved_peer(self, request)))
        error = websocket.handshake_error()
        if error is not None:
            status, detail, headers = error
            self._reject(ProtocolError(status, detail), headers)
            return
        self.websocket = websocket
        server = self.server
        server.in_flight += 1
        self.base_context.run(server.loop.create_task, websocket.run(server.app))

    def accept_websocket(self, websocket: WebSocketCycle,
                         headers: list[tuple[bytes, bytes]]) -> bytes:
        """The app accepted: a 101, and from now on the bytes are WebSocket frames;
        those that followed the request are returned."""
        self.write(switching_protocols(headers))
        self._cancel_timer()
        self.divert = websocket.data_received
        return self.parser.take_unparsed()

    def _start(self, cycle: Http1Cycle) -> None:
        self.active = cycle
        server = self.server
        if server.limit_concurrency and server.in_flight >= server.limit_concurrency:
            cycle.refuse(503, "too many requests in flight; try again")
            return
        server.in_flight += 1  # counted now: tasks started in this turn of the loop run later
        # From the connection's context, not the previous request's (a pipelined or
        # kept-alive request starts from inside its send(), with its ContextVars,
        # an executor asgiref bound...).
        cycle.begin(self.base_context)

    def response_done(self, cycle: Http1Cycle, keep_alive: bool) -> None:
        """`cycle` finished its response; go on with the next one, or wait, or close."""
        if cycle.request.upgrade and not self.closed:
            # An Upgrade answered as plain HTTP: the connection stays HTTP.
            for event in self.parser.resume():
                self._route(event)
        self.active = None
        if self.closed:
            return
        if not keep_alive or cycle.body_error is not None:
            self._close()
            return
        if not cycle.body_done:
            # Answered before the body came (a 401 to an upload, say): skip the rest
            # of it, if it is short and timely, rather than lose the connection.
            self.dropped = cycle.buffered  # counted as skipped, as may_persist() did
            cycle.body.clear()
            self._arm_timer(self.cfg.body_timeout, self._close)
            self.flow.resume_reading()
            return
        if self.receiving is cycle:
            self.receiving = None
        if not self.waiting and self.pending_error is None and self.parser.failed:
            self._close()  # the client closed its side after the last request
            return
        self._carry_on()

    def _carry_on(self) -> None:
        """The last response is done and its request read: the next one, or wait.

        Also called while a read's events are being routed (a skipped body
        ended): the events after it, an error among them, are routed next.
        """
        if self.waiting:
            if self.flow.write_paused:
                return  # a client that does not read its answers gets no more of them
            self._start(self.waiting.popleft())
            self.flow.resume_reading()
        elif self.pending_error is not None:
            self._reject(self.pending_error)
        else:
            if not self.parser.in_message:
                self.idle = True
                self.server.idle.add(self)
                if self.server.alive:
                    self._arm_timer(self.cfg.keep_alive, self._close)
                else:
                    self._arm_timer(min(STOP_IDLE_GRACE, self.cfg.keep_alive), self._end_idle)
            else:
                self._arm_timer(self.cfg.header_timeout, self._on_head_timeout)
            if self.flow.read_paused:
                self.flow.resume_reading()

    def _reject(self, error: ProtocolError, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        logs.rejected(self.client[0] if self.client else "", error)
        self.server.stats.refused(error.status, len(error_body(error.status, error.detail)))
        self.write(error_response(error.status, error.detail, headers))
        self._close()

    def _skip(self, size: int) -> None:
        self.dropped += size
        if not persistence.may_keep_skipping(self.dropped):
            self._close()

    # --- helpers ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and not self.lingering:
            self.transport.write(data)
            if self.peer_done:  # (a write would tell a client gone from one that waits)
                self._arm_timer(self.cfg.keep_alive, self._on_peer_silent)

    async def drain(self) -> None:
        await self.flow.drain()

    def input_consumed(self) -> None:
        if len(self.waiting) < MAX_PIPELINED:
            self.flow.resume_reading()

    def input_backlogged(self) -> None:
        self.flow.pause_reading()

    def _on_head_timeout(self) -> None:
        if self.active is None:
            self._reject(self.parser.timeout_error())

