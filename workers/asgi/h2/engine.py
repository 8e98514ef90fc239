"""The HTTP/2 engine: the one room that knows `ngh2` (libnghttp2's sans-IO binding).

The engine frames: it decodes HPACK, keeps each stream's state and both
sides' flow-control windows, and queues what is to be sent. What a valid
request is, the core decides: a stream's header list goes to
`hybrid.protocol.stream_request` to be judged (libnghttp2 keeps HTTP/2's
messaging rules as well, and runs first: that module's docstring says how
the two meet). `ngh2` was chosen over `h2`
by measurement (benchmarks/h2_engine_spike.py: 9.9x `h2`'s requests per
second with 64 connections of 1 stream, 21x with 8 of 100, in the same
minimal server); its API is alpha, so it is pinned (the `http2` extra) and
read nowhere else. The events it hands out keep ngh2's classes under the
names below, whose fields the connection reads (`stream_id`, `headers`,
`end_stream`, `data`, `error_code`, `increment`): another engine would hand
out objects with the same fields.

Flow control on receipt is manual (`auto_window_update=False`): a stream's
window is credited as its app reads (`credit`), never on arrival, so a
client that sends faster than the app reads waits instead of filling
memory. The connection's window is the streams' windows together, so one
slow stream does not hold up the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import ngh2
from ngh2 import (
    ConnectionClosed,
    DenialOfServiceError,
    Event,
    DataReceived,
    GoAwayReceived,
    PingReceived,
    RequestReceived,
    SettingsReceived,
    StreamClosed,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from ngh2 import ErrorCode as ErrorCode
from ngh2 import NGH2Error as EngineError
from ngh2 import Setting

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ConnectionClosed", "DataReceived", "DenialOfServiceError", "Event", "Engine", "EngineError", "ErrorCode", "GoAwayReceived",
    "H2Settings", "PingReceived", "RequestReceived", "SettingsReceived", "StreamClosed",
    "StreamReset", "TrailersReceived", "WindowUpdated",
]

MAX_WINDOW = (1 << 31) - 1
ENGINE_STREAM_LIMIT = MAX_WINDOW  # (see Engine._announce)
SETTINGS_FRAME = 0x4
GOAWAY_FRAME = 0x7


class H2Settings(NamedTuple):
    """What this server announces in its SETTINGS (the --http2-* settings)."""

    max_concurrent_streams: int = 100
    initial_window_size: int = 65535
    max_frame_size: int = 16384
    max_header_list_size: int = 65536
    enable_connect_protocol: bool = False  # RFC 8441: WebSockets over HTTP/2


class Engine:
    """One connection's HTTP/2 state, server side."""

    __slots__ = ("_conn", "settings", "_preface", "_reset_here")

    def __init__(self, settings: H2Settings) -> None:
        self.settings = settings
        self._preface = b""  # our first SETTINGS, as the client is to see it
        self._reset_here: set[int] = set()  # streams reset by `reset()`, until they close
        self._conn = ngh2.Connection(ngh2.Role.SERVER, ngh2.Configuration(
            auto_window_update=False,
            max_inbound_header_list_size=settings.max_header_list_size,
        ))

    def _local_settings(self) -> dict[Setting, int]:
        settings = self.settings
        local = {
            # See _announce: the client is told max_concurrent_streams.
            Setting.MAX_CONCURRENT_STREAMS: ENGINE_STREAM_LIMIT,
            Setting.INITIAL_WINDOW_SIZE: settings.initial_window_size,
            Setting.MAX_FRAME_SIZE: settings.max_frame_size,
            Setting.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
            Setting.ENABLE_PUSH: 0,
        }
        if settings.enable_connect_protocol:
            local[Setting.ENABLE_CONNECT_PROTOCOL] = 1
        return local

    def start(self) -> None:
        """Begin a connection that opened with the client's preface (TLS, or h2c by
        prior knowledge): our SETTINGS go first."""
        self._conn.initiate_connection(self._local_settings())
        self._widen_connection_window()
        self._announce()

    def start_upgraded(self, settings_payload: bytes, head_request: bool) -> None:
        """Begin a connection upgraded from HTTP/1.1 (`Upgrade: h2c`): the request
        that asked becomes stream 1, half-closed by the client."""
        self._conn.initiate_upgrade(settings_payload, local_settings=self._local_settings(),
                                    head_request=head_request)
        self._widen_connection_window()
        self._announce()

    def _announce(self) -> None:
        """Tell the client our --http2-max-concurrent-streams, while the engine keeps
        a higher bound (ENGINE_STREAM_LIMIT).

        RFC 9113 section 5.1.2 has a stream past the limit refused alone
        (REFUSED_STREAM, safe to retry), but libnghttp2 ends the whole
        connection for it once the client has acknowledged the limit. So the
        engine is given a bound no client reaches, the SETTINGS frame it wrote
        is mended to carry ours before it goes out, and the connection refuses
        streams past ours itself. The client's acknowledgement needs no mending:
        SETTINGS acknowledgements carry no values."""
        out = self._conn.data_to_send()
        limit = self.settings.max_concurrent_streams.to_bytes(4, "big")
        kind, length = out[3], int.from_bytes(out[:3], "big")
        assert kind == SETTINGS_FRAME, "the engine's first frame is its SETTINGS"
        payload = bytearray(out[9:9 + length])
        for start in range(0, length, 6):
            if int.from_bytes(payload[start:start + 2], "big") == Setting.MAX_CONCURRENT_STREAMS:
                payload[start + 2:start + 6] = limit
        self._preface = out[:9] + bytes(payload) + out[9 + length:]

    def _widen_connection_window(self) -> None:
        settings = self.settings
        window = min(MAX_WINDOW, settings.initial_window_size * settings.max_concurrent_streams)
        if window > 65535:
            self._conn.set_local_window_size(window)

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes read; the events they make. Raises EngineError when the
        client broke HTTP/2 (the engine has queued its GOAWAY)."""
        conn = self._conn
        conn.receive_data(data)
        return conn.events()

    def outgoing(self) -> bytes:
        """The bytes to send now (b"" once the engine is done with the connection)."""
        try:
            if self._preface:
                preface, self._preface = self._preface, b""
                return preface + self._conn.data_to_send()
            return self._conn.data_to_send()
        except EngineError:
            return b""  # (it gave up on the connection: see last_words)

    def respond(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]],
                end_stream: bool = False) -> None:
        self._conn.send_response(stream_id, headers, end_stream=end_stream)

    def inform(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """An informational (1xx) response: 100 Continue, 103 Early Hints."""
        self._conn.send_informational_response(stream_id, headers)

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue body bytes: they go out as the peer's windows allow."""
        self._conn.send_data(stream_id, data, end_stream=end_stream)

    def send_trailers(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._conn.send_trailers(stream_id, headers)

    def queued(self, stream_id: int | None = None) -> int:
        """Body bytes queued on a stream (None: on every stream), waiting for the
        peer's window."""
        try:
            return self._conn.queued_body_size(stream_id)
        except EngineError:
            return 0

    def credit(self, stream_id: int, amount: int) -> None:
        """The app read `amount` bytes of the stream's body: the peer may send more."""
        try:
            self._conn.acknowledge_received_data(amount, stream_id)
        except (EngineError, ValueError):
            pass  # (the stream closed meanwhile: nothing is owed)

    def reset(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        self._reset_here.add(stream_id)
        try:
            self._conn.reset_stream(stream_id, error_code)
        except EngineError:
            pass  # (the connection is closing)

    def was_reset_here(self, stream_id: int) -> bool:
        """Whether a stream that closed was reset by `reset()` (once per stream: the
        engine's own resets, for a stream the client broke, are not)."""
        try:
            self._reset_here.remove(stream_id)
        except KeyError:
            return False
        return True

    def go_away(self, error_code: int = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """The final GOAWAY, naming the last stream that may have been processed."""
        try:
            self._conn.send_goaway(error_code, debug_data=debug)
        except EngineError:
            pass

    def terminate(self, error_code: int) -> None:
        """A final GOAWAY with `error_code`; the engine takes nothing more."""
        try:
            self._conn.terminate_connection(error_code)
        except EngineError:
            pass

    @staticmethod
    def last_words(error_code: int, last_stream_id: int) -> bytes:
        """A GOAWAY frame, written by hand, for when the engine has given up on the
        connection (it refused a header block as a denial of service, say) and will
        frame nothing more."""
        payload = last_stream_id.to_bytes(4, "big") + error_code.to_bytes(4, "big")
        return len(payload).to_bytes(3, "big") + bytes((GOAWAY_FRAME, 0)) + bytes(4) + payload

    @property
    def wants_more(self) -> bool:
        """Whether the engine still reads or writes (False once it is done)."""
        try:
            return self._conn.want_read or self._conn.want_write
        except EngineError:
            return False

