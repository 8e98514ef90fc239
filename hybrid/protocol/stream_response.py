"""An app's response head, made fit for HTTP/2: status and headers in, a header list out.

What `ResponseFramer` checks for HTTP/1.1 is checked here too, with the same
`LocalProtocolError` (the worker answers 500 instead): a final status
(200-999), names that are tokens, values without CR, LF or NUL, one
Content-Length. HTTP/2 adds its own rules (RFC 9113 section 8.2): names go
out in lower case, and the connection-specific fields an HTTP/1.1 app may
set (Connection, Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection)
are dropped, since HTTP/2 frames the message and its connection itself, as is
TE; values lose the whitespace at their ends, which HTTP/2 refuses. The
server's Date, Server and --header fields are added as on HTTP/1.1.

`StreamResponse.has_body` says whether the body is sent at all (not for
HEAD, 204 or 304), and `length` the Content-Length the app set, which the
stream holds the body to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from hybrid.protocol.fields import CONNECTION_SPECIFIC
from hybrid.protocol.memo import Memo
from hybrid.protocol.response import LocalProtocolError, server_field_pairs

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_UNSAFE_VALUE: Final = re.compile(rb"[\x00\r\n]")
# Fields an HTTP/1.1 app may set that have no place in an HTTP/2 response: the
# connection-specific ones, and TE (a request's field; in HTTP/2 "trailers" only).
_NOT_IN_HTTP2: Final = CONNECTION_SPECIFIC | {b"te"}


class StreamResponse(NamedTuple):
    """A checked response head, less the date."""

    fields: list[tuple[bytes, bytes]]  # :status first
    has_body: bool
    length: int | None  # the app's Content-Length
    app_server: bool  # the app sent Server: the server's is left out
    app_date: bool


_HEADS: Final[Memo[tuple[int, bool, tuple[tuple[bytes, bytes], ...]], StreamResponse]] = Memo(1024)


def stream_response(request_method: str, status: object,
                    headers: Iterable[tuple[bytes, bytes]]) -> StreamResponse:
    """The head of an app's final response. Raises LocalProtocolError."""
    headers = tuple(headers)
    if type(status) is not int:  # (200.0 == 200: it would find 200's answer remembered)
        raise LocalProtocolError(f"invalid status code {status} for a final response")
    key = (status, request_method == "HEAD", headers)
    try:
        known = _HEADS.known.get(key)
    except TypeError:  # (a header pair given as a list: unhashable, checked below)
        known = None
    if known is None:
        known = _check(request_method == "HEAD", status, headers)
        try:
            _HEADS.remember(key, known)
        except TypeError:
            pass
    return known


def response_fields(response: StreamResponse) -> list[tuple[bytes, bytes]]:
    """The header list to send: the app's, then the server's fields."""
    return response.fields + server_field_pairs(response.app_server, response.app_date)


def informational_fields(status: int, headers: Iterable[Sequence[object]]) -> list[
        tuple[bytes, bytes]]:
    """The header list of an interim response (103 Early Hints). Raises
    LocalProtocolError."""
    if not 100 <= status <= 199 or status == 101:
        raise LocalProtocolError(f"invalid status code {status} for an interim response")
    fields = [(b":status", b"%d" % status)]
    for name, value in headers:
        fields.append(_field(name, value))
    return fields


def trailer_fields(headers: Iterable[Sequence[object]]) -> list[tuple[bytes, bytes]]:
    """An app's response trailers, checked as its head's fields are (names in lower
    case; the fields HTTP/2 carries no place for dropped). Raises
    LocalProtocolError."""
    fields = []
    for name, value in headers:
        name, value = _field(name, value)
        if name not in _NOT_IN_HTTP2:
            fields.append((name, value))
    return fields


def _check(head_request: bool, status: object,
           headers: tuple[Sequence[object], ...]) -> StreamResponse:
    if not isinstance(status, int) or not 200 <= status <= 999:
        raise LocalProtocolError(f"invalid status code {status} for a final response")
    fields = [(b":status", b"%d" % status)]
    length: int | None = None
    app_server = app_date = False
    for name, value in headers:
        name, value = _field(name, value)
        if name in _NOT_IN_HTTP2:
            continue  # (HTTP/2 frames the message and the connection itself)
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                raise LocalProtocolError(f"invalid Content-Length {value!r}")
            if length is not None and int(value) != length:
                raise LocalProtocolError("two different Content-Length values")
            if length is not None:
                continue
            length = int(value)
        app_server = app_server or name == b"server"
        app_date = app_date or name == b"date"
        fields.append((name, value))
    has_body = not head_request and status not in (204, 304)
    if status == 204 and length is not None:
        fields = [field for field in fields if field[0] != b"content-length"]
    return StreamResponse(fields, has_body, length if has_body else None, app_server, app_date)


def _field(name: object, value: object) -> tuple[bytes, bytes]:
    if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
        raise LocalProtocolError(f"header {name!r}: {value!r}: names and values must be "
                                 f"bytes, not {type(name).__name__} and {type(value).__name__}")
    if not _TOKEN.match(name):
        raise LocalProtocolError(f"invalid header name {bytes(name)!r}")
    if _UNSAFE_VALUE.search(value):
        raise LocalProtocolError("a header value contains CR, LF or NUL")
    # HTTP/2 refuses a value with whitespace at either end (RFC 9113 section 8.2.1);
    # HTTP/1.1 would have dropped it as the field's optional whitespace.
    return bytes(name).lower(), bytes(value).strip(b" \t")
