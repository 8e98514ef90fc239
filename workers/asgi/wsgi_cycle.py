"""One HTTP/1.1 request to a WSGI app on the asgi worker, called directly on
the threads of the app's bridge: the direct path.

When the worker's app is WSGI, its HTTP/1.1 requests need no ASGI between
the connection and the app. `WsgiCycle` builds the environ from the parsed
`Request` (`build_environ`, as the sync and thread classes build it), and a
thread of the app's `WSGIBridge` runs `hybrid.wsgi.run` with the cycle as
its responder. The answer's pieces come back to the loop through a
`hybrid.handoff.Handoff` (an answer in one piece: one wake-up of the loop),
and the loop frames them with the core's `ResponseFramer`, deciding whether
the connection persists, as `RequestCycle` does for an ASGI app. No task
runs per request unless the request has a body to take on the loop: then
`receive()` paces it (100 Continue, --body-timeout, --body-min-rate) as it
does for an ASGI app.

The bridge still serves the app's HTTP/2 streams, its WebSockets (refused)
and its lifespan. Both paths share the bridge's threads, its count of calls
given up (--request-timeout) and its gather budget: a short body is gathered
on the loop before a thread is taken, as the bridge gathers it (see
hybrid.bridge), so a client that trickles its upload costs a connection,
not a thread.

Thread boundaries: `begin`, `_on_posted` and the HttpCycle hooks run on the
loop; `_call`, `_read_body` and the `_Responder` on a pool thread. They
share the handoff alone (the answer one way, the body the other).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from hybrid.bridge import WSGIBridge, announced_body
from hybrid.handoff import Handoff
from hybrid.logs import error_log as log
from hybrid.protocol import LocalProtocolError, ProtocolError, Request
from hybrid.wsgi import run
from hybrid.wsgi_environ import build_environ
from hybrid.typing import Message
from hybrid.wsgi_input import EmptyInput, FileWrapper, Input, InputStream
from hybrid.workers.asgi.http_cycle import Http1Cycle, HttpChannel


_Head = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, reason, fields


class _Piece(NamedTuple):
    """A piece of the app's answer, posted by the thread."""

    head: _Head | None  # None: the head went with an earlier piece
    data: bytes
    last: bool


class _Failure(NamedTuple):
    """The app failed before its head was due: this error's page goes instead."""

    status: int
    detail: str


class _BodyWanted(NamedTuple):
    """The thread reads the body and has none left: the loop is to take more."""


_BODY_WANTED: Final = _BodyWanted()

_Item = _Piece | _Failure | _BodyWanted | None  # None: the call is over


class WsgiCycle(Http1Cycle):
    """One HTTP/1.1 request whose WSGI app runs on a thread of `bridge`."""

    __slots__ = ("bridge", "handoff", "gathered", "counted", "to_ack", "helper", "drainer")

    def __init__(self, channel: HttpChannel, request: Request, bridge: WSGIBridge) -> None:
        super().__init__(channel, request)
        self.bridge = bridge
        self.handoff: Handoff[_Item] = Handoff(channel.server.loop)
        self.gathered = 0  # body bytes taken before the app ran: counted in gather_left
        self.counted = False  # counted in the worker's work in flight
        self.to_ack = 0  # streamed bytes written while the transport is full
        self.helper: asyncio.Task[None] | None = None  # takes body for the thread
        self.drainer: asyncio.Task[None] | None = None  # waits out a full transport

    # --- on the loop -----------------------------------------------------------------

    def begin(self, context: contextvars.Context) -> None:
        bridge = self.bridge
        self.counted = True
        has_body, gather = announced_body(self.request.headers, bridge.gather_body)
        if not has_body:
            self._call_soon(context, EmptyInput())
        elif gather and bridge.gather_left > 0:
            self.helper = self.channel.server.loop.create_task(self._gather(gather, context))
        else:
            self._call_soon(context, InputStream(self._read_body))

    def _call_soon(self, context: contextvars.Context, wsgi_input: Input) -> None:
        """Queue the app's call for a pool thread, in a copy of `context`."""
        channel = self.channel
        server = channel.server
        address = channel.address
        client = self.client
        environ = build_environ(
            self.request, wsgi_input,
            (address[0], "" if address[1] is None else str(address[1])) if address else ("", ""),
            (client[0], str(client[1])) if client else ("", "0"),
            self.scheme, server.root_path, True, channel.tls)
        own = context.copy()  # (a call given up may still run in it)
        self.bridge.submit(own.run, self._call, environ)

    async def _gather(self, bound: int, context: contextvars.Context) -> None:
        """Take the body, or its first `bound` bytes, before a thread is taken,
        counting what arrives against the bridge's budget (see hybrid.bridge)."""
        bridge = self.bridge
        while not self.handoff.body_done and self.gathered < bound and bridge.gather_left > 0:
            size = await self._take_body()
            if size is None:  # the client left, or its body failed (answered already)
                self._call_ended()
                return
            if not self.counted:
                return  # given up meanwhile, should a cancel have been lost: no call
            self.gathered += size
            bridge.gather_left -= size
        self._call_soon(context, InputStream(self._read_body))

    async def _take_body(self) -> int | None:
        """Receive one piece of the body for the thread: its size, or None when the
        client left (or its body failed)."""
        return self.handoff.body_received(await self.receive())

    async def _fetch(self) -> None:
        """The thread asked for more of the body."""
        if not self.handoff.gone:
            await self._take_body()
        self.handoff.answered()

    def _on_posted(self) -> None:
        """The thread posted: write its pieces, fetch the body it wants, end the call."""
        for item in self.handoff.take(at_once=True):
            if item is None:
                self._call_ended()
                continue
            try:
                if type(item) is _Piece:
                    self._write(item)
                elif type(item) is _Failure:
                    self._fail(None if self.disconnected
                               else ProtocolError(item.status, item.detail))
                else:
                    self.helper = self.channel.server.loop.create_task(self._fetch())
            except Exception:  # a bug of ours: the answer fails, the call still ends
                log.exception("Answering %s failed", self.request.summary())
                self.handoff.leave()
                self._fail()

    def _write(self, piece: _Piece) -> None:
        if self.complete:
            return  # the answer was cut (timed out, or its body failed)
        if piece.head is not None:
            try:
                self._frame_head(*piece.head)
            except LocalProtocolError as exc:  # a head the core may not send
                log.error("Invalid response to %s: %s", self.request.summary(), exc)
                self.handoff.leave()
                self._fail()
                return
        self._write_body(piece.data, piece.last)
        if piece.last:
            # (A last piece is posted with the end of the call: the call is over,
            # and a pipelined request the answer's end starts finds it so.)
            self._release()
            self._finish(self.framer.keep_alive)
        elif piece.data:
            self._acknowledge(len(piece.data))

    def _acknowledge(self, size: int) -> None:
        """Streamed bytes were written: the thread may go on, once the transport
        is not full (a client that does not read holds the thread here)."""
        if not self.channel.flow.write_paused and self.drainer is None:
            self.handoff.acked(size)
            return
        self.to_ack += size
        if self.drainer is None:
            self.drainer = self.channel.server.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self.channel.drain()
        finally:
            self.drainer = None
            size, self.to_ack = self.to_ack, 0
            self.handoff.acked(size)

    def _call_ended(self) -> None:
        """The thread is done with the request (or it never reached one)."""
        if not self.complete:
            self._fail()  # the app's answer was cut, or the client left
        self._release()

    def _release(self) -> None:
        """No longer the worker's work in flight: once, when the call ends or is
        given up."""
        if self.counted:
            self.counted = False
            self.channel.server.in_flight -= 1
            self.bridge.gather_left += self.gathered  # (held until the app is done with them)
            self.gathered = 0

    def time_out(self) -> bool:
        if not self.counted:
            return False
        self.timed_out = True
        if self.handoff.give_up():
            self.bridge.abandon()
        if self.helper is not None:
            self.helper.cancel()
        self._timed_out()
        self._release()
        return True

    def client_gone(self) -> None:
        super().client_gone()
        self.handoff.leave()

    def body_failed(self, error: ProtocolError) -> None:
        super().body_failed(error)
        self.handoff.leave()

    # --- on the pool thread ------------------------------------------------------------

    def _call(self, environ: dict[str, Any]) -> None:
        handoff = self.handoff
        responder = _Responder(handoff, self._on_posted)
        try:
            if handoff.start_call():
                run(self.bridge.app, environ, responder)
        finally:
            if handoff.end_call([*responder.held, None], self._on_posted):
                self.bridge.abandoned_ended()

    def _read_body(self) -> bytes:
        """`wsgi.input`'s receive(): the next piece of the body, b"" at its end."""
        return self.handoff.read_body(_BODY_WANTED, self._on_posted)

    async def send(self, message: Message) -> None:
        """None: no ASGI app runs on this cycle (its WSGI app answers through a
        `_Responder`), and `Cycle.run`, the ASGI ladder, is never called for it."""
        raise TypeError("a WSGI app's request has no ASGI send()")


class _Responder:
    """The responder `hybrid.wsgi.run` drives, on the pool thread: the app's
    answer as pieces posted to the loop (the last held until the app's
    `close()` has run, so that an answer in one piece costs one hand-off)."""

    __slots__ = ("handoff", "wake", "head", "held")

    def __init__(self, handoff: Handoff[_Item], wake: Callable[[], None]) -> None:
        self.handoff = handoff
        self.wake = wake  # the cycle's, on the loop
        self.head: _Head | None = None
        self.held: list[_Item] = []  # posted with the end of the call

    def start(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.head = (status, reason, headers)

    def body(self, data: bytes, last: bool) -> None:
        if self.handoff.gone:
            raise ConnectionAbortedError("the client left")
        piece = _Piece(self.head, data, last)
        self.head = None
        if last:
            self.held = [piece]
        else:
            self.handoff.post([piece], self.wake, len(data))

    def whole(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
              data: bytes) -> None:
        if self.handoff.gone:
            raise ConnectionAbortedError("the client left")
        self.held = [_Piece((status, reason, headers), data, True)]

    def file(self, wrapper: FileWrapper) -> bool:
        return False  # iterated in its blocks

    def error(self, status: int, detail: str) -> None:
        if self.handoff.gone:
            raise ConnectionAbortedError("the client left")
        self.head = None
        self.held = [_Failure(status, detail)]

    @property
    def sent(self) -> int:
        return 0  # the loop counts what it writes

    @property
    def keep_alive(self) -> bool:
        return True  # the loop decides
