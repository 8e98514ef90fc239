"""One HTTP/2 stream: an ASGI HTTP cycle whose answer goes out as frames.

`StreamCycle` is an `HttpCycle` (workers.asgi.http_cycle): the scope, the
body, `receive()` and how an answer ends are the same as HTTP/1.1's. What
differs is the wire:

* the head is checked and made fit for HTTP/2 by the core
  (`hybrid.protocol.stream_response`) and sent as HEADERS, held until the
  first body (so a response without a body is one frame with END_STREAM);
* `send()` waits for the client's flow-control window: once more than
  SEND_HIGH_WATER bytes of the stream wait in the engine for it, the app
  waits until they have all gone, and a stream whose queue has not drained
  within --body-timeout is reset;
* the body is held to the app's Content-Length: bytes past it are dropped,
  and an answer that ends short of it is reset, so the client cannot take a
  cut answer for a whole one;
* the request body is credited to the client's window as the app reads it
  (`_body_taken`), never on arrival;
* an answer that ends before the request body does (an error page, a 401
  to an upload) leaves the rest of the body to the connection to skip, as
  HTTP/1.1 skips it (see `H2Connection.decline_body`);
* response trailers (`http.response.trailers`) end the stream when the app
  asked for them; 103 Early Hints (`http.response.early_hint`) go before
  the answer; `http.response.pathsend` is the base's (a file, in pieces).

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from hybrid.protocol import ProtocolError, Request, error_body
from hybrid.protocol.stream_response import (
    StreamResponse,
    informational_fields,
    response_fields,
    stream_response,
    trailer_fields,
)
from hybrid.workers.asgi.cycle import ClientDisconnected
from hybrid.workers.asgi.http_cycle import CycleChannel, HttpCycle, http_scope
from hybrid.workers.asgi.h2.engine import Engine, EngineError, ErrorCode

if TYPE_CHECKING:
    from hybrid.typing import Message

SEND_HIGH_WATER = 65536  # body bytes a stream may have queued before send() waits
CONTINUE_FIELDS = [(b":status", b"100")]


class StreamChannel(CycleChannel, Protocol):
    """What a stream sees of its HTTP/2 connection."""

    engine: Engine

    def flush(self) -> None:
        """Write what the engine has queued (soon: once per turn of the loop)."""

    def credit(self, stream_id: int, size: int) -> None:
        """The app read `size` bytes of a stream's body."""

    def decline_body(self, stream_id: int) -> None:
        """The stream was answered before its request body ended: skip the rest."""

    async def window_opens(self, stream_id: int, timeout: float) -> bool:
        """Wait until the client's window takes more of the stream's queue (False:
        it stayed shut for `timeout` seconds)."""


class StreamCycle(HttpCycle[StreamChannel]):
    """One request on an HTTP/2 connection."""

    __slots__ = ("stream_id", "response", "pending_head", "head_sent", "sent", "continued",
                 "trailers_due", "ended", "reset")

    def __init__(self, channel: StreamChannel, stream_id: int, request: Request) -> None:
        super().__init__(channel, request)
        self.scope = http_scope(channel, request, self.client, self.scheme)
        self.stream_id = stream_id
        self.response: StreamResponse | None = None
        self.pending_head: list[tuple[bytes, bytes]] | None = None  # held for the first body
        self.head_sent = False
        self.sent = 0  # body bytes queued
        self.continued = False  # a 100 Continue went out, or is no longer due
        self.trailers_due = False  # the app announced trailers: they end the stream
        self.ended = False  # our side of the stream is closed (END_STREAM or reset)
        self.reset = False  # the client (or the engine) reset it

    @property
    def answer_begun(self) -> bool:
        return self.head_sent

    # --- the wire ----------------------------------------------------------------------

    def _ask_for_body(self) -> None:
        if self.request.expect_continue and not self.continued and not self.started \
                and not self.body and not self.buffered:
            self.continued = True
            self.channel.engine.inform(self.stream_id, CONTINUE_FIELDS)
            self.channel.flush()

    def _body_stalled(self) -> ProtocolError:
        return ProtocolError(408, "the request body stalled")

    def _body_taken(self, size: int) -> None:
        if size:
            self.channel.credit(self.stream_id, size)

    def _write_error(self, status: int, detail: str) -> None:
        if self.ended or self.channel.closed:
            return
        self.sent += answer_with_error(self.channel.engine, self.stream_id, status, detail,
                                       head_request=self.request.method == "HEAD")
        self._end_our_side()

    def _body_bytes_sent(self) -> int:
        return self.sent

    def _end_our_side(self) -> None:
        """Our side ended (END_STREAM sent): a request body still on its way (the
        client has not reset the stream) is skipped."""
        self.ended = True
        self.head_sent = True
        if not self.body_done and not self.reset:
            self.channel.decline_body(self.stream_id)
        self.channel.flush()

    def stream_reset(self) -> None:
        """The client reset the stream, or the engine did: nothing more goes out."""
        self.ended = self.reset = True
        self.client_gone()

    def unread(self) -> int:
        """Body bytes that came and were never read (credited when the stream is
        done: the connection's window must not shrink by what the app ignored)."""
        held = self.buffered
        self.body.clear()
        self.buffered = 0
        return held

    # --- the ASGI interface -------------------------------------------------------------

    async def send(self, message: Message) -> None:
        channel = self.channel
        if channel.closed or self.ended and not self.complete:
            raise ClientDisconnected("the client closed the stream")
        if self.body_error is not None:
            raise ClientDisconnected(f"the request body failed: {self.body_error.detail}")
        kind = message.get("type")
        try:
            if not self.started:
                if kind == "http.response.start":
                    self._start_response(message)
                elif kind == "http.response.early_hint":
                    self._send_early_hint(message)
                else:
                    raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            elif kind == "http.response.body":
                if self.complete or (self.trailers_due and self.response is None):
                    raise RuntimeError("'http.response.body' sent after the response was "
                                       "complete")
                await self._send_body(message.get("body", b""), message.get("more_body", False))
            elif kind == "http.response.trailers":
                self._send_trailers(message)
            elif kind == "http.response.pathsend":
                await self.send_path(message["path"])
            else:
                raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        except EngineError as exc:  # (the connection failed under the stream)
            self.ended = True
            raise ClientDisconnected(f"the connection failed: {exc}") from None

    def _start_response(self, message: Message) -> None:
        status = message["status"]
        response = stream_response(self.request.method, status, message.get("headers", ()))
        self.response = response
        self.pending_head = response_fields(response)
        self.trailers_due = bool(message.get("trailers", False))
        self.started = True  # no interim response once the final one has begun
        self.continued = True
        self.status = status

    def _send_early_hint(self, message: Message) -> None:
        """103 Early Hints (RFC 8297): Link fields sent before the final answer."""
        links = message.get("links", ())
        fields = informational_fields(103, [(b"link", link) for link in links])
        self.channel.engine.inform(self.stream_id, fields)
        self.channel.flush()

    async def _send_body(self, body: bytes, more: bool) -> None:
        channel = self.channel
        response = self.response
        assert response is not None
        if channel.flow.write_paused:  # a client that does not read holds the writer here
            await channel.drain()
        if self.ended or channel.closed:
            raise ClientDisconnected("the client closed the stream")
        engine = channel.engine
        if not response.has_body:
            body = b""
        elif response.length is not None and self.sent + len(body) > response.length:
            body = body[:response.length - self.sent]  # never more than it announced
        end_stream = not more and not self.trailers_due
        if self.pending_head is not None:
            head, self.pending_head = self.pending_head, None
            self.head_sent = True
            if end_stream and not body:
                engine.respond(self.stream_id, head, end_stream=True)
                self._complete_body()
                return
            engine.respond(self.stream_id, head)
        if body or end_stream:
            if end_stream and response.length is not None \
                    and self.sent + len(body) < response.length:
                self._cut(body)  # shorter than its Content-Length: not a whole answer
                return
            engine.send(self.stream_id, body, end_stream=end_stream)
            self.sent += len(body)
        if not more:
            self._complete_body()
            return
        channel.flush()
        if engine.queued(self.stream_id) > SEND_HIGH_WATER:
            if not await channel.window_opens(self.stream_id, channel.server.cfg.body_timeout):
                engine.reset(self.stream_id, ErrorCode.CANCEL)
                self.ended = True
                channel.flush()
                raise ClientDisconnected("the client's flow-control window stayed shut")
            if self.ended or channel.closed:
                raise ClientDisconnected("the client closed the stream")

    def _complete_body(self) -> None:
        if self.trailers_due:
            self.response = None  # (the body is over; the trailers end the stream)
            self.channel.flush()
            return
        self.complete = True
        self._end_our_side()
        self._finish(keep_alive=True)

    def _send_trailers(self, message: Message) -> None:
        if not self.trailers_due or self.response is not None or self.complete:
            raise RuntimeError("'http.response.trailers' sent before the body ended, or "
                               "without 'trailers' in 'http.response.start'")
        if message.get("more_trailers", False):
            raise RuntimeError("more_trailers is not supported: send all trailers at once")
        fields = trailer_fields(message.get("headers", ()))
        self.channel.engine.send_trailers(self.stream_id, fields)
        self.complete = True
        self._end_our_side()
        self._finish(keep_alive=True)

    def _cut(self, body: bytes) -> None:
        """An answer that ended short of its Content-Length: what came goes out,
        then the stream is reset (INTERNAL_ERROR), as HTTP/1.1 closes the connection."""
        engine = self.channel.engine
        if body:
            engine.send(self.stream_id, body)
            self.sent += len(body)
        engine.reset(self.stream_id, ErrorCode.INTERNAL_ERROR)
        self.ended = True
        self.complete = True
        self.status = self.status or 500
        self.channel.flush()
        self._finish(keep_alive=True)

    def _fail(self, error: ProtocolError | None = None) -> None:
        begun = self.head_sent and not self.ended
        super()._fail(error)
        if begun:  # an answer begun cannot be mended: cut the stream, not the connection
            self.channel.engine.reset(self.stream_id, ErrorCode.INTERNAL_ERROR)
            self.ended = True
            self.channel.flush()



def answer_with_error(engine: Engine, stream_id: int, status: int, detail: str, *,
                      head_request: bool, headers: Iterable[tuple[bytes, bytes]] = ()) -> int:
    """Answer a stream with the error page for `status` (and `headers`, fields the
    status calls for); the page's size."""
    body = error_body(status, detail)
    fields = response_fields(stream_response("HEAD" if head_request else "GET", status, (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)), *headers)))
    if head_request:
        engine.respond(stream_id, fields, end_stream=True)
        body = b""
    else:
        engine.respond(stream_id, fields)
        engine.send(stream_id, body, end_stream=True)
    return len(body)
