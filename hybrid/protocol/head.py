"""llhttp's callbacks: a request head, from llhttp's pieces to a `Request`.

llhttp (through httptools, driven by parser.py) checks the syntax of a head
and calls back with its pieces: the target, each field line, the head's end,
body bytes and the message's end. `HeadReader` collects them, applies the
rules where llhttp is more lenient than RFC 9110/9112 (Host, Transfer-Encoding
codings, target forms, versions, the size limits), decides how the body is
framed, and queues the Request. The field rules themselves are fields.py's.

These callbacks run for every request, so the common fields are handled
inline rather than through a second call, and the work for a head is done
once, at its end. They serve both of the parser's paths, told apart by the
state (state.py): the fast path feeds llhttp only in STREAM, the careful one
only in HEAD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple, Protocol

import httptools

from hybrid.protocol.body_readers import END_NO_TRAILERS, ChunkedReader, ContentLengthReader
from hybrid.protocol.events import (
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    new_event_by_position,
)
from hybrid.protocol.fields import (
    SINGLETONS,
    check_authority_form,
    check_host,
    check_singletons,
    check_transfer_encoding,
    content_length,
)
from hybrid.protocol.state import BODY, HEAD, MUST_CLOSE, PAUSED, STREAM, UNKNOWN_LENGTH, ParserState


class Limits(NamedTuple):
    """Size limits for one request (gunicorn's names, defaults and counting).

    The head as a whole stays within `head` whatever they say, so 0 ("no
    limit of its own") still bounds memory.
    """

    request_line: int = 4094  # 414 beyond: "METHOD target HTTP/1.1", CRLF not counted; 0 = none
    fields: int = 100  # 431 beyond
    field_size: int = 8190  # 431 beyond: one "name: value" line with its CRLF; 0 = none
    body: int = 0  # 413 beyond; 0 = no limit

    @property
    def head(self) -> int:
        """The whole head (request line and header block): 431 beyond."""
        return max(65536, self.request_line + self.field_size + 4)


DEFAULT_LIMITS: Final = Limits()

_HASH: Final = ord("#")


class Llhttp(Protocol):
    """What these callbacks ask of llhttp's request parser (httptools'), which parser.py makes."""

    def get_http_version(self) -> str: ...
    def get_method(self) -> bytes: ...
    def should_keep_alive(self) -> bool: ...
    def should_upgrade(self) -> bool: ...
    def feed_data(self, data: bytes) -> None: ...


class _HandOver(Exception):
    """The fast path stops at this head; the careful path parses the read again.

    Raised by on_headers_complete, since raising is the one way a callback
    stops llhttp; the fast path takes any error llhttp raises for the same
    answer, so it is never caught by name.
    """


class HeadReader(ParserState):
    """llhttp's callbacks for one connection (`RequestParser` feeds llhttp)."""

    __slots__ = ("limits", "_head_limit", "_max_line", "_max_target", "_max_field_line",
                 "_max_fields", "_body_limit", "_llhttp_idle", "_in_head", "_method", "_target",
                 "_target_size", "_headers", "_hosts", "_host", "_valid_host", "_lengths", "_codings",
                 "_singletons", "_expect_continue", "_forwarded", "_upgrade", "_closes")
    # RequestParser's, which these callbacks read:
    _llhttp: Llhttp | None  # the llhttp parser calling them
    _events: list[Event]  # the events of the call under way
    _feed_size: int  # size of the bytes llhttp is parsing now
    _read: bytes  # fast path: the bytes llhttp is parsing now

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self._head_limit = limits.head
        head_limit = self._head_limit
        self._max_line = limits.request_line or head_limit
        # While a target streams in, the shortest method and version it could have.
        self._max_target = self._max_line - len(b"X  HTTP/1.1")
        self._max_field_line = limits.field_size or head_limit
        self._max_fields = limits.fields
        self._body_limit = limits.body
        self._llhttp_idle = True  # llhttp sits between messages, ready for the next
        self._in_head = False
        self._method: str | None = None  # an unknown method's name (llhttp saw a stand-in)
        self._target: list[bytes] = []
        self._target_size = 0  # the target's bytes so far, once it came in more than one piece
        self._headers: list[tuple[bytes, bytes]] = []
        self._hosts = 0
        self._host = b""  # the Host value (the last one, if several)
        self._valid_host = b"\0"  # the last Host value found valid (never a valid one)
        self._lengths: tuple[bytes, ...] = ()
        self._singletons: tuple[bytes, ...] = ()  # the singleton fields' names, as they came
        self._codings: tuple[bytes, ...] = ()
        self._expect_continue = False
        self._forwarded = False
        self._upgrade = False
        # The careful path's request (or the fast path's that paused) closes the
        # connection: its end leads to MUST_CLOSE rather than HEAD.
        self._closes = False

    def on_message_begin(self) -> None:
        self._llhttp_idle = False
        self._in_head = True
        self._target = []
        self._headers = []
        self._hosts = 0
        self._lengths = self._codings = self._singletons = ()
        self._expect_continue = False
        self._forwarded = False

    def on_url(self, piece: bytes) -> None:
        # llhttp calls it once a target has ended, and at the end of a read with
        # the part of it that came: a target that trickles in comes in many pieces.
        target = self._target
        target.append(piece)
        if len(target) == 1:  # the common case: the whole target at once
            size = len(piece)
        else:
            size = self._target_size = (
                self._target_size if len(target) > 2 else len(target[0])) + len(piece)
        if size > self._max_target:
            # At least too long (exactly: on_headers_complete); the careful path
            # feeds llhttp a read cut just past the target's first byte too many, so
            # this is said at that byte however the reads split (parser.py).
            raise ProtocolError(414, "request line too long")

    def _target_length(self) -> int:
        """The bytes of the target llhttp has called back with so far."""
        target = self._target
        return len(target[0]) if len(target) == 1 else self._target_size if target else 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every field of every request: the common fields are
        # handled inline, as a second Python call costs more than their work.
        lowered = _PLAIN_NAMES.get(name)
        if lowered is not None:  # a common field the core leaves alone, as commonly spelt
            self._headers.append((lowered, value.rstrip(b" \t")))
            return
        name = _SPECIAL_SPELLINGS.get(name) or name.lower()
        value = value.rstrip(b" \t")  # llhttp strips leading whitespace only
        self._headers.append((name, value))
        if name in _SPECIAL_FIELDS:
            if name == b"host":  # (checked with the head: on_headers_complete)
                self._hosts += 1
                self._host = value
            elif name == b"content-length":
                self._lengths += (value,)
            elif name in SINGLETONS:
                self._singletons += (name,)
            else:
                _FIELD_HANDLERS[name](self, value)

    def _on_transfer_encoding(self, value: bytes) -> None:
        self._codings += (value,)

    def _on_forwarded(self, value: bytes) -> None:
        self._forwarded = True  # proxy headers are read only when present

    def _on_expect(self, value: bytes) -> None:
        if value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._llhttp
        assert parser is not None  # (it is calling us)
        careful = self._state != STREAM
        headers = self._headers
        if len(headers) > self._max_fields:
            raise ProtocolError(431, "too many header fields")
        if careful or self._feed_size + len(headers) > self._max_field_line:
            # A head whole in a smaller read cannot break these limits (its count
            # is at most one byte a field above its raw size: "name:value\r\n"
            # counts 4 beyond name and value); a split one may have begun in a
            # read whose bytes the careful path did not count.
            self._check_large_head(headers)
        if self._events or careful:
            version = parser.get_http_version()
        else:
            # The read's first message (a rare leading CRLF aside): its request line
            # is the read's first line; a version cut out of it costs less than asking.
            # (With its space: "GET /xHTTP/1.1" is an HTTP/0.9 line to llhttp.)
            read = self._read
            end = read.find(b"\r\n")
            version = _VERSIONS.get(read[end - 9:end]) or parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(505, "this server speaks HTTP/1.0 and HTTP/1.1")
        hosts = self._hosts
        if hosts != 1:
            if hosts or version == "1.1":
                raise ProtocolError(400, "an HTTP/1.1 request needs exactly one Host header")
        elif self._host != self._valid_host:  # a keep-alive client names the same one
            # Checked here, not as the field comes: httptools hands a field over only
            # once the next one begins, which the reads' split decides (llhttp's
            # verdict on the lines between would come first in one read, not in two).
            check_host(self._host)
            self._valid_host = self._host
        if len(self._singletons) > 1:
            check_singletons(self._singletons)
        method = self._method
        if method is None:
            raw_method = parser.get_method()
            method = _METHOD_NAMES.get(raw_method) or raw_method.decode("ascii")
        else:
            self._method = None
        target = self._target[0] if len(self._target) == 1 else b"".join(self._target)
        if len(method) + len(target) + 10 > self._max_line:
            # gunicorn's count: the line without its CRLF ("HTTP/1.1" and two spaces: 10)
            raise ProtocolError(414, "request line too long")
        # (Membership of an int is many times cheaper than of a bytes.)
        if target[:1] == b"/" and method != "CONNECT" and _HASH not in target:
            path, _, query = target.partition(b"?")
        else:
            path, query = split_target(method, target)
        # Framing is decided, and may refuse, before the Request is queued.
        lengths = self._lengths
        if self._codings:
            length = self._frame_body(version)
        elif not lengths:
            length = 0
        elif len(lengths) == 1 and lengths[0].isdigit() and len(lengths[0]) <= 18 \
                and not self._body_limit:
            # content_length()'s common case inline: one plain value, and no body limit.
            length = int(lengths[0])
        else:
            length = self._frame_body(version)
        upgrade = parser.should_upgrade()
        if not careful and (length == UNKNOWN_LENGTH or (upgrade and length)):
            # Hand the read over to the careful path, which decodes chunked
            # bodies, and frames the body of an Upgrade request, which llhttp
            # would take for bytes of the new protocol.
            raise _HandOver
        self._upgrade = upgrade
        expect_continue = self._continue_due = self._expect_continue and version == "1.1"
        keep_alive = parser.should_keep_alive()
        self._events.append(new_event_by_position(Request, (
            method, target, path, query, version, headers, keep_alive,
            expect_continue, upgrade, self._forwarded)))
        self._closes = not keep_alive
        if not careful:
            # llhttp frames the body, on_body counts it; after a request that closes
            # the connection, llhttp refuses the next bytes (parser.py takes it up).
            self._remaining = length
            return
        if not length:
            self._end_careful_message(END_NO_TRAILERS)
        else:
            self._reader = ContentLengthReader(length) if length != UNKNOWN_LENGTH else \
                ChunkedReader(self._body_limit, self._head_limit, self._max_fields)
            self._state = BODY

    def _check_large_head(self, headers: list[tuple[bytes, bytes]]) -> None:
        # gunicorn counts the field line with its CRLF: "name: value\r\n".
        limit = self._max_field_line - len(b": \r\n")
        if any(len(name) + len(value) > limit for name, value in headers):
            raise ProtocolError(431, "header field too large")
        size = self._target_length() + sum(len(n) + len(v) + 4 for n, v in headers)
        if size > self._head_limit:
            raise ProtocolError(431, "request header block too large")

    def on_body(self, body: bytes) -> None:
        self._remaining -= len(body)
        self._continue_due = False  # the client did not wait for it
        self._events.append(new_event_by_position(Data, (body,)))

    def on_message_complete(self) -> None:
        self._llhttp_idle = True
        self._continue_due = False
        if self._state == STREAM:
            self._events.append(END_NO_TRAILERS)

    def _frame_body(self, version: str) -> int:
        """How this request's body is delimited (RFC 9112 section 6.3), for a head
        with Transfer-Encoding or Content-Length: its length (0: no body), or
        UNKNOWN_LENGTH for a chunked one."""
        if self._codings:
            if self._lengths:
                raise ProtocolError(400, "both Transfer-Encoding and Content-Length")
            if version == "1.0":
                raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            check_transfer_encoding(self._codings)
            return UNKNOWN_LENGTH
        length = content_length(self._lengths)
        if self._body_limit and length > self._body_limit:
            raise ProtocolError(413, f"request body larger than {self.limits.body} bytes")
        return length

    def _end_careful_message(self, end: EndOfMessage) -> None:
        """The careful path's message ended: with no body, or with its reader's end."""
        self._continue_due = False
        self._events.append(end)
        self._llhttp_idle = True  # between messages: the next read starts a new one
        self._state = PAUSED if self._upgrade else MUST_CLOSE if self._closes else HEAD


_FIELD_HANDLERS: Final[dict[bytes, Callable[[HeadReader, bytes], None]]] = {
    b"transfer-encoding": HeadReader._on_transfer_encoding,
    b"expect": HeadReader._on_expect,
    b"forwarded": HeadReader._on_forwarded,
    b"x-forwarded-for": HeadReader._on_forwarded,
    b"x-forwarded-proto": HeadReader._on_forwarded,
}
# The fields on_header looks at: these, and those it handles itself.
_SPECIAL_FIELDS: Final = frozenset({b"host", b"content-length", *SINGLETONS, *_FIELD_HANDLERS})
# Common fields the core does not look at, as browsers and clients spell them, and
# their lower-case names: one lookup instead of lower-casing and a membership test.
_PLAIN_NAMES: Final = {spelling: name.lower() for name in (
    b"User-Agent", b"Accept", b"Accept-Encoding", b"Accept-Language", b"Connection",
    b"Cookie", b"Referer", b"Origin", b"Cache-Control", b"Pragma", b"Upgrade-Insecure-Requests",
    b"Sec-Fetch-Site", b"Sec-Fetch-Mode", b"Sec-Fetch-User", b"Sec-Fetch-Dest", b"Sec-Ch-Ua",
    b"Sec-Ch-Ua-Mobile", b"Sec-Ch-Ua-Platform", b"DNT", b"Priority", b"If-None-Match",
    b"If-Modified-Since", b"X-Requested-With", b"X-Request-Id", b"X-Real-Ip",
    b"Keep-Alive", b"Upgrade", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version",
    b"Sec-WebSocket-Extensions", b"Sec-WebSocket-Protocol", b"Range", b"TE",
) for spelling in (name, name.lower())}
assert not _SPECIAL_FIELDS.intersection(_PLAIN_NAMES.values())
# The fields the core looks at, in their common spellings, lower-cased: Host is
# in every request, and a constant's hash is kept where a new name's is computed.
_SPECIAL_SPELLINGS: Final = {spelling: name for name in _SPECIAL_FIELDS
                             for spelling in (name, name.title())}
_VERSIONS: Final = {b" HTTP/1.1": "1.1", b" HTTP/1.0": "1.0"}
_METHOD_NAMES: Final = {method.encode(): method for method in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}


def split_target(method: str, target: bytes) -> tuple[bytes, bytes]:
    """Path and query of the request-target, after checking its form fits the method
    (an absolute-form target is read by llhttp's URL parser)."""
    if method == "CONNECT":
        check_authority_form(target)
        return b"", b""
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
    elif target == b"*":
        if method != "OPTIONS":
            raise ProtocolError(400, "the asterisk-form target is for OPTIONS only")
        return b"*", b""
    else:
        try:
            url: Any = httptools.parse_url(target)  # (its path and query may be None)
        except httptools.HttpParserInvalidURLError:
            raise ProtocolError(400, "invalid request target") from None
        if not url.schema or not url.host:
            raise ProtocolError(400, "invalid request target")
        path, query = url.path or b"/", url.query or b""
    if b"#" in path:
        path = path.partition(b"#")[0]
    elif b"#" in query:
        query = query.partition(b"#")[0]
    return path, query
