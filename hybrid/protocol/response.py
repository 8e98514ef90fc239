"""Response side of the core: status and headers in, framed bytes out.

`ResponseFramer` decides, once per response, how the body is delimited
(RFC 9112 section 6.3), and every worker class writes through it:

    no body      HEAD, 204, 304: head only, whatever the app yields
    length       the app set Content-Length: at most that many bytes go out
    chunked      HTTP/1.1 without Content-Length
    close        HTTP/1.0 without Content-Length: the end is the close

It also refuses what no final response may carry: a 1xx status (interim
responses are the server's to send: `CONTINUE`, `switching_protocols()`)
and header names and values that would split the response (CR, LF, NUL,
non-token names). The app gets a `LocalProtocolError`, which the worker
answers with a 500 instead of writing anything.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from hybrid.protocol.memo import Memo

SERVER: Final = b"hybrid"


class _ServerFields:
    """What the server adds to each response: Date (the app may send its own),
    Server (likewise) and the --header fields. Set once per process."""

    date = True
    server = b"server: %s\r\n" % SERVER
    extra = b""
    pairs: tuple[tuple[bytes, bytes], ...] = ((b"server", SERVER),)  # Server and --header


_FIELDS: Final = _ServerFields()


def set_server_fields(*, date: bool, server: bool, extra: Iterable[tuple[bytes, bytes]]) -> None:
    """--date-header, --server-header and --header, for every response from now
    on; a Server or Date among `extra` takes the place of the server's own."""
    fields = list(extra)
    names = {name.lower() for name, _ in fields}
    _FIELDS.date = date and b"date" not in names
    _FIELDS.server = b"server: %s\r\n" % SERVER if server and b"server" not in names else b""
    _FIELDS.extra = b"".join(b"%s: %s\r\n" % field for field in fields)
    _FIELDS.pairs = ((b"server", SERVER),) if _FIELDS.server else ()
    _FIELDS.pairs += tuple((name.lower(), value) for name, value in fields)
    _SHAPES.clear()


class LocalProtocolError(Exception):
    """The application asked for a response HTTP cannot carry (answer 500)."""


REASONS: Final[dict[int, bytes]] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_KNOWN_REASONS: Final = frozenset(REASONS.values()) | {b""}

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_UNSAFE_VALUE: Final = re.compile(rb"[\x00\r\n]")

_NO_BODY: Final = 0
_LENGTH: Final = 1
_CHUNKED: Final = 2
_CLOSE: Final = 3
# Framing headers are ours to write; an app's copy is read for intent only.
_FRAMING: Final = (b"content-length", b"transfer-encoding", b"connection")


_ORDINARY: Final = 0
_CONTENT_LENGTH: Final = 1
_CONNECTION: Final = 2
_OTHER_FRAMING: Final = 3
_SERVER: Final = 4
_DATE_FIELD: Final = 5
# Spellings of names already checked, with their kind: they repeat on every response.
_NAME_KINDS: Final[Memo[bytes, int]] = Memo(4096)


def _classify_name(name: bytes) -> int:
    if not _TOKEN.match(name):
        raise LocalProtocolError(f"invalid header name {name!r}")
    lowered = name.lower()
    kind = (_CONTENT_LENGTH if lowered == b"content-length" else
            _CONNECTION if lowered == b"connection" else
            _OTHER_FRAMING if lowered in _FRAMING else
            _SERVER if lowered == b"server" else
            _DATE_FIELD if lowered == b"date" else _ORDINARY)
    return _NAME_KINDS.remember(name, kind)


_LF: Final = 0x0A
_CR: Final = 0x0D
_NUL: Final = 0x00


def _check_values(lines: list[bytes]) -> None:
    """Every line ends in the one CRLF we put there: no value smuggled another line in.

    One scan of the joined lines instead of a regex per value.
    """
    joined = b"".join(lines)
    if joined.count(_LF) != len(lines) or joined.count(_CR) != len(lines) or _NUL in joined:
        raise LocalProtocolError("a header value contains CR, LF or NUL")


class _DateCache:
    """The Date header value, formatted once per second."""

    def __init__(self) -> None:
        self._second = 0.0  # the second the value is for, and the next one
        self._next = 0.0
        self._value = b""
        self._line = b""

    def get(self) -> bytes:
        now = time.time()
        if not self._second <= now < self._next:
            self._refresh(now)
        return self._value

    def line(self) -> bytes:
        """The whole Date field line, CRLF included."""
        now = time.time()
        if not self._second <= now < self._next:
            self._refresh(now)
        return self._line

    def _refresh(self, now: float) -> None:
        second = int(now)
        self._second, self._next = float(second), float(second + 1)
        self._value = formatdate(second, usegmt=True).encode("ascii")
        self._line = b"date: %s\r\n" % self._value


_DATE: Final = _DateCache()
http_date: Final = _DATE.get


class _Shape(NamedTuple):
    """What a head's fields decide, apart from the date: remembered per distinct head."""

    before_date: bytes  # status line and fields
    after_date: bytes  # the fields after the date, and the blank line
    dated: bool  # the server adds the Date field (on, and the app sent none)
    mode: int
    length: int  # Content-Length, when the mode is _LENGTH
    keep_alive: bool


# Apps send the same few heads over and over (same status, same fields):
# validating and framing each once saves most of a head's cost.
_ShapeKey = tuple[int, bytes, bool, str, bool, tuple[Any, ...]]
_SHAPE_FIELDS_MAX: Final = 8192


def _head_of_ordinary_size(key: _ShapeKey) -> bool:
    """An app may echo what a client sent in its fields (a Location, a cookie):
    a head is remembered only up to _SHAPE_FIELDS_MAX bytes of fields."""
    return sum(len(name) + len(value) for name, value in key[5]) <= _SHAPE_FIELDS_MAX


_SHAPES: Final[Memo[_ShapeKey, _Shape]] = Memo(1024, _head_of_ordinary_size)


def _bytes_pair(name: object, value: object) -> bool:
    return isinstance(name, (bytes, bytearray)) and isinstance(value, (bytes, bytearray))


def _shape(request_method: str, http_version: str, keep_alive: bool, status: int,
           reason: bytes, headers: tuple[Any, ...]) -> _Shape:
    if not 200 <= status <= 999:
        # A 1xx is interim: a final response must follow it, so it cannot be the answer.
        raise LocalProtocolError(f"invalid status code {status} for a final response")
    if reason not in _KNOWN_REASONS and _UNSAFE_VALUE.search(reason):
        raise LocalProtocolError("status reason contains CR, LF or NUL")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    content_length: int | None = None
    app_server = app_date = False
    for name, value in headers:
        if not _bytes_pair(name, value):  # (a call: name and value stay Any, unchecked by mypyc)
            raise LocalProtocolError(f"header {name!r}: {value!r}: names and values must be "
                                     f"bytes, not {type(name).__name__} and "
                                     f"{type(value).__name__}")
        kind = _NAME_KINDS.known.get(name)
        if kind is None:
            kind = _classify_name(name)
        if kind == _SERVER or kind == _DATE_FIELD:
            app_server = app_server or kind == _SERVER
            app_date = app_date or kind == _DATE_FIELD
            kind = _ORDINARY
        if kind:  # a framing field: ours to write, read for intent only
            if kind == _CONTENT_LENGTH:
                length = _parse_content_length(value)
                if content_length is not None and length != content_length:
                    raise LocalProtocolError("two different Content-Length values")
                content_length = length
            elif kind == _CONNECTION and b"close" in value.lower():
                keep_alive = False
            elif _UNSAFE_VALUE.search(value):
                raise LocalProtocolError("a header value contains CR, LF or NUL")
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    _check_values(lines)

    if request_method == "HEAD" or status in (204, 304):
        mode = _NO_BODY
        if content_length is not None and status != 204:
            lines.append(b"content-length: %d\r\n" % content_length)
    elif content_length is not None:
        mode = _LENGTH
        lines.append(b"content-length: %d\r\n" % content_length)
    elif http_version == "1.1":
        mode = _CHUNKED
        lines.append(b"transfer-encoding: chunked\r\n")
    else:
        mode = _CLOSE
        keep_alive = False
    after = [b"" if app_server else _FIELDS.server, _FIELDS.extra]
    if not keep_alive:
        after.append(b"connection: close\r\n")
    elif http_version == "1.0":
        after.append(b"connection: keep-alive\r\n")
    after.append(b"\r\n")
    return _Shape(b"".join(lines), b"".join(after), _FIELDS.date and not app_date, mode,
                  content_length or 0, keep_alive)


class ResponseFramer:
    """Frames one response on one connection."""

    __slots__ = ("keep_alive", "_mode", "_remaining", "bytes_sent")

    def __init__(self) -> None:
        self.keep_alive = False
        self._mode = _NO_BODY
        self._remaining = 0
        self.bytes_sent = 0  # body bytes, not counting framing

    def head(self, request_method: str, http_version: str, keep_alive: bool, status: object,
             reason: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """Validate the app's head, choose the framing and return the head's bytes.

        `keep_alive` is whether the connection may persist as far as the
        request and the server are concerned; the result may still close.
        """
        if not isinstance(status, int):  # (before the memo: 200.0 would find 200's head)
            raise LocalProtocolError(f"invalid status code {status!r} for a final response")
        headers = tuple(headers)
        key: _ShapeKey = (status, reason, request_method == "HEAD", http_version, keep_alive,
                          headers)
        try:
            shape: _Shape | None = _SHAPES.known[key]
        except (KeyError, TypeError):  # (TypeError: a header pair given as a list, unhashable)
            shape = None  # (worked out below, so that its errors do not chain the miss)
        if shape is None:
            shape = _SHAPES.remember(key, _shape(request_method, http_version, keep_alive,
                                                 status, reason, headers))
        before_date, after_date, dated, self._mode, self._remaining, self.keep_alive = shape
        if dated:
            return before_date + _DATE.line() + after_date
        return before_date + after_date

    def body(self, data: bytes) -> bytes:
        """Frame a piece of the body (possibly to nothing)."""
        mode = self._mode
        if mode == _CHUNKED:
            if not data:
                return b""
            self.bytes_sent += len(data)
            return b"%x\r\n%s\r\n" % (len(data), data)
        if mode == _LENGTH:
            if len(data) > self._remaining:
                # Never let an app's extra bytes become the next response.
                data = data[:self._remaining]
                self.keep_alive = False
            self._remaining -= len(data)
            self.bytes_sent += len(data)
            return data
        if mode == _CLOSE:
            self.bytes_sent += len(data)
            return data
        return b""

    def last(self, data: bytes) -> bytes:
        """Frame the body's last piece (possibly empty) and what ends the body:
        `body(data) + end()`, in one call for a body of one piece."""
        if self._mode == _LENGTH and len(data) == self._remaining:  # (the common case)
            self._remaining = 0
            self.bytes_sent += len(data)
            return data
        return self.body(data) + self.end()

    def end(self) -> bytes:
        """Bytes that finish the body; call once, after the last `body()`.
        Nothing is framed after them: a later `body()` gives b"" (a chunk after
        the last one would be read as the start of the next response)."""
        if self._mode == _CHUNKED:
            self._mode = _NO_BODY
            return b"0\r\n\r\n"
        if self._mode == _LENGTH and self._remaining:
            # Fewer bytes than announced: only closing tells the client.
            self.keep_alive = False
        return b""

    def end_with_trailers(self, fields: Iterable[tuple[bytes, bytes]]) -> bytes:
        """`end()`, with trailer fields after the last chunk (RFC 9112 section 7.1.2)
        where the body is chunked; elsewhere there is no room for them and they are
        dropped. Raises LocalProtocolError for a field that could split the message."""
        if self._mode != _CHUNKED:
            return self.end()
        section = _checked_lines(b"0\r\n", fields)
        self._mode = _NO_BODY
        return section + b"\r\n"

    def account(self, count: int) -> None:
        """Record body bytes the driver sent itself (sendfile)."""
        if self._mode == _LENGTH:
            self._remaining -= count
        self.bytes_sent += count

    @property
    def length_remaining(self) -> int | None:
        """Bytes still owed under Content-Length framing, else None."""
        return self._remaining if self._mode == _LENGTH else None

    @property
    def has_body(self) -> bool:
        return self._mode != _NO_BODY

    @property
    def chunked(self) -> bool:
        return self._mode == _CHUNKED


def switching_protocols(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The head of a 101 response (a WebSocket accept), with the same checks."""
    return _checked_lines(b"HTTP/1.1 101 Switching Protocols\r\n", headers) \
        + _server_fields() + b"\r\n"


def _checked_lines(first: bytes, fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """`first` (a status line, or a last chunk's size line), then a line per field,
    names and values checked as a head's are. Raises LocalProtocolError."""
    lines = [first]
    for name, value in fields:
        if name not in _NAME_KINDS:
            _classify_name(name)
        lines.append(b"%s: %s\r\n" % (name, value))
    _check_values(lines)
    return b"".join(lines)


def early_hints(links: Iterable[bytes]) -> bytes:
    """A 103 Early Hints response (RFC 8297) carrying `links` as Link fields.
    Raises LocalProtocolError for a value that could split the message."""
    return _checked_lines(b"HTTP/1.1 103 Early Hints\r\n",
                          ((b"link", link) for link in links)) + b"\r\n"


def _server_fields() -> bytes:
    """Date, Server and --header fields, for a head the server writes itself."""
    return (_DATE.line() if _FIELDS.date else b"") + _FIELDS.server + _FIELDS.extra


def server_field_pairs(app_server: bool, app_date: bool) -> list[tuple[bytes, bytes]]:
    """Date, Server and --header fields as (name, value) pairs, for a head framed
    elsewhere (HTTP/2's): those the app sent itself (`app_server`, `app_date`) left out."""
    pairs = [(b"date", _DATE.get())] if _FIELDS.date and not app_date else []
    pairs.extend(pair for pair in _FIELDS.pairs if not (app_server and pair[0] == b"server"))
    return pairs


def _parse_content_length(value: bytes) -> int:
    value = value.strip()
    if not value.isdigit():
        raise LocalProtocolError(f"invalid Content-Length {value!r}")
    return int(value)


def error_response(status: int, detail: str = "",
                   headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """A complete plain-text error response that closes the connection.

    `headers` are extra fields the status calls for (server constants, not
    an app's: they are not checked).
    """
    reason = REASONS.get(status, b"Error")
    body = error_body(status, detail)
    extra = b"".join(b"%s: %s\r\n" % field for field in headers)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n%s"
        b"content-length: %d\r\nconnection: close\r\n%s\r\n%s"
        % (status, reason, extra, len(body), _server_fields(), body)
    )


def error_body(status: int, detail: str = "") -> bytes:
    """The plain-text body of an error response: the status line, then `detail`."""
    body = b"%d %s\n" % (status, REASONS.get(status, b"Error"))
    if detail:
        body += detail.encode("utf-8", "replace") + b"\n"
    return body


CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
