"""The request parser's states, in one table, and what they answer a driver.

`RequestParser` (parser.py) reads a connection's bytes on two paths (its
docstring says why): the fast one, where llhttp is fed whole reads and frames
what it can by itself, and the careful one, where heads are buffered and bodies
framed by our own readers. Between two calls it is in exactly one state:

    STREAM       Fast path, between requests: a read goes whole to llhttp, which
                 frames heads, Content-Length bodies and pipelined requests.
                 -> STREAM_BODY  the read ended inside a Content-Length body
                 -> HEAD         it ended inside a head; or llhttp stopped at a
                                 head it must not frame (Transfer-Encoding, an
                                 Upgrade with a body) or at an error: the
                                 careful path parses the read again from the
                                 start of that head
                 -> PAUSED       an Upgrade or CONNECT request ended
                 -> MUST_CLOSE   a read came after a request that closes the
                                 connection, which llhttp refused
    STREAM_BODY  Fast path, inside a Content-Length body llhttp frames
                 (`_remaining` bytes of it still due).
                 -> STREAM       its last byte came (the rest of the read goes
                                 on as in STREAM)
    HEAD         Careful path: the head is buffered up to its blank line; llhttp
                 sees each piece as it comes (garbage is refused at once), never
                 a byte past it.
                 -> BODY         the head ended, with a body
                 -> METHOD       llhttp refused the method
                 -> PAUSED       an Upgrade or CONNECT request with no body ended
                 -> MUST_CLOSE   a request that closes the connection, with no
                                 body, ended
                 -> STREAM       the buffer is empty, between requests
    METHOD       Careful path: llhttp refused the method, and every byte so far
                 may belong to one it does not know (any token is a method).
                 -> HEAD         the byte after the method came: the head is
                                 parsed again with a stand-in (or a 400)
    BODY         Careful path: `_reader` (body_readers.py: Content-Length or
                 chunked) takes the bytes.
                 -> HEAD         the body's end (PAUSED after an Upgrade request,
                                 MUST_CLOSE after one that closes the connection)
    PAUSED       After an Upgrade or CONNECT request: nothing is parsed until the
                 driver switches protocols (`take_unparsed`) or not (`resume`).
                 -> HEAD         resume() (MUST_CLOSE if the request closes the
                                 connection)
    MUST_CLOSE   After a request that closes the connection (Connection: close, or
                 HTTP/1.0 without keep-alive): RFC 9112 section 9.6 says the server
                 must not process a request that follows it, so none is read. CR
                 and LF are skipped, as between any two requests; any other byte
                 is a 400 (parser.py's `_refuse_after_close`, the one place that
                 decides it). The fast path stays in STREAM after such a request:
                 llhttp itself refuses what follows it, and hands over to here.

llhttp's callbacks (head.py) tell the paths apart by the state: the fast path
feeds llhttp only in STREAM, the careful one only in HEAD.

What stays a boolean, and why it is no state:

    _failed         The stream ended: a ProtocolError, ConnectionClosed, or a
                    switch of protocols; input is ignored from then on. The
                    state it ended in still answers the driver (`body_rest`,
                    `timeout_error`...) about the request being answered.
    _llhttp_idle,   Where llhttp itself is: between messages, inside a head.
    _in_head        Its callbacks keep them on both paths, and a path reads them
                    after a feed to learn where llhttp stopped.
    _continue_due   The body being received waits for a 100 Continue: in
                    STREAM_BODY or BODY alike, until body bytes come, the answer
                    begins or the body ends.
    _upgrade        The careful path's request asks to switch protocols: its end
                    leads to PAUSED rather than HEAD.
    _closes         The request being read, or the last one read, closes the
                    connection: on the careful path its end, or resume(), leads
                    to MUST_CLOSE rather than HEAD; on the fast path no more
                    whole requests are read before llhttp refuses what follows.

(`_expect_continue` and `_forwarded` are facts of the head being read, for its
Request.) One exception steers control: `_HandOver` (head.py), raised by a
callback because raising is the one way a callback stops llhttp: the fast path
stops at that head, and the careful path parses the read again. The careful
path says "more bytes first" and "parse the head again" with return values.

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

from typing import Final

from hybrid.protocol.body_readers import BodyReader
from hybrid.protocol.events import ProtocolError
from hybrid.protocol.response import CONTINUE

STREAM: Final = 0
STREAM_BODY: Final = 1
HEAD: Final = 2
METHOD: Final = 3
BODY: Final = 4
PAUSED: Final = 5
MUST_CLOSE: Final = 6

UNKNOWN_LENGTH: Final = -1
"""`body_to_gather()` of a chunked body: more may come, how much is unknown."""
LINGER_SECONDS: Final = 2.0
LINGER_BYTES: Final = 1 << 20
"""A lingering close drops input for at most this long, and this much."""
STOP_IDLE_GRACE: Final = 1.0
"""When a worker stops, a kept-alive idle connection waits this long (at most
--keep-alive) for a next request, served with Connection: close, before its
lingering close: a busy client sends its next request within microseconds of
an answer, and would otherwise meet the close on the way (measured: 5 failed
requests in ~2,000 under --max-requests with 4 looping clients)."""


class ParserState:
    """Where a `RequestParser` is in its connection's bytes, and its answers to the
    driver. (The parser builds on it: head.py, then parser.py.)"""

    __slots__ = ("_state", "_failed", "_continue_due", "_remaining", "_reader")
    _buffer: bytes  # (RequestParser's) careful path: bytes not parsed yet

    def __init__(self) -> None:
        self._state = STREAM
        self._failed = False
        self._continue_due = False  # the body being received waits for a 100 Continue
        self._remaining = 0  # STREAM_BODY: body bytes still due
        self._reader: BodyReader | None = None  # BODY: the body's reader

    @property
    def in_message(self) -> bool:
        """Part of a request has arrived and its end has not."""
        state = self._state
        if state == HEAD or state == MUST_CLOSE:
            return bool(self._buffer)
        return state != STREAM and state != PAUSED

    @property
    def failed(self) -> bool:
        """A ProtocolError or ConnectionClosed ended the stream."""
        return self._failed

    @property
    def body_remaining(self) -> int | None:
        """Bytes of the body being received still to come: None for a chunked body,
        whose size is unknown; 0 outside a body."""
        state = self._state
        if state == STREAM_BODY:
            return self._remaining
        if state == BODY:
            assert self._reader is not None  # (BODY has one)
            return self._reader.remaining
        return 0

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
        if state == BODY or state == STREAM_BODY:
            return ProtocolError(408, "the request body stalled")
        return ProtocolError(408, "the client was too slow to send the request")
