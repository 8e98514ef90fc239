"""Request side of the core: bytes in, events out.

Theory of operation. A driver owns the socket. It calls `feed(data)` with
whatever it read (or `feed_eof()` when the peer closed); each call returns
the events those bytes completed. One connection's events come strictly in
arrival order:

    Request  (Data)*  EndOfMessage   Request ...   [ProtocolError | ConnectionClosed]

llhttp (through httptools) checks the syntax of request heads and
tokenises them; the rules where llhttp is more lenient than RFC 9110/9112
(Host, Transfer-Encoding codings, target forms, versions) and the framing
decision are ours (`_frame_body`). Two paths share those rules:

* STREAM, the fast path: llhttp is fed whole reads and frames heads,
  Content-Length bodies and pipelined requests by itself. It hands a read
  over to the careful path when a head in it has a Transfer-Encoding field
  or an error (the read is parsed again from its start, nothing of it
  having been delivered), and when a head spans two reads.
* The careful path: bytes are buffered until the blank line that ends the
  head; llhttp sees each piece of the head as it arrives (so garbage, bare
  LF or a bad method is refused at once) but never a byte past it. Bodies
  are framed here: Content-Length, and chunked (RFC 9112 section 7.1),
  which is decoded here because llhttp is stricter than the RFC about chunk
  extensions and refuses framing fields in trailers, which the RFC says to
  drop.

A syntax error or a broken limit becomes a `ProtocolError` carrying the
status to answer, after every event before it; the parser then ignores
further input. Memory is bounded whatever the client sends: heads,
chunk-size lines and trailers are capped, and body bytes are handed out as
they arrive.

The parser is also the connection's HTTP state, so the decisions a driver
would otherwise make are its answers (as h11 keeps 100-continue and
keep-alive in its connection state): whether to send 100 Continue, whether
an unread body may be skipped, whether the client may still be sending
(so closing must linger), and which 408 a timeout gets. The first two are
about the message being received now, so a driver asks them only while the
parser has not passed the end of the request being answered (its
EndOfMessage not returned yet): once it has, they may be about a pipelined
request that follows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import httptools

from hybrid.protocol.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
)
from hybrid.protocol.response import CONTINUE


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


DEFAULT_LIMITS = Limits()

# States. STREAM: llhttp frames everything. The others are the careful path;
# _LENGTH to _TRAILERS, in this order, are inside a body.
(_STREAM, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _PAUSED,
 _BAD_METHOD) = range(9)

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_IS_TOKEN = re.compile(_TOKEN + rb"\Z").match
_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_QUOTED = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# RFC 9112 section 7.1: whitespace (BWS) only around a chunk extension's ";" and
# "=", never at the end of the line ("5 " is as malformed as " 5").
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*" + _TOKEN +
    rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*\Z").match
_FIELD_VALUE_OK = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z").match
_REG_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:"
_COLON = ord(":")
_HOST_OK = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z").match
MAX_CHUNK_LINE = 4096
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
"""A lingering close drops input for at most this long, and this much."""
STOP_IDLE_GRACE = 1.0
"""When a worker stops, a kept-alive idle connection waits this long (at most
--keep-alive) for a next request, served with Connection: close, before its
lingering close: a busy client sends its next request within microseconds of
an answer, and would otherwise meet the close on the way (measured: 5 failed
requests in ~2,000 under --max-requests with 4 looping clients)."""
UNKNOWN_LENGTH = -1
"""`body_to_gather()` of a chunked body: more may come, how much is unknown."""
MAX_CHUNK_SIZE_DIGITS = 15  # 16 hex digits could wrap a signed 64-bit size elsewhere

# Fields a trailer must not carry: those that could change how the message is
# framed (Content-Length, Transfer-Encoding, Trailer), where it is routed (Host),
# or what the connection does (the hop-by-hop ones). A 400, as gunicorn answers,
# not dropped: a trailer that tries to reframe or re-route a request is an attack,
# not a slip. Any other field is accepted and never merged into the header section
# (RFC 9110 section 6.5.2), even one section 6.5.1 tells senders not to put there
# (Content-Type, Authorization, Cookie, Range, If-*...): a recipient that does not
# merge it has nothing to fear from it.
_FORBIDDEN_TRAILERS = frozenset({
    b"content-length", b"transfer-encoding", b"trailer", b"host",
    b"connection", b"keep-alive", b"upgrade", b"te",
})
# Fields that are not lists (RFC 9110 section 5.3): sent twice, a request is a
# 400 (Host and Content-Length have rules of their own).
_SINGLETONS = frozenset({b"content-type", b"authorization", b"proxy-authorization"})
_END_NO_TRAILERS = EndOfMessage(())
# Request(...) and Data(...) run a Python-level __new__; this builds the same tuples in C.
_new_event = tuple.__new__
_HASH = ord("#")
# Any method but CONNECT frames a request the same way (RFC 9112 section 6).
_STAND_IN = b"GET"
# What llhttp accepts of a method before it knows it is not one of its own.
_METHOD_PREFIX_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"  # (GET_PARAMETER is RTSP's)


class _NeedMore(Exception):
    """Internal: stop the careful path until more bytes arrive."""


class _HandOver(Exception):
    """Internal: the fast path stops at this head; the careful path parses the read again."""


class _Restart(Exception):
    """Internal: the buffered head is to be parsed again from its start."""


class RequestParser:
    """A sans-IO HTTP/1.1 request parser for one connection."""

    __slots__ = ("limits", "_head_limit", "_max_target", "_max_line", "_max_field_line", "_max_fields",
                 "_method", "_method_read", "_events", "_state", "_failed",
                 "_buffer", "_llhttp", "_llhttp_idle", "_fed", "_head_seen", "_remaining",
                 "_body_size", "_body_limit", "_feed_size", "_read", "_careful", "_in_head", "_upgrade", "_target",
                 "_headers", "_hosts", "_valid_host", "_lengths", "_codings",
                 "_expect_continue", "_continue_due", "_forwarded", "_trailers",
                 "_trailer_bytes", "_singletons", "__weakref__")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._head_limit = limits.head
        head_limit = self._head_limit
        self._max_line = limits.request_line or head_limit
        # While a target streams in, the shortest method and version it could have.
        self._max_target = self._max_line - len(b"X  HTTP/1.1")
        self._max_field_line = limits.field_size or head_limit
        self._max_fields = limits.fields
        self._method: str | None = None  # an unknown method's name (llhttp saw a stand-in)
        # A fast-path read that ended in a method, and its events: where the method began.
        self._method_read: tuple[bytes, list[Event]] | None = None
        self._events: list[Event] = []
        self._state = _STREAM
        self._failed = False
        self._buffer = b""  # careful path: bytes not parsed yet
        self._llhttp: httptools.HttpRequestParser | None = None
        self._llhttp_idle = True  # llhttp sits between messages, ready for the next
        self._fed = 0  # careful path: bytes of the buffered head llhttp has seen
        self._head_seen = 0  # head bytes before the buffer (a head that began streaming)
        self._remaining = 0  # body bytes still due
        self._body_size = 0
        self._feed_size = 0  # size of the bytes llhttp is parsing now
        self._read = b""  # fast path: the bytes llhttp is parsing now
        self._body_limit = limits.body
        self._careful = False  # llhttp is fed by the careful path (else by the fast one)
        self._in_head = False
        self._upgrade = False
        self._target: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._hosts = 0
        self._valid_host = b"\0"  # the last Host value found valid (never a valid one)
        self._lengths: tuple[bytes, ...] = ()
        self._singletons: tuple[bytes, ...] = ()  # the singleton fields' names, as they came
        self._codings: tuple[bytes, ...] = ()
        self._expect_continue = False
        self._continue_due = False  # the body being received waits for a 100 Continue
        self._forwarded = False
        self._trailers: list[tuple[bytes, bytes]] = []
        self._trailer_bytes = 0

    # --- driver API --------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data` and return the events it completed."""
        events = self._events = []
        if self._failed or not data:
            return events
        try:
            if self._state == _STREAM:
                if self._llhttp_idle:
                    self._stream(data)
                else:
                    self._stream_read(data)
            else:
                self._buffer = self._buffer + data if self._buffer else data
                self._advance()
        except ProtocolError as error:
            self._fail(error)
        return events

    def feed_eof(self) -> list[Event]:
        """The peer closed its sending side; return the final event."""
        events = self._events = []
        if self._failed:
            return events
        if self.in_message:
            self._fail(ProtocolError(400, "connection closed in the middle of a request"))
        else:
            events.append(ConnectionClosed())
            self._failed = True
        return events

    def take_unparsed(self) -> bytes:
        """Switch protocols: hand over the bytes that followed the Upgrade request."""
        data, self._buffer = self._buffer, b""
        self._failed = True
        return data

    def resume(self) -> list[Event]:
        """Go on with HTTP after an Upgrade or CONNECT request that was not switched."""
        events = self._events = []
        if self._state == _PAUSED and not self._failed:
            self._state = _HEAD
            try:
                self._advance()
            except ProtocolError as error:
                self._fail(error)
        return events

    @property
    def in_message(self) -> bool:
        """Part of a request has arrived and its end has not."""
        if self._state == _STREAM:
            return not self._llhttp_idle
        return self._state != _PAUSED and (self._state != _HEAD or bool(self._buffer))

    @property
    def failed(self) -> bool:
        """A ProtocolError or ConnectionClosed ended the stream."""
        return self._failed

    @property
    def body_remaining(self) -> int | None:
        """Bytes of the body being received still to come: None for a chunked body,
        whose size is unknown; 0 outside a body."""
        if self._state == _HEAD or self._in_head or not self.in_message:
            return 0
        return None if self._codings else self._remaining

    # --- the connection's HTTP decisions ----------------------------------------------

    def body_to_gather(self) -> int | None:
        """Inside a body not complete yet: how many of its bytes are still due, if
        the server may wait for them before it hands the request over (the thread
        class does, for small bodies, so that a slow client costs no thread);
        UNKNOWN_LENGTH for a chunked body, whose size its last chunk tells (the
        server gathers it while it stays within its own bound). None when it may
        not: the client holds the body back until the app asks for it (100
        Continue)."""
        if self._continue_due:
            return None
        remaining = self.body_remaining
        return UNKNOWN_LENGTH if remaining is None else remaining

    def continue_response(self, response_started: bool) -> bytes:
        """Before the app's first read of an incomplete body: the 100 Continue to
        send, or b"". Due only while the client holds its body back for one (none of
        it has come) and no answer has begun; said once."""
        if not self._continue_due:
            return b""
        self._continue_due = False
        return b"" if response_started else CONTINUE

    @property
    def body_rest(self) -> int | None:
        """Bytes of the body being received not parsed yet, as skipping it after the
        answer would have to read them (`persistence.may_persist`'s `rest`): None
        when unknown (chunked) or not the server's to skip (the client holds the
        body back for a 100 Continue: whether it sends it now is its choice)."""
        return None if self._continue_due else self.body_remaining

    @property
    def client_may_be_sending(self) -> bool:
        """Closing now must linger: the client may still be sending (a request is
        under way, or the stream stopped being read as HTTP: an error, a switch of
        protocols). Closing with unread input makes the kernel send RST, which can
        destroy the last answer before the client reads it."""
        return self.in_message or self._failed

    def timeout_error(self) -> ProtocolError:
        """The 408 for a client too slow with what it sends now: a head, or a body."""
        state = self._state
        if (_LENGTH <= state <= _TRAILERS if state != _STREAM
                else not self._llhttp_idle and not self._in_head):
            return ProtocolError(408, "the request body stalled")
        return ProtocolError(408, "the client was too slow to send the request")

    # --- the fast path -----------------------------------------------------------------

    def _stream_read(self, data: bytes) -> None:
        """A read that starts inside a Content-Length body."""
        body_left = self._remaining
        if body_left >= len(data):
            self._stream(data)
            return
        self._stream(data[:body_left])
        data = data[body_left:]
        if self._state != _STREAM:  # an upgrade paused the parser
            self._buffer += data
            return
        self._stream(data)

    def _stream(self, data: bytes) -> None:
        """Let llhttp frame `data`, which starts at a message boundary or is all body."""
        parser = self._llhttp
        if parser is None:
            parser = self._llhttp = httptools.HttpRequestParser(self)
        self._feed_size = len(data)
        self._read = data
        first = len(self._events)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._llhttp = None
            self._buffer = data[exc.args[0]:]
            self._state = _PAUSED
            return
        except httptools.HttpParserError:
            failed = True
        else:
            failed = False
        if failed:
            # Outside the except block, so the careful path's errors carry no context.
            del self._events[first:]  # not delivered yet: the careful path redoes them
            self._recover_carefully(data)
            return
        if self._in_head:
            if self._target:  # (before it, "PRI" may be the start of another method)
                self._refuse_http2_preface()
            # The head goes on in the next read, which might bring a
            # Transfer-Encoding field: finish it on the careful path.
            self._head_seen = sum(map(len, self._target)) + sum(
                len(name) + len(value) + 4 for name, value in self._headers)
            self._buffer = data[-3:]  # enough to find a blank line split by the reads
            self._fed = len(self._buffer)
            self._state = _HEAD
            if not self._target:  # a method unknown to llhttp needs its first bytes
                self._method_read = (data, self._events[first:])

    def _recover_carefully(self, data: bytes) -> None:
        """Parse `data` again on the careful path after the fast path stopped in it.

        The fast path stops at a Transfer-Encoding field (chunked bodies are
        decoded on the careful path) and at any error, because it cannot
        tell where in a read the failing request began, which decides
        what follows (a method llhttp does not know is parsed again with a
        stand-in; garbage is a 400). `data` starts
        at a message boundary and none of its events were delivered.
        """
        self._llhttp = None
        self._llhttp_idle = True
        self._in_head = False
        self._state = _HEAD
        self._buffer = data
        self._fed = 0
        self._method_read = None
        self._advance()

    # --- the careful path --------------------------------------------------------------

    def _advance(self) -> None:
        """Run the careful path over the buffer; hand back to the fast path when it is empty."""
        while self._buffer:
            state = self._state
            if state == _HEAD or state == _STREAM:
                if not self._parse_head():
                    return
            elif state == _LENGTH or state == _CHUNK_DATA:
                self._pass_body()
            elif state == _CHUNK_SIZE:
                if not self._parse_chunk_size():
                    return
            elif state == _CHUNK_END:
                if len(self._buffer) < 2:
                    return
                if self._buffer[:2] != b"\r\n":
                    raise ProtocolError(400, "chunk data longer than its chunk size")
                self._buffer = self._buffer[2:]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                if not self._parse_trailer_line():
                    return
            elif state == _BAD_METHOD:
                try:
                    self._stand_in_method()
                except _NeedMore:
                    return
                except _Restart:
                    continue
            else:
                return
        if self._state == _HEAD and self._fed == 0:
            self._state = _STREAM

    def _parse_head(self) -> bool:
        self._state = _HEAD
        buffer = self._buffer
        if self._fed == 0 and buffer[:2] == b"\r\n":
            # RFC 9112 section 2.2: ignore empty lines before a request-line.
            buffer = self._buffer = buffer.lstrip(b"\r\n")
            if not buffer:
                return False
        end = buffer.find(b"\r\n\r\n", max(0, self._fed - 3))
        try:
            if end < 0:
                if self._head_seen + len(buffer) > self._head_limit:
                    raise ProtocolError(431, "request header block too large")
                self._feed_head(buffer[self._fed:], len(buffer))
                self._fed = len(buffer)
                return False
            end += 4
            if self._head_seen + end > self._head_limit:
                raise ProtocolError(431, "request header block too large")
            self._feed_head(buffer[self._fed:end], self._head_seen + end)
        except _NeedMore:
            return False
        except _Restart:
            return True  # the buffer holds the head again, for a fresh llhttp
        self._method_read = None
        if self._in_head:
            self._refuse_http2_preface()
            raise ProtocolError(400, "malformed request head")
        self._buffer = buffer[end:]
        self._fed = 0
        self._head_seen = 0
        if not self._llhttp_idle:
            self._llhttp = None  # it waits for a body it will never see
        return True

    def _refuse_http2_preface(self) -> None:
        # llhttp pauses silently on "PRI * HTTP/2.0", the HTTP/2 preface.
        if self._llhttp is not None and self._llhttp.get_method() == b"PRI":
            raise ProtocolError(505, "HTTP/2 is not served here; use HTTP/1.1")

    def _feed_head(self, data: bytes, head_size: int) -> None:
        self._feed_size = head_size
        self._careful = True
        try:
            self._feed_llhttp(data)
        except httptools.HttpParserUpgrade:
            self._llhttp = None  # paused for good; the framing here goes on
        finally:
            self._careful = False

    def _feed_llhttp(self, data: bytes) -> None:
        parser = self._llhttp
        if parser is None:
            parser = self._llhttp = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, ProtocolError):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserUpgrade:
            raise
        except httptools.HttpParserInvalidMethodError:
            pass
        except httptools.HttpParserError as exc:
            detail = str(exc) or "malformed request"
            if detail == "Invalid HTTP version":
                raise ProtocolError(505, "this server speaks HTTP/1.0 and HTTP/1.1") from None
            if detail == "Expected HTTP/2 Connection Preface":
                # The method PRI: the same answer as for the preface, however it was split.
                raise ProtocolError(505, "HTTP/2 is not served here; use HTTP/1.1") from None
            raise ProtocolError(400, detail) from None
        else:
            return
        self._stand_in_method()  # (outside the except block: no context on what it raises)

    def _stand_in_method(self) -> None:
        """llhttp refused the method, knowing a fixed list. Any token is a method
        (RFC 9110 section 9.1): the head is parsed again from its start by a fresh
        llhttp with a stand-in it knows, which frames a request as every method
        but CONNECT does, and the request keeps the real name. Not a token: 400.

        Raises _Restart with the buffer ready for that, or _NeedMore while
        every byte so far may belong to the method (the next one decides).
        """
        head = self._head_from_start()
        method = head[:len(head) - len(head.lstrip(_TCHARS))]
        after = head[len(method):len(method) + 1]
        if not after and method:
            if len(method) > self._max_line:
                raise ProtocolError(414, "request line too long")
            # Found once: the buffer holds the head from its start from now on.
            self._buffer, self._method_read, self._head_seen = head, None, 0
            self._state = _BAD_METHOD
            raise _NeedMore
        if not method or after != b" ":
            raise ProtocolError(400, "invalid request method")
        self._method = method.decode("ascii")
        self._buffer = _STAND_IN + head[len(method):]
        self._head_seen = len(method) - len(_STAND_IN)  # the head's size as the client sent it
        self._method_read = None
        self._llhttp = None
        self._llhttp_idle = True
        self._fed = 0
        self._state = _HEAD
        raise _Restart

    def _head_from_start(self) -> bytes:
        """The head being parsed, from its first byte (CR/LF before it skipped)."""
        buffer = self._buffer
        if self._method_read is not None:
            read, events = self._method_read
            kept = len(read[-3:])  # the buffer began with these bytes of the read
            buffer = read[_last_message_start(read, events):] + buffer[kept:]
        return buffer.lstrip(b"\r\n")

    def _pass_body(self) -> None:
        buffer = self._buffer
        remaining = self._remaining
        if len(buffer) <= remaining:
            data, self._buffer = buffer, b""
        else:
            data, self._buffer = buffer[:remaining], buffer[remaining:]
        self._remaining = remaining - len(data)
        self._continue_due = False  # the client did not wait for it
        self._events.append(Data(data))
        if self._remaining:
            return
        if self._state == _CHUNK_DATA:
            self._state = _CHUNK_END
        else:
            self._end_careful_message(_END_NO_TRAILERS)

    def _parse_chunk_size(self) -> bool:
        buffer = self._buffer
        eol = buffer.find(b"\r\n")
        if eol < 0:
            if len(buffer) > MAX_CHUNK_LINE or b"\n" in buffer:
                raise ProtocolError(400, "invalid chunk size line")
            return False
        match = _CHUNK_LINE(buffer[:eol])
        if match is None:
            raise ProtocolError(400, "invalid chunk size line")
        digits = match.group(1).lstrip(b"0")
        if len(digits) > MAX_CHUNK_SIZE_DIGITS:
            raise ProtocolError(400, "chunk size too large")
        size = int(digits or b"0", 16)
        self._buffer = buffer[eol + 2:]
        if size == 0:
            self._state = _TRAILERS
            return True
        self._count_body(size)
        self._remaining = size
        self._state = _CHUNK_DATA
        return True

    def _parse_trailer_line(self) -> bool:
        buffer = self._buffer
        eol = buffer.find(b"\r\n")
        if eol < 0:
            if b"\n" in buffer:
                raise ProtocolError(400, "invalid trailer field")
            if len(buffer) + self._trailer_bytes > self._head_limit:
                raise ProtocolError(431, "trailer section too large")
            return False
        line = buffer[:eol]
        self._buffer = buffer[eol + 2:]
        if not line:
            self._end_careful_message(EndOfMessage(tuple(self._trailers)))
            return True
        self._trailer_bytes += eol + 2
        if self._trailer_bytes > self._head_limit or len(self._trailers) >= self.limits.fields:
            raise ProtocolError(431, "trailer section too large")
        name, colon, value = line.partition(b":")
        if not colon or not _IS_TOKEN(name) or not _FIELD_VALUE_OK(value):
            raise ProtocolError(400, "invalid trailer field")
        if name.lower() in _FORBIDDEN_TRAILERS:
            raise ProtocolError(400, f"{name.decode('ascii')} is not allowed in a trailer")
        self._trailers.append((name, value.strip(b" \t")))
        return True

    def _end_careful_message(self, end: EndOfMessage) -> None:
        self._continue_due = False
        self._events.append(end)
        self._llhttp_idle = True  # between messages: the next read starts a new one
        self._state = _PAUSED if self._upgrade else _HEAD

    def _count_body(self, size: int) -> None:
        self._body_size += size
        if self._body_limit and self._body_size > self._body_limit:
            raise ProtocolError(413, f"request body larger than {self.limits.body} bytes")

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._events.append(error)

    # --- llhttp callbacks ---------------------------------------------------------------

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
        target = self._target
        target.append(piece)
        limit = self._max_target
        if len(piece) > limit or (len(target) > 1 and sum(map(len, target)) > limit):
            raise ProtocolError(414, "request line too long")  # at least (exactly: below)

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
            if name == b"host":
                self._hosts += 1
                if value != self._valid_host:  # a keep-alive client names the same one
                    self._check_host(value)
            elif name == b"content-length":
                self._lengths += (value,)
            elif name in _SINGLETONS:
                self._singletons += (name,)
            else:
                _FIELD_HANDLERS[name](self, value)

    def _check_host(self, value: bytes) -> None:
        # The common case in C: only reg-name characters, and no colon, or one
        # before a port of digits (RFC 3986: port = *DIGIT); the rest, the regex.
        if value.translate(None, _REG_NAME_CHARS) or (
                _COLON in value
                and (value.count(b":") > 1 or not value.rpartition(b":")[2].isdigit())):
            if not _HOST_OK(value):
                raise ProtocolError(400, "invalid Host header")
        self._valid_host = value

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
        headers = self._headers
        if len(headers) > self._max_fields:
            raise ProtocolError(431, "too many header fields")
        if self._careful or self._feed_size > self._max_field_line:
            # A smaller whole head cannot break these limits; a split one may
            # have begun in a read whose bytes the careful path did not count.
            self._check_large_head(headers)
        if self._events or self._careful:
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
        if hosts != 1 and (hosts or version == "1.1"):
            raise ProtocolError(400, "an HTTP/1.1 request needs exactly one Host header")
        singletons = self._singletons
        if len(singletons) > 1 and len(set(singletons)) < len(singletons):
            raise ProtocolError(400, "a field that is not a list was sent twice")
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
            path, query = _split_target(method, target)
        # Framing is decided, and may refuse, before the Request is queued.
        lengths = self._lengths
        if self._codings:
            body_state = self._frame_body(version)
        elif not lengths:
            body_state = _HEAD
        elif len(lengths) == 1 and lengths[0].isdigit() and len(lengths[0]) <= 18 \
                and not self._body_limit:
            # The common case inline: one plain length and no body limit.
            self._remaining = int(lengths[0])
            body_state = _LENGTH if self._remaining else _HEAD
        else:
            body_state = self._frame_body(version)
        upgrade = parser.should_upgrade()
        if not self._careful and (body_state == _CHUNK_SIZE or (upgrade and body_state != _HEAD)):
            # Hand the read over to the careful path, which decodes chunked
            # bodies, and frames the body of an Upgrade request, which llhttp
            # would take for bytes of the new protocol.
            raise _HandOver
        self._upgrade = upgrade
        expect_continue = self._continue_due = self._expect_continue and version == "1.1"
        self._events.append(_new_event(Request, (
            method, target, path, query, version, headers, parser.should_keep_alive(),
            expect_continue, upgrade, self._forwarded)))
        if not self._careful:
            return  # llhttp frames the body and calls on_message_complete
        if body_state == _HEAD:
            self._end_careful_message(_END_NO_TRAILERS)
        else:
            self._state = body_state

    def _check_large_head(self, headers: list[tuple[bytes, bytes]]) -> None:
        # gunicorn counts the field line with its CRLF: "name: value\r\n".
        limit = self._max_field_line - len(b": \r\n")
        if any(len(name) + len(value) > limit for name, value in headers):
            raise ProtocolError(431, "header field too large")
        size = sum(map(len, self._target)) + sum(len(n) + len(v) + 4 for n, v in headers)
        if size > self._head_limit:
            raise ProtocolError(431, "request header block too large")

    def on_body(self, body: bytes) -> None:
        self._remaining -= len(body)
        self._continue_due = False  # the client did not wait for it
        self._events.append(_new_event(Data, (body,)))

    def on_message_complete(self) -> None:
        self._llhttp_idle = True
        self._continue_due = False
        if not self._careful:
            self._events.append(_END_NO_TRAILERS)

    def _frame_body(self, version: str) -> int:
        """Decide how this request's body is delimited (RFC 9112 section 6.3).

        Returns the state that reads it: _LENGTH, _CHUNK_SIZE, or _HEAD for none.
        """
        if self._codings:
            if self._lengths:
                raise ProtocolError(400, "both Transfer-Encoding and Content-Length")
            if version == "1.0":
                raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            codings = [c.strip(b" \t").lower() for c in b",".join(self._codings).split(b",")]
            if any(not _IS_TOKEN(c) for c in codings):
                raise ProtocolError(400, "invalid Transfer-Encoding")
            if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
                raise ProtocolError(400, "the final transfer coding must be chunked, once")
            if len(codings) > 1:
                raise ProtocolError(501, f"transfer coding {codings[0].decode()!r} not implemented")
            self._body_size = 0
            self._trailers = []
            self._trailer_bytes = 0
            return _CHUNK_SIZE
        lengths = self._lengths
        if lengths:
            value = lengths[0]
            if len(lengths) > 1 or not value.isdigit():
                values = {v.strip(b" \t") for v in b",".join(lengths).split(b",")}
                if len(values) != 1:
                    raise ProtocolError(400, "conflicting Content-Length values")
                (value,) = values
                if not value.isdigit():
                    raise ProtocolError(400, "invalid Content-Length")
            if len(value) > 18:
                raise ProtocolError(400, "invalid Content-Length")
            length = int(value)
            if length:
                self._body_size = 0
                self._count_body(length)
                self._remaining = length
                return _LENGTH
        return _HEAD


_FIELD_HANDLERS: dict[bytes, Callable[[RequestParser, bytes], None]] = {
    b"transfer-encoding": RequestParser._on_transfer_encoding,
    b"expect": RequestParser._on_expect,
    b"forwarded": RequestParser._on_forwarded,
    b"x-forwarded-for": RequestParser._on_forwarded,
    b"x-forwarded-proto": RequestParser._on_forwarded,
}
# The fields on_header looks at: these, and those it handles itself.
_SPECIAL_FIELDS = frozenset({b"host", b"content-length", *_SINGLETONS, *_FIELD_HANDLERS})
# Common fields the core does not look at, as browsers and clients spell them, and
# their lower-case names: one lookup instead of lower-casing and a membership test.
_PLAIN_NAMES = {spelling: name.lower() for name in (
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
_SPECIAL_SPELLINGS = {spelling: name for name in _SPECIAL_FIELDS
                      for spelling in (name, name.title())}
_VERSIONS = {b" HTTP/1.1": "1.1", b" HTTP/1.0": "1.0"}
_METHOD_NAMES = {method.encode(): method for method in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}


class _MessageCount:
    """llhttp callbacks that count the messages begun and not yet complete."""

    def __init__(self) -> None:
        self.open = 0

    def on_message_begin(self) -> None:
        self.open += 1

    def on_message_complete(self) -> None:
        self.open -= 1


def _ends_between_messages(data: bytes) -> bool:
    count = _MessageCount()
    try:
        httptools.HttpRequestParser(count).feed_data(data)
    except httptools.HttpParserError:
        return False
    return count.open == 0


def _last_message_start(read: bytes, events: list[Event]) -> int:
    """Where the message that `read` ends in began (CR/LF before it counted in).

    `read` is a fast-path read that began at a message boundary and ended
    before that message's target; `events` are the ones it completed.
    """
    if not events:
        return 0
    if type(events[-2]) is not Data:  # the message before has no body: it ends in a blank line
        return read.rfind(b"\r\n\r\n") + 4
    # Its body may end in bytes that look like the start of a method: the
    # message begins where a fresh parser of the read is between messages.
    tail = len(read) - len(read.rstrip(_METHOD_PREFIX_BYTES + b" \r\n"))
    for start in range(len(read), len(read) - tail - 1, -1):
        if _ends_between_messages(read[:start]):
            return start
    raise AssertionError("a fast-path read with no message boundary before its last head")


def _split_target(method: str, target: bytes) -> tuple[bytes, bytes]:
    """Path and query of the request-target, after checking its form fits the method."""
    if method == "CONNECT":
        if target[:1] == b"/" or b"/" in target or b":" not in target:
            raise ProtocolError(400, "CONNECT needs an authority-form target (host:port)")
        return b"", b""
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
    elif target == b"*":
        if method != "OPTIONS":
            raise ProtocolError(400, "the asterisk-form target is for OPTIONS only")
        return b"*", b""
    else:
        try:
            url = httptools.parse_url(target)
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
