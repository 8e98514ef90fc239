"""A small hostile HTTP/2 client for the tests: a socket, the preface, and
frames sent exactly as a test builds them.

Well-formed frames are built with `hyperframe`, header blocks with `hpack`;
`raw_frame` builds the frames those libraries refuse to (a SETTINGS on a
stream, a PING of seven bytes...). Everything the server sends is read back
frame by frame and recorded: each stream's status, headers, body and reset,
the GOAWAY, the PING and SETTINGS acknowledgements. The server's SETTINGS are
acknowledged as they come; nothing else is answered unless a test does so.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6) and the flags the tests set.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)

# Settings (RFC 9113 section 6.5.2).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

MAX_WINDOW = (1 << 31) - 1


def raw_frame(kind: int, payload: bytes = b"", flags: int = 0, stream_id: int = 0) -> bytes:
    """A frame exactly as given, whatever the RFC says of it."""
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id) \
        + payload


def request_fields(path: str = "/", method: str = "GET", authority: str | None = "localhost",
                   extra: Iterable[tuple[str, str]] = ()) -> list[tuple[bytes, bytes]]:
    """A request's header list, pseudo-header fields first."""
    fields = [(b":method", method.encode()), (b":scheme", b"http"), (b":path", path.encode())]
    if authority is not None:
        fields.append((b":authority", authority.encode()))
    return fields + [(name.encode(), value.encode()) for name, value in extra]


@dataclass
class StreamAnswer:
    """What the server sent on one stream."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None  # the RST_STREAM's error code

    @property
    def status(self) -> int | None:
        for name, value in self.headers:
            if name == b":status":
                return int(value)
        return None

    def field(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    """One connection to the server, spoken frame by frame."""

    def __init__(self, port: int, settings: dict[int, int] | None = None, *,
                 preface: bytes = PREFACE, handshake: bool = True, timeout: float = 10.0,
                 sock: socket.socket | None = None) -> None:
        """`sock`: a connection opened already (to `port`), to speak HTTP/2 on."""
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.frames: list[Frame] = []  # every frame read, in order
        self.streams: dict[int, StreamAnswer] = {}
        self.server_settings: dict[int, int] = {}
        self.settings_acks = 0
        self.ping_acks: list[bytes] = []
        self.goaway: GoAwayFrame | None = None
        self.window_updates: list[tuple[int, int]] = []  # (stream, increment) as they came
        self.closed = False
        self._buffer = b""
        self._block: tuple[int, bytes, bool] | None = None  # (stream, fragments, END_STREAM)
        if preface:
            self.send_raw(preface + SettingsFrame(0, settings or {}).serialize())
        if handshake:
            self.wait_for(lambda: bool(self.server_settings), "the server's SETTINGS")

    # --- sending ---------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Send bytes. A server that hung up on them is no error here: what it
        said before it did is read back."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send(self, *frames: Frame | bytes) -> None:
        """Send frames (built, or raw bytes) in one write."""
        self.send_raw(b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames))

    def block(self, fields: Iterable[tuple[bytes, bytes]]) -> bytes:
        """A header block, with the connection's HPACK encoder."""
        return self.encoder.encode(list(fields))

    def headers_frame(self, stream_id: int, fields: Iterable[tuple[bytes, bytes]], *,
                      end_stream: bool = True, end_headers: bool = True) -> HeadersFrame:
        flags = {"END_STREAM"} if end_stream else set()
        if end_headers:
            flags.add("END_HEADERS")
        return HeadersFrame(stream_id, self.block(fields), flags=flags)

    def request(self, stream_id: int, path: str = "/", method: str = "GET", *,
                extra: Iterable[tuple[str, str]] = (), end_stream: bool = True) -> None:
        """Send a request's HEADERS."""
        self.send(self.headers_frame(stream_id, request_fields(path, method, extra=extra),
                                     end_stream=end_stream))

    def data(self, stream_id: int, payload: bytes, end_stream: bool = False) -> DataFrame:
        return DataFrame(stream_id, payload, flags={"END_STREAM"} if end_stream else set())

    def upload(self, stream_id: int, body: bytes) -> None:
        """Send a request body, as the server's flow-control windows allow, and end
        the stream with it."""
        sent = 0
        while sent < len(body):
            self.wait_for(lambda: self.send_window(stream_id, sent) > 0,
                          f"the server's window on stream {stream_id}")
            size = min(self.send_window(stream_id, sent), len(body) - sent, 16384)
            self.send(self.data(stream_id, body[sent:sent + size]))
            sent += size
        self.send(self.data(stream_id, b"", end_stream=True))

    def send_window(self, stream_id: int, sent: int) -> int:
        """What the server lets us send on a stream that has sent `sent` bytes (the
        only stream sending on this connection)."""
        def opened(stream: int) -> int:
            return sum(increment for sid, increment in self.window_updates if sid == stream)

        stream = self.server_settings.get(INITIAL_WINDOW_SIZE, 65535) + opened(stream_id)
        return min(stream, 65535 + opened(0)) - sent

    def ping(self, payload: bytes = b"barrier!") -> None:
        """Send a PING and wait for its ACK: the server has read all sent before."""
        self.send(PingFrame(0, payload))
        self.wait_for(lambda: payload in self.ping_acks, "the PING's ACK")

    # --- reading -----------------------------------------------------------------

    def read_frame(self, deadline: float) -> Frame | None:
        """The next frame from the server, or None when it closed (or the deadline passed)."""
        while True:
            if len(self._buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self._buffer[:9]))
                if len(self._buffer) >= 9 + length:
                    frame.parse_body(memoryview(self._buffer[9:9 + length]))
                    self._buffer = self._buffer[9 + length:]
                    self._record(frame)
                    return frame
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self._buffer += chunk

    def wait_for(self, condition: Callable[[], object], what: str,
                 timeout: float | None = None) -> None:
        """Read frames until `condition()`; fail if the server closed first, or
        nothing satisfied it within the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not condition():
            if self.read_frame(deadline) is None:
                if condition():
                    return
                why = "the server closed the connection" if self.closed else "timed out"
                raise AssertionError(f"{why} waiting for {what}; {self.last_frames()}")

    def answer(self, stream_id: int) -> StreamAnswer:
        """The whole answer on a stream: ended, or reset; or as far as it came
        before a GOAWAY that left the stream out."""
        def over() -> bool:
            goaway = self.goaway
            return self.stream(stream_id).done or (
                goaway is not None and goaway.last_stream_id < stream_id)

        self.wait_for(over, f"the answer on stream {stream_id}")
        return self.stream(stream_id)

    def last_frames(self, count: int = 12) -> str:
        """The frames read last, for a failure's message."""
        return f"the last frames read: {self.frames[-count:]!r}"

    def stream(self, stream_id: int) -> StreamAnswer:
        return self.streams.setdefault(stream_id, StreamAnswer())

    def connection_error(self, barrier: bool = True) -> int | None:
        """The error code of the GOAWAY the server ends the connection with after
        what was sent (None: it closed without one). With `barrier`, a PING goes
        out first: its ACK coming back before any GOAWAY fails at once, the
        server having taken what came before it."""
        payload = b"barrier?"
        if barrier:
            self.send(PingFrame(0, payload))

        def ended() -> bool:
            if barrier and payload in self.ping_acks and self.goaway is None:
                raise AssertionError(f"no connection error: the server went on; "
                                     f"{self.last_frames()}")
            return self.goaway is not None or self.closed

        self.wait_for(ended, "a GOAWAY")
        return self.goaway.error_code if self.goaway is not None else None

    def read_until_closed(self, timeout: float | None = None) -> bool:
        """Read until the server closes: whether it did within the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            if self.read_frame(deadline) is None and not self.closed:
                return False
        return True

    def _record(self, frame: Frame) -> None:
        self.frames.append(frame)
        if isinstance(frame, (HeadersFrame, ContinuationFrame)):
            self._header_fragment(frame)
        elif isinstance(frame, DataFrame):
            answer = self.stream(frame.stream_id)
            answer.body += frame.data
            answer.ended = answer.ended or "END_STREAM" in frame.flags
        elif isinstance(frame, RstStreamFrame):
            self.stream(frame.stream_id).reset = frame.error_code
        elif isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update(frame.settings)
                self.send(SettingsFrame(0, flags={"ACK"}))
        elif isinstance(frame, PingFrame) and "ACK" in frame.flags:
            self.ping_acks.append(frame.opaque_data)
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, WindowUpdateFrame):
            self.window_updates.append((frame.stream_id, frame.window_increment))

    def _header_fragment(self, frame: HeadersFrame | ContinuationFrame) -> None:
        stream_id = frame.stream_id
        if isinstance(frame, HeadersFrame):
            self._block = (stream_id, b"", "END_STREAM" in frame.flags)
        assert self._block is not None, "a CONTINUATION from the server outside a header block"
        _, fragments, end_stream = self._block
        self._block = (stream_id, fragments + frame.data, end_stream)
        if "END_HEADERS" not in frame.flags:
            return
        fields = self.decoder.decode(self._block[1], raw=True)
        self._block = None
        answer = self.stream(stream_id)
        status = next((value for name, value in fields if name == b":status"), None)
        if status is not None and status.startswith(b"1"):
            answer.informational.append(fields)
        elif answer.headers:
            answer.trailers = fields
        else:
            answer.headers = fields
        answer.ended = answer.ended or end_stream

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
