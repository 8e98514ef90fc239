"""What a valid HTTP/2 request is: a decoded header list in, a `Request` out.

The HTTP/2 engine frames, keeps the streams' states and decodes HPACK; what
it hands over is judged here, by the same field rules (`fields.py`) and the
same limits (`Limits`) as an HTTP/1.1 head, so that both protocols accept the
same requests and refuse the same with the same status:

* the pseudo-header fields (RFC 9113 section 8.3.1): first, once each, the
  request's own (:method, :scheme, :path, :authority, and :protocol for an
  extended CONNECT, RFC 8441), and those a method needs;
* field names in lower case, field values without a leading or trailing
  space (section 8.2.1), no connection-specific field (section 8.2.2);
* Host agreeing with :authority (section 8.3.1: the duplicate-Host smuggling
  h2 4.4.1 fixed);
* the limits: :method and :path against --limit-request-line (414), the
  fields against --limit-request-fields and --limit-request-field_size
  (431), Content-Length against --limit-request-body (413).

The `Request` is the one HTTP/1.1 drivers get, with `http_version` "2",
a `host` field made from :authority when the client sent none (HTTP/1.1
apps read Host), and the cookie crumbs joined into one field (section
8.2.3). `BodyCount` checks the DATA that follows against Content-Length
and --limit-request-body.

libnghttp2 keeps HTTP/2's messaging rules too, and runs first: a header
list it finds malformed (an upper-case name, a connection-specific field)
or DATA that breaks Content-Length never reaches this module, and the
stream is reset (PROTOCOL_ERROR) where this module would answer 400. The
rules here are still the ones every request that does reach the app was
judged by, the same as HTTP/1.1's; the engine only answers some earlier.

`h2c_settings` reads an HTTP/1.1 request that asks to go on in HTTP/2
(`Upgrade: h2c`, RFC 7540 section 3.2, which RFC 9113 deprecates but curl
still sends).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Final

from hybrid.protocol.events import ProtocolError, Request
from hybrid.protocol.fields import (
    CONNECTION_SPECIFIC,
    SINGLETONS,
    check_authority_form,
    check_host,
    check_singletons,
    content_length,
    is_connection_specific,
    is_field_name,
)
from hybrid.protocol.head import Limits, split_target
from hybrid.protocol.memo import Memo

HTTP_VERSION: Final = "2"
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # how every HTTP/2 connection opens (3.4)
REQUEST_PSEUDO_FIELDS: Final = frozenset({b":method", b":scheme", b":path", b":authority", b":protocol"})
_FORWARDED_NAMES: Final = (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto")
_UPPER: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VISIBLE_ASCII: Final = re.compile(rb"[\x21-\x7e]+\Z").match
# A byte no field value may hold, or a space or tab next to the NULs between values.
_BAD_VALUE: Final = re.compile(rb"[^\t\x20-\x7e\x80-\xff\0]|[ \t]\0|\0[ \t]").search


def stream_request(fields: Iterable[tuple[bytes, bytes]], limits: Limits) -> Request:
    """The request a stream's header list makes. Raises ProtocolError: 400 for a
    malformed request (RFC 9113 section 8.1.1), 414, 431 or 413 past a limit."""
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    values: list[bytes] = []
    cookies: list[bytes] = []
    special: list[tuple[int, bytes, bytes]] = []  # the fields the rules look at
    field_limit = (limits.field_size or limits.head) - len(b": \r\n")
    size = 0
    for name, value in fields:
        if name[:1] == b":":
            if values:
                raise ProtocolError(400, "a pseudo-header field after a regular field")
            if name not in REQUEST_PSEUDO_FIELDS or name in pseudo:
                raise ProtocolError(400, f"pseudo-header field {_text(name)} not allowed here")
            pseudo[name] = value
            continue
        length = len(name) + len(value)
        if length > field_limit:
            raise ProtocolError(431, "header field too large")
        size += length + 4
        values.append(value)
        kind = _NAME_KINDS.known.get(name)
        if kind is None:
            kind = _name_kind(name)
        if kind:
            if kind == _COOKIE:
                cookies.append(value)
                continue
            special.append((kind, name, value))
        headers.append((name, value))
    _check_values(values)
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    if len(headers) > limits.fields:
        raise ProtocolError(431, "too many header fields")
    method, target = _method_and_target(pseudo, limits)
    if size + len(target) > limits.head:  # (HTTP/1.1 counts the target too)
        raise ProtocolError(431, "request header block too large")
    authority = pseudo.get(b":authority")
    if authority is not None:
        check_host(authority)  # (which refuses userinfo: no "@" in a host)
    expect_continue = forwarded = False
    if special:
        expect_continue, forwarded = _check_special(special, authority, limits)
    if authority is not None and not any(kind == _HOST for kind, _, _ in special):
        headers.insert(0, (b"host", authority))
    if method != "CONNECT":
        path, query = split_target(method, target)
    elif b":protocol" in pseudo:  # an extended CONNECT's :path is a path (RFC 8441)
        path, _, query = target.partition(b"?")
    else:
        path, query = b"", b""
    return Request(method, target, path, query, HTTP_VERSION, headers, True,
                   expect_continue, False, forwarded)


def _check_special(special: list[tuple[int, bytes, bytes]], authority: bytes | None,
                   limits: Limits) -> tuple[bool, bool]:
    """The rules on the fields they look at: Host against :authority, one Content-Length
    within the body limit, TE, the singletons; (expect 100-continue, forwarded)."""
    hosts = [value for kind, _, value in special if kind == _HOST]
    if len(hosts) > 1:
        raise ProtocolError(400, "a request needs at most one Host header")
    if hosts:
        check_host(hosts[0])
        if authority is not None and hosts[0].lower() != authority.lower():
            raise ProtocolError(400, "Host differs from :authority")
    lengths = [value for kind, _, value in special if kind == _CONTENT_LENGTH]
    if lengths:
        length = content_length(lengths)
        if limits.body and length > limits.body:
            raise ProtocolError(413, f"request body larger than {limits.body} bytes")
    singletons = [name for kind, name, _ in special if kind == _SINGLETON]
    if len(singletons) > 1:
        check_singletons(singletons)
    expect_continue = forwarded = False
    for kind, name, value in special:
        if kind == _TE and is_connection_specific(name, value):
            raise ProtocolError(400, "TE other than trailers in HTTP/2")
        if kind == _EXPECT:
            expect_continue = value.lower() == b"100-continue"
        forwarded = forwarded or kind == _FORWARDED
    return expect_continue, forwarded


# The kinds of regular field names; 0: one the rules do not look at.
_ORDINARY: Final = 0
_COOKIE: Final = 1
_HOST: Final = 2
_CONTENT_LENGTH: Final = 3
_SINGLETON: Final = 4
_EXPECT: Final = 5
_FORWARDED: Final = 6
_TE: Final = 7
_SPECIAL_NAMES: Final = {b"cookie": _COOKIE, b"host": _HOST, b"content-length": _CONTENT_LENGTH,
                         b"expect": _EXPECT, b"te": _TE, **dict.fromkeys(SINGLETONS, _SINGLETON),
                         **dict.fromkeys(_FORWARDED_NAMES, _FORWARDED)}
# Names already found valid, with their kind: they repeat on every request.
_NAME_KINDS: Final[Memo[bytes, int]] = Memo(4096)


def _name_kind(name: bytes) -> int:
    """A regular field name's kind; ProtocolError(400) for a name HTTP/2 refuses."""
    if not is_field_name(name) or name.translate(None, _UPPER) != name:
        raise ProtocolError(400, "invalid header field name")
    if name in CONNECTION_SPECIFIC:
        raise ProtocolError(400, f"connection-specific field {_text(name)} in HTTP/2")
    return _NAME_KINDS.remember(name, _SPECIAL_NAMES.get(name, _ORDINARY))


def _check_values(values: list[bytes]) -> None:
    """Every value a field value (`fields.is_field_value`) with no space or tab at
    either end (RFC 9113 section 8.2.1): one scan of them all, joined by NULs,
    which no valid value holds."""
    if not values:
        return
    joined = b"\0" + b"\0".join(values) + b"\0"
    if _BAD_VALUE(joined) is not None or joined.count(0) != len(values) + 1:
        raise ProtocolError(400, "invalid header field value")


def declared_length(request: Request) -> int | None:
    """The body length a validated request's Content-Length gives, or None."""
    values = [value for name, value in request.headers if name == b"content-length"]
    return content_length(values) if values else None


def extended_protocol(fields: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The :protocol of an extended CONNECT (RFC 8441), e.g. b"websocket"."""
    for name, value in fields:
        if name == b":protocol":
            return value
        if name[:1] != b":":
            return None
    return None


class BodyCount:
    """A stream's DATA against its Content-Length and --limit-request-body
    (RFC 9113 section 8.1.1: a mismatch makes the request malformed)."""

    __slots__ = ("declared", "received", "limit")

    def __init__(self, declared: int | None, limit: int) -> None:
        self.declared = declared
        self.received = 0
        self.limit = limit  # 0: none

    def arrived(self, size: int) -> None:
        """Raises ProtocolError: 400 past Content-Length, 413 past the limit."""
        self.received += size
        if self.declared is not None and self.received > self.declared:
            raise ProtocolError(400, "more DATA than Content-Length")
        if self.limit and self.received > self.limit:
            raise ProtocolError(413, f"request body larger than {self.limit} bytes")

    def ended(self) -> None:
        """Raises ProtocolError(400) if the stream ended short of Content-Length."""
        if self.declared is not None and self.received != self.declared:
            raise ProtocolError(400, "less DATA than Content-Length")


def _method_and_target(pseudo: dict[bytes, bytes], limits: Limits) -> tuple[str, bytes]:
    raw_method = pseudo.get(b":method")
    if not raw_method or not is_field_name(raw_method):
        raise ProtocolError(400, "missing or invalid :method")
    method = raw_method.decode("ascii")
    protocol = pseudo.get(b":protocol")
    if method == "CONNECT" and protocol is None:
        # A plain CONNECT names only the authority (RFC 9113 section 8.5).
        if b":scheme" in pseudo or b":path" in pseudo:
            raise ProtocolError(400, "CONNECT takes neither :scheme nor :path")
        target = pseudo.get(b":authority")
        if not target:
            raise ProtocolError(400, "CONNECT needs :authority")
        check_authority_form(target)  # (host and port, as HTTP/1.1's)
    else:
        if protocol is not None and method != "CONNECT":
            raise ProtocolError(400, ":protocol is for an extended CONNECT only")
        target = pseudo.get(b":path", b"")
        scheme = pseudo.get(b":scheme")
        if not target or not scheme:
            raise ProtocolError(400, "a request needs :scheme and a non-empty :path")
        if target == b"*" and method != "OPTIONS":
            raise ProtocolError(400, "only OPTIONS may have the target '*'")
        if not (target[:1] == b"/" or target == b"*") or not _VISIBLE_ASCII(target):
            raise ProtocolError(400, "invalid :path")  # (the origin form, as HTTP/1.1's)
    max_line = limits.request_line or limits.head
    if len(method) + len(target) + 10 > max_line:  # gunicorn's count, as HTTP/1.1's line
        raise ProtocolError(414, "request line too long")
    return method, target


def _text(name: bytes) -> str:
    return name.decode("latin-1")


def h2c_settings(request: Request) -> bytes | None:
    """The SETTINGS payload of a request that asks to upgrade to h2c (`Upgrade:
    h2c` and one HTTP2-Settings field, base64url), or None when it asks for no
    such thing, or has a body (the switch would wait for it: such a request is
    answered in HTTP/1.1, as the RFC allows)."""
    upgrade = settings = None
    for name, value in request.headers:
        if name == b"upgrade":
            upgrade = value
        elif name == b"http2-settings":
            if settings is not None:
                return None
            settings = value
        elif name in (b"content-length", b"transfer-encoding") and value.strip() != b"0":
            return None
    if upgrade is None or settings is None or upgrade.strip().lower() != b"h2c":
        return None
    value = settings.strip()
    try:  # (validate: urlsafe_b64decode would drop what is not base64url, silently)
        payload = base64.b64decode(value + b"=" * (-len(value) % 4), altchars=b"-_",
                                   validate=True)
    except (binascii.Error, ValueError):
        return None
    return payload if len(payload) % 6 == 0 else None


def upgraded_request(request: Request) -> Request:
    """An HTTP/1.1 request that upgraded to h2c, as stream 1 carries it: HTTP/2,
    without the fields that were about the HTTP/1.1 connection."""
    headers = [(name, value) for name, value in request.headers
               if name != b"http2-settings" and not is_connection_specific(name, value)]
    return request._replace(http_version=HTTP_VERSION, headers=headers, keep_alive=True,
                            upgrade=False)
