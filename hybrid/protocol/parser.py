"""Request side of the core: bytes in, events out.

Theory of operation. A driver owns the socket. It calls `feed(data)` with
whatever it read (or `feed_eof()` when the peer closed) and then pulls
`next_event()` until it returns NEED_DATA. One connection's events come out
strictly in arrival order:

    Request  (Data)*  EndOfMessage   Request ...   [ProtocolError | ConnectionClosed]

httptools (llhttp) tokenises; the callbacks below turn its tokens into
events and enforce our limits. A limit or syntax error becomes a
`ProtocolError` event carrying the status to answer, queued after every
event that preceded it; after it the parser ignores further input.

Memory stays bounded as long as the driver feeds bounded pieces and drains
events before feeding more: a head larger than `Limits.head` is rejected
whatever way it is split into packets, and body bytes are handed out as
they arrive, never accumulated here.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import httptools

from hybrid.protocol.events import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    _NeedData,
)


class Limits(NamedTuple):
    """Size limits for one request head (gunicorn's names and defaults)."""

    request_line: int = 8190  # 414 beyond
    fields: int = 100  # 431 beyond
    field_size: int = 8190  # 431 beyond: one "name: value" line
    head: int = 65536  # 431 beyond: the whole header block


DEFAULT_LIMITS = Limits()


class RequestParser:
    """A sans-IO HTTP/1.1 request parser for one connection."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._events: deque[Event] = deque()
        self._httptools = httptools.HttpRequestParser(self)
        self._failed = False
        self._in_head = False
        self._in_message = False
        self._head_bytes = 0
        self._target: list[bytes] = []
        self._target_size = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._trailers: list[tuple[bytes, bytes]] = []
        self.upgraded_data: bytes | None = None
        """After an Upgrade request: the bytes that followed its head."""

    # --- driver API --------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse `data`; the resulting events wait in `next_event()`."""
        if self._failed:
            return
        if self.upgraded_data is not None:
            self.upgraded_data += data
            return
        try:
            self._httptools.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded_data = data[exc.args[0]:]
            return
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, ProtocolError):
                raise
            self._fail(exc.__context__)
            return
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(400, _describe(exc)))
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.head:
                self._fail(ProtocolError(431, "request header block too large"))

    def feed_eof(self) -> None:
        """The peer closed its sending side."""
        if self._failed or self.upgraded_data is not None:
            return
        if self._in_message:
            self._fail(ProtocolError(400, "connection closed in the middle of a request"))
        else:
            self._events.append(ConnectionClosed())
            self._failed = True

    def next_event(self) -> Event | _NeedData:
        """The next event, or NEED_DATA when the bytes fed so far are used up."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    @property
    def in_message(self) -> bool:
        """A request has begun and its end has not been parsed yet."""
        return self._in_message

    # --- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._in_message = True
        self._head_bytes = 0
        self._target = []
        self._target_size = 0
        self._headers = []
        self._trailers = []

    def on_url(self, piece: bytes) -> None:
        self._target_size += len(piece)
        if self._target_size > self.limits.request_line:
            raise ProtocolError(414, "request line too long")
        self._target.append(piece)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) + 2 > self.limits.field_size:
            raise ProtocolError(431, "header field too large")
        if not self._in_head:
            self._trailers.append((name.lower(), value))
            return
        if len(self._headers) >= self.limits.fields:
            raise ProtocolError(431, "too many header fields")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._httptools
        target = b"".join(self._target)
        path, query = _split_target(target)
        version = parser.get_http_version()
        headers = self._headers
        expect_continue = version == "1.1" and any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in headers)
        self._events.append(Request(
            parser.get_method().decode("ascii"), target, path, query, version, headers,
            parser.should_keep_alive(), expect_continue, parser.should_upgrade(),
        ))

    def on_body(self, body: bytes) -> None:
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._in_message = False
        self._events.append(EndOfMessage(self._trailers))

    # --- internals -------------------------------------------------------------

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._events.append(error)


def _split_target(target: bytes) -> tuple[bytes, bytes]:
    """Path and query of an origin-form or absolute-form request-target."""
    if target[:1] != b"/" and target != b"*":
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            raise ProtocolError(400, "invalid request target") from None
        return url.path or b"/", url.query or b""
    path, _, query = target.partition(b"?")
    return path, query


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.split(":", 1)[-1].strip() or "malformed request"
