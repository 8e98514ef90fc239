"""A WebSocket over one HTTP/2 stream (RFC 8441): the stream as the channel a
`WebSocketCycle` (workers.asgi.websocket) writes to and reads from.

The client opens the stream with an extended CONNECT (`:protocol
websocket`), which this server allows by announcing
SETTINGS_ENABLE_CONNECT_PROTOCOL. The cycle is the HTTP/1.1 one; only the
wire differs: its answer is a 200 HEADERS (no key, no Upgrade), a refusal
or a denial is an answer on the stream, the WebSocket frames travel in
DATA frames both ways, and a close ends the stream (END_STREAM) instead of
the connection.

Flow control: what the client sends is credited to its window as it is
delivered, unless the app has fallen MAX_QUEUED messages behind
(`input_backlogged`): then the credit is withheld until it catches up, so the
client waits. What the app sends waits (`drain`) while more than
SEND_HIGH_WATER bytes of the stream are queued for the client's window.

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hybrid.protocol.stream_response import response_fields, stream_response
from hybrid.workers.asgi.cycle import Server
from hybrid.workers.asgi.flow import FlowControl
from hybrid.workers.asgi.h2.engine import Engine, ErrorCode
from hybrid.workers.asgi.h2.stream import SEND_HIGH_WATER, answer_with_error

if TYPE_CHECKING:
    from hybrid.workers.asgi.websocket import WebSocketCycle


class TunnelHost(Protocol):
    """What a tunnel reads of its HTTP/2 connection."""

    @property
    def server(self) -> Server: ...

    engine: Engine
    flow: FlowControl
    closed: bool
    client: tuple[str, int] | None
    peer_trusted: bool
    address: tuple[str, int | None] | None
    scheme: str
    tls: dict[str, Any] | None

    def flush(self) -> None: ...

    async def window_opens(self, stream_id: int, timeout: float) -> bool:
        """Wait until the client's window takes more of the stream's queue (False:
        it stayed shut for `timeout` seconds)."""

    def tunnel_done(self, tunnel: StreamTunnel) -> None:
        """The stream is over: forget it."""


class StreamTunnel:
    """One stream that carries a WebSocket."""

    def __init__(self, host: TunnelHost, stream_id: int) -> None:
        self.host = host
        self.stream_id = stream_id
        self.server = host.server
        self.client = host.client
        self.peer_trusted = host.peer_trusted
        self.address = host.address
        self.scheme = host.scheme
        self.tls = host.tls
        self.websocket: WebSocketCycle | None = None
        self.accepted = False
        self.ended = False  # our side of the stream ended (END_STREAM or a reset)
        self.backlogged = False
        self.withheld = 0  # bytes received while backlogged: credited when caught up

    # --- what the cycle sees: Channel --------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.ended or self.host.closed

    @property
    def flow(self) -> StreamTunnel:
        """(The cycle asks `flow.write_paused` before it drains: the stream answers.)"""
        return self

    @property
    def write_paused(self) -> bool:
        return self.host.flow.write_paused \
            or self.host.engine.queued(self.stream_id) > SEND_HIGH_WATER

    def write(self, data: bytes) -> None:
        """WebSocket frames, in DATA frames."""
        if data and not self.closed:
            self.host.engine.send(self.stream_id, data)
            self.host.flush()

    async def drain(self) -> None:
        """Wait for the transport, then for the client's window: one that stays shut
        for --body-timeout resets the stream (the app's next send finds it gone)."""
        await self.host.flow.drain()
        host = self.host
        if host.engine.queued(self.stream_id) > SEND_HIGH_WATER and \
                not await host.window_opens(self.stream_id, self.server.cfg.body_timeout):
            host.engine.reset(self.stream_id, ErrorCode.CANCEL)
            self.stream_over()

    def input_backlogged(self) -> None:
        self.backlogged = True

    def input_consumed(self) -> None:
        if self.backlogged:
            self.backlogged = False
            withheld, self.withheld = self.withheld, 0
            if withheld and not self.closed:
                self.host.engine.credit(self.stream_id, withheld)
                self.host.flush()

    # --- what the cycle sees: the handshake --------------------------------------------

    def accept_websocket(self, websocket: WebSocketCycle,
                         headers: list[tuple[bytes, bytes]]) -> bytes:
        self.respond(200, headers)
        self.accepted = True
        return b""  # (DATA before the answer is delivered as it comes: none is held)

    def respond(self, status: int, headers: list[tuple[bytes, bytes]],
                end_stream: bool = False) -> None:
        fields = response_fields(stream_response("CONNECT", status, headers))
        self.host.engine.respond(self.stream_id, fields, end_stream=end_stream)
        self.ended = end_stream
        self.host.flush()

    def send_body(self, data: bytes, end_stream: bool) -> None:
        if not self.closed:
            self.host.engine.send(self.stream_id, data, end_stream=end_stream)
            self.ended = end_stream
            self.host.flush()

    def refuse(self, status: int, detail: str,
               headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        if not self.closed:
            answer_with_error(self.host.engine, self.stream_id, status, detail,
                              head_request=False, headers=headers)
            self.ended = True
            self.host.flush()

    def close_after_websocket(self, grace: bool = False) -> None:
        """Our close frame (if any) went: end our side of the stream; the client's
        END_STREAM (or its reset) ends the rest."""
        if not self.closed:
            self.host.engine.send(self.stream_id, b"", end_stream=True)
            self.ended = True
            self.host.flush()

    # --- from the connection --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """DATA on the stream: WebSocket frames, once accepted."""
        websocket = self.websocket
        if websocket is None or not self.accepted or websocket.conn is None:
            self.host.engine.credit(self.stream_id, len(data))  # (nothing to hear yet)
            return
        websocket.data_received(data)
        if self.backlogged:
            self.withheld += len(data)
        else:
            self.host.engine.credit(self.stream_id, len(data))

    def stream_over(self) -> None:
        """The client ended or reset the stream, or the connection went."""
        self.ended = True
        if self.websocket is not None:
            self.websocket.client_gone()
        self.host.tunnel_done(self)
