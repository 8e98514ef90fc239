"""WebSockets for the asgi worker: the ASGI websocket cycle on wsproto.

The HTTP core has already parsed and checked the upgrade request; this
module checks what RFC 6455 adds (version 13, a key), runs the app, and on
`websocket.accept` has the channel answer (`accept_websocket`: a 101 on
HTTP/1.1) and hands the bytes that followed the request to a wsproto
`Connection`: layers are composed, the request is never re-serialised.
Over HTTP/2 (RFC 8441) the handshake is an extended CONNECT on one stream
(workers.asgi.h2.tunnel), answered 200 with no key and no Upgrade, and the
frames travel in that stream's DATA; the cycle is the same.
wsproto answers pings and reports protocol (1002) and UTF-8 (1007)
errors as a CloseConnection, which is echoed like a client's close.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from hybrid.logs import error_log as log
from hybrid.protocol import REASONS, Request, ResponseFramer, error_response
from hybrid.workers.asgi.cycle import Channel, ClientDisconnected, Cycle
from hybrid.workers.asgi.deflate import BoundedDeflate

if TYPE_CHECKING:
    from hybrid.typing import Message, Scope

MAX_QUEUED = 64  # received messages waiting for the app before reading pauses
GOING_AWAY, ABNORMAL, INTERNAL_ERROR, TOO_BIG = 1001, 1006, 1011, 1009
_CONNECTING, _OPEN, _CLOSED = range(3)
_SUPPORTED_VERSION = ((b"sec-websocket-version", b"13"),)


class WebSocketChannel(Channel, Protocol):
    """What a WebSocket cycle sees of its connection, beyond what every cycle does:
    an HTTP/1.1 connection (`HttpProtocol`), or one HTTP/2 stream (`StreamTunnel`)."""

    def accept_websocket(self, websocket: WebSocketCycle,
                         headers: list[tuple[bytes, bytes]]) -> bytes:
        """The app accepted: answer so (101 on HTTP/1.1, 200 on HTTP/2, with
        `headers`), route the bytes to `websocket.data_received` from now on, and
        return those that came with the handshake."""

    def close_after_websocket(self, grace: bool = False) -> None:
        """Close now, or (`grace`: our close frame went out) once the client answers."""


class TunnelChannel(WebSocketChannel, Protocol):
    """An HTTP/2 stream carrying a WebSocket (RFC 8441): the handshake's answers
    are HEADERS and DATA there, not HTTP/1.1 bytes."""

    def respond(self, status: int, headers: list[tuple[bytes, bytes]],
                end_stream: bool = False) -> None:
        """The answer's head (LocalProtocolError for one HTTP cannot carry)."""

    def send_body(self, data: bytes, end_stream: bool) -> None:
        """A piece of a denial's body."""

    def refuse(self, status: int, detail: str,
               headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """Answer with the error page for `status` (and `headers`) and end the stream."""


def is_websocket(request: Request) -> bool:
    return request.upgrade and any(
        name == b"upgrade" and b"websocket" in value.lower() for name, value in request.headers)


def over_http2(request: Request) -> bool:
    """Whether the handshake is HTTP/2's extended CONNECT (RFC 8441)."""
    return request.http_version == "2"


def _header(request: Request, name: bytes) -> bytes | None:
    values = [value for field, value in request.headers if field == name]
    return b", ".join(values) if values else None


class WebSocketCycle(Cycle[WebSocketChannel]):
    """One WebSocket: its ASGI scope, `receive` and `send`."""

    def __init__(self, channel: WebSocketChannel, request: Request, scope: Scope) -> None:
        super().__init__(channel)
        self.request = request
        self.cfg = channel.server.cfg
        offered = _header(request, b"sec-websocket-protocol") or b""
        extensions: dict[str, Any] = {"websocket.http.response": {}}  # (a denial's answer)
        if "tls" in scope["extensions"]:
            extensions["tls"] = scope["extensions"]["tls"]
        self.scope = {**scope, "type": "websocket",
                      "scheme": "wss" if scope["scheme"] == "https" else "ws",
                      "subprotocols": [p.strip().decode("latin-1") for p in offered.split(b",")
                                       if p.strip()],
                      "extensions": extensions}
        self.scope.pop("method", None)
        # The HTTP/2 stream it travels on, if it does (RFC 8441).
        self.tunnel = cast(TunnelChannel, channel) if over_http2(request) else None
        self.state = _CONNECTING
        self.conn: Connection | None = None
        self.incoming: deque[Message] = deque([{"type": "websocket.connect"}])
        self.parts: list[str | bytes | bytearray] = []
        self.size = 0
        self.closed_by_us = False
        self.disconnected = False
        self.denial: ResponseFramer | None = None
        self.pong: asyncio.Future[None] | None = None
        self.pinger: asyncio.Task[None] | None = None

    # --- the handshake -----------------------------------------------------------------

    def handshake_error(self) -> tuple[int, str, tuple[tuple[bytes, bytes], ...]] | None:
        """What RFC 6455 section 4.2.1 adds to the HTTP checks, as (status, reason,
        extra header fields of the refusal)."""
        request = self.request
        if over_http2(request):
            # RFC 8441 section 5: an extended CONNECT (the core checked its pseudo-
            # header fields), with a version, and no key: the stream is the proof.
            if request.method != "CONNECT":
                return 400, "a WebSocket over HTTP/2 is an extended CONNECT", ()
            if _header(request, b"sec-websocket-version") != b"13":
                return 426, "only WebSocket version 13 is supported", _SUPPORTED_VERSION
            return None
        if request.method != "GET" or request.http_version != "1.1":
            return 400, "a WebSocket handshake is a GET over HTTP/1.1", ()
        if b"upgrade" not in (_header(request, b"connection") or b"").lower():
            return 400, "a WebSocket handshake needs Connection: Upgrade", ()
        if _header(request, b"sec-websocket-version") != b"13":
            # Section 4.4: a version we do not speak is answered with the one we do.
            return 426, "only WebSocket version 13 is supported", _SUPPORTED_VERSION
        key = _header(request, b"sec-websocket-key")
        try:
            valid = key is not None and len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid = False
        if not valid:
            return 400, "a WebSocket handshake needs a valid Sec-WebSocket-Key", ()
        return None

    # --- how the app ended --------------------------------------------------------------

    def _client_left(self) -> None:
        log.debug("WebSocket client left (%s)", self.request.target.decode("latin-1"))

    def _app_raised(self) -> None:
        if self.disconnected and not self.closed_by_us:  # the client left
            log.debug("ASGI WebSocket application raised after the client left (%s)",
                      self.request.target.decode("latin-1"), exc_info=True)
        else:
            log.exception("Exception in ASGI WebSocket application (%s)",
                          self.request.target.decode("latin-1"))
        if self.state == _CONNECTING and self.denial is None:
            self._respond_and_close(500, "")
        elif self.state == _OPEN:
            self._close(INTERNAL_ERROR, "")

    def _app_returned(self) -> None:
        if self.state == _CONNECTING and self.denial is None:
            self._respond_and_close(403, "")  # returned without accepting
        elif self.state == _OPEN:
            self._close(1000, "")

    def _app_ended(self) -> None:
        if self.pinger is not None:
            self.pinger.cancel()
        if self.state == _CLOSED and not self.closed_by_us:
            self.channel.close_after_websocket()  # e.g. closed by a shutdown mid-handshake

    # --- the ASGI interface -------------------------------------------------------------

    async def receive(self) -> Message:
        while not self.incoming:
            await self._wait()
        message = self.incoming.popleft()
        if len(self.incoming) < MAX_QUEUED // 2:
            self.channel.input_consumed()
        return message

    async def send(self, message: Message) -> None:
        if self.channel.closed or (self.disconnected and not self.closed_by_us):
            raise ClientDisconnected("the WebSocket client has gone")
        kind = message.get("type")
        if self.state == _CONNECTING and self.denial is None:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._respond_and_close(403, "")
            elif kind == "websocket.http.response.start":
                self._deny(message)
            else:
                raise RuntimeError(f"expected 'websocket.accept' or 'websocket.close', got {kind!r}")
        elif self.denial is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"expected 'websocket.http.response.body', got {kind!r}")
            more = message.get("more_body", False)
            if self.tunnel is not None:
                self.tunnel.send_body(message.get("body", b""), end_stream=not more)
                if not more:
                    self.state = _CLOSED
                return
            data = self.denial.body(message.get("body", b""))
            if not more:
                self.channel.write(data + self.denial.end())
                self.state = _CLOSED
                self.channel.close_after_websocket()
            else:
                self.channel.write(data)
        elif self.state == _OPEN:
            assert self.conn is not None
            if kind == "websocket.send":
                if self.conn.state != ConnectionState.OPEN:
                    return  # after our own close: dropped
                text, payload = message.get("text"), message.get("bytes")
                event = (TextMessage(data=text) if text is not None
                         else BytesMessage(data=payload or b""))
                self.channel.write(self.conn.send(event))
                if self.channel.flow.write_paused:
                    await self.channel.drain()
            elif kind == "websocket.close":
                self._close(message.get("code", 1000), message.get("reason") or "")
            else:
                raise RuntimeError(f"unexpected {kind!r} on an open WebSocket")
        elif kind not in ("websocket.close", "websocket.send"):
            raise RuntimeError(f"unexpected {kind!r} on a closed WebSocket")
        # Sends after the app's own close are dropped while the handshake finishes.

    # --- state changes ------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        headers: list[tuple[bytes, bytes]] = []
        if self.tunnel is None:
            key = _header(self.request, b"sec-websocket-key") or b""
            headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                       (b"sec-websocket-accept", generate_accept_token(key))]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        extensions: list[Extension] = (
            [BoundedDeflate(self.cfg.ws_deflate_window_bits, self.cfg.ws_deflate_mem_level)]
            if self.cfg.ws_per_message_deflate else [])
        offered = _header(self.request, b"sec-websocket-extensions")
        if offered and extensions:
            accepted = server_extensions_handshake(
                [part.decode("latin-1") for part in offered.split(b",")], extensions)
            if accepted:
                headers.append((b"sec-websocket-extensions", accepted))
        headers.extend((bytes(n), bytes(v)) for n, v in message.get("headers", ()))
        conn = Connection(ConnectionType.SERVER, extensions=[e for e in extensions if e.enabled()])
        # (The answer first: a header it cannot carry raises with nothing sent.)
        leftover = self.channel.accept_websocket(self, headers)
        self.conn = conn
        self.state = _OPEN
        if leftover:
            self.data_received(leftover)
        if self.cfg.ws_ping_interval:
            self.pinger = self.channel.server.loop.create_task(self._ping_regularly())

    def _deny(self, message: Message) -> None:
        framer = ResponseFramer()
        status = message["status"]
        if self.tunnel is not None:
            self.tunnel.respond(status, list(message.get("headers", ())))
            self.denial = framer  # (marks the denial begun; the stream frames it)
            return
        head = framer.head(self.request.method, self.request.http_version, False, status,
                           REASONS.get(status, b""), list(message.get("headers", ())))
        self.denial = framer  # only once the head is valid: else run() answers 500
        self.channel.write(head)

    def _respond_and_close(self, status: int, detail: str) -> None:
        self.state = _CLOSED
        if self.tunnel is not None:
            self.tunnel.refuse(status, detail)
            return
        self.channel.write(error_response(status, detail))
        self.channel.close_after_websocket()

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the transport closes when the client answers."""
        if self.conn is None or self.conn.state != ConnectionState.OPEN:
            return
        self.closed_by_us = True
        self.channel.write(self.conn.send(CloseConnection(code=code, reason=reason)))
        self.channel.close_after_websocket(grace=True)

    def shut_down(self) -> None:
        """The worker stops: a going-away close for an open socket."""
        if self.state == _OPEN:
            self._close(GOING_AWAY, "server shutting down")
        self._deliver({"type": "websocket.disconnect", "code": GOING_AWAY, "reason": ""})

    # --- from the connection ------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._message_part(event)
            elif isinstance(event, Ping):
                self.channel.write(self.conn.send(event.response()))
            elif isinstance(event, Pong):
                if self.pong is not None and not self.pong.done():
                    self.pong.set_result(None)
            elif isinstance(event, CloseConnection):
                if self.conn.state == ConnectionState.REMOTE_CLOSING:
                    self.channel.write(self.conn.send(event.response()))
                elif self.conn.state == ConnectionState.OPEN:
                    # wsproto found a protocol (1002) or UTF-8 (1007) error: say so.
                    self.channel.write(self.conn.send(
                        CloseConnection(code=event.code, reason=event.reason)))
                self._deliver({"type": "websocket.disconnect", "code": event.code,
                               "reason": event.reason or ""})
                self.channel.close_after_websocket()
                return
        if len(self.incoming) >= MAX_QUEUED:
            self.channel.input_backlogged()

    def _message_part(self, event: TextMessage | BytesMessage) -> None:
        self.parts.append(event.data)
        self.size += len(event.data)
        if self.size > self.cfg.ws_max_size:
            self.parts.clear()
            self._close(TOO_BIG, "message too big")
            self._deliver({"type": "websocket.disconnect", "code": TOO_BIG, "reason": ""})
            return
        if not event.message_finished:
            return
        # The pieces of one message are all text or all bytes, as its first frame said.
        message: Message
        if isinstance(event, TextMessage):
            message = {"type": "websocket.receive", "text": "".join(cast("list[str]", self.parts))}
        else:
            message = {"type": "websocket.receive",
                       "bytes": b"".join(cast("list[bytes | bytearray]", self.parts))}
        self.parts, self.size = [], 0
        self._deliver(message)

    def client_gone(self) -> None:
        self.state = _CLOSED
        self._deliver({"type": "websocket.disconnect", "code": ABNORMAL, "reason": ""})

    def _deliver(self, message: Message) -> None:
        if self.disconnected:
            return
        if message["type"] == "websocket.disconnect":
            self.disconnected = True
            self.state = _CLOSED
        self.incoming.append(message)
        self._wake()

    async def _ping_regularly(self) -> None:
        loop = self.channel.server.loop
        while self.state == _OPEN and self.conn is not None:
            await asyncio.sleep(self.cfg.ws_ping_interval)
            if self.state != _OPEN:
                return
            self.pong = loop.create_future()
            self.channel.write(self.conn.send(Ping(payload=b"hybrid")))
            try:
                await asyncio.wait_for(self.pong, self.cfg.ws_ping_timeout or None)
            except asyncio.TimeoutError:
                log.info("WebSocket ping timed out; closing")
                self._close(INTERNAL_ERROR, "ping timeout")
                self._deliver({"type": "websocket.disconnect", "code": INTERNAL_ERROR,
                               "reason": ""})
                return
