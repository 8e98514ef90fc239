"""Request side of the core: bytes in, events out.

Theory of operation. A driver owns the socket. It calls `feed(data)` with
whatever it read (or `feed_eof()` when the peer closed); each call returns
the events those bytes completed. One connection's events come strictly in
arrival order:

    Request  (Data)*  EndOfMessage   Request ...   [ProtocolError | ConnectionClosed]

llhttp (through httptools) checks the syntax of request heads and
tokenises them; the rules where llhttp is more lenient than RFC 9110/9112
(Host, Transfer-Encoding codings, target forms, versions) and the framing
decision are ours (head.py, fields.py). Two paths share those rules:

* STREAM, the fast path: llhttp is fed whole reads and frames heads,
  Content-Length bodies and pipelined requests by itself. (In the compiled
  build, where it has the whole-head reader, whole_head.pyx, the clean
  whole requests at the start of a read are read before, in one call: see
  `_take_whole_requests`; llhttp gets the rest of the read.) It hands a read
  over to the careful path when a head in it has a Transfer-Encoding field
  or an error (the read is parsed again from its start, nothing of it
  having been delivered), and when a head spans two reads.
* The careful path: bytes are buffered until the blank line that ends the
  head; llhttp sees each piece of the head as it arrives (so garbage, bare
  LF or a bad method is refused at once) but never a byte past it. Bodies
  are framed here (body_readers.py): Content-Length, and chunked (RFC 9112
  section 7.1), which is decoded here because llhttp is stricter than the
  RFC about chunk extensions and refuses framing fields in trailers, which
  the RFC says to drop.

Both paths decide the same bytes alike, however the reads split them: what
one read makes llhttp decide at once, the careful path decides at the same
byte (CR and LF between requests skipped, a limit said at its byte too
many, the HTTP/2 preface at its blank line), and what follows a request
that closes the connection is refused in one place (MUST_CLOSE, state.py).

A syntax error or a broken limit becomes a `ProtocolError` carrying the
status to answer, after every event before it; the parser then ignores
further input. Memory is bounded whatever the client sends: heads,
chunk-size lines and trailers are capped, and body bytes are handed out as
they arrive.

`RequestParser` is one object, llhttp's callbacks included, in three rooms
(each a class the next builds on, so the per-request path makes no extra
call): state.py, its states (the table) and its answers to the driver (100
Continue, the body still due, lingering, 408s); head.py, llhttp's callbacks,
which make a head into a Request; here, the driver's verbs and the two
paths, which feed llhttp. This is the one module that drives httptools'
parser (head.py has its callbacks, and its URL parser for absolute targets).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Final

import httptools

from hybrid.protocol.events import ConnectionClosed, Data, Event, ProtocolError, Request
from hybrid.protocol.fields import TCHARS
from hybrid.protocol.head import DEFAULT_LIMITS, HeadReader, Limits, Llhttp
from hybrid.protocol.state import BODY, HEAD, METHOD, MUST_CLOSE, PAUSED, STREAM, STREAM_BODY

if TYPE_CHECKING:  # (an extension of the compiled build only: _whole_heads_class)
    from hybrid.protocol.whole_head import WholeHeads

# Any method but CONNECT frames a request the same way (RFC 9112 section 6).
_STAND_IN: Final = b"GET"
# What llhttp accepts of a method before it knows it is not one of its own.
_METHOD_PREFIX_BYTES: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"  # (GET_PARAMETER is RTSP's)
# The 505's detail for the HTTP/2 preface ("PRI * HTTP/2.0"), which the log names.
HTTP2_PREFACE_REFUSED: Final = "HTTP/2 is not served here; use HTTP/1.1"
# The 400's detail for bytes after a request that closes the connection.
AFTER_CLOSE_REFUSED: Final = "bytes after a request that closes the connection"
# llhttp's reasons (httptools gives no code) for what this module answers in its own words:
_LLHTTP_AFTER_CLOSE: Final = "Data after `Connection: close`"
_LLHTTP_PRI: Final = ("Expected HTTP/2 Connection Preface", "Pause on PRI/Upgrade")
_CR_OR_LF: Final = (b"\r", b"\n")


def _whole_heads_class() -> type[WholeHeads] | None:
    """The compiled build's reader of whole clean requests (whole_head.pyx), where
    hybrid.native let it load; None: llhttp reads every head."""
    try:
        from hybrid.protocol.whole_head import WholeHeads
    except ModuleNotFoundError:  # not part of the build that runs
        return None
    except ImportError as exc:  # built and fresh, but it does not load: said once
        warnings.warn(f"hybrid: the whole-head reader does not load ({exc}); heads are "
                      f"read by llhttp alone", RuntimeWarning, stacklevel=1)
        return None
    return WholeHeads


_WHOLE_HEADS: Final = _whole_heads_class()


class RequestParser(HeadReader):
    """A sans-IO HTTP/1.1 request parser for one connection."""

    __slots__ = ("_events", "_buffer", "_llhttp", "_fed", "_head_seen", "_feed_size", "_read",
                 "_method_read", "_whole_heads", "__weakref__")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, whole_heads: bool = True) -> None:
        """`whole_heads=False`: llhttp reads every head, as in the interpreted build,
        where the compiled build would read clean whole requests in one call (the
        tests compare the two)."""
        super().__init__(limits)
        self._events: list[Event] = []
        self._buffer = b""  # careful path: bytes not parsed yet
        self._llhttp: Llhttp | None = None
        self._fed = 0  # careful path: bytes of the buffered head llhttp has seen
        self._head_seen = 0  # head bytes before the buffer (a head that began streaming)
        self._feed_size = 0  # size of the bytes llhttp is parsing now
        self._read = b""  # fast path: the bytes llhttp is parsing now
        # A fast-path read that ended in a method, and its events: where the method began.
        self._method_read: tuple[bytes, list[Event]] | None = None
        self._whole_heads = None if _WHOLE_HEADS is None or not whole_heads else _WHOLE_HEADS(
            self._max_line, self._max_field_line, self._max_fields, self._head_limit,
            self._body_limit)

    # --- driver API --------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data` and return the events it completed."""
        events = self._events = []
        if self._failed or not data:
            return events
        try:
            state = self._state
            if state == STREAM:
                self._stream(data)
            elif state == STREAM_BODY:
                self._stream_body(data)
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

    def release(self) -> None:
        """The connection is over: let go of llhttp's parser. It refers back to
        this one (its callbacks are our methods), a cycle that only the cyclic GC
        would free, after the connection, and that the compiled build's never
        frees: every worker calls this as it closes a connection."""
        self._llhttp = None

    def resume(self) -> list[Event]:
        """Go on with HTTP after an Upgrade or CONNECT request that was not switched."""
        events = self._events = []
        if self._state == PAUSED and not self._failed:
            self._state = MUST_CLOSE if self._closes else HEAD
            try:
                self._advance()
            except ProtocolError as error:
                self._fail(error)
        return events

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._events.append(error)

    # --- the fast path -----------------------------------------------------------------

    def _stream_body(self, data: bytes) -> None:
        """A read that starts inside a Content-Length body llhttp frames."""
        self._state = STREAM  # (llhttp's callbacks know the fast path by it)
        body_left = self._remaining
        if body_left >= len(data):
            self._stream(data)
            return
        self._stream(data[:body_left])
        data = data[body_left:]
        if self._state != STREAM:  # an upgrade paused the parser
            self._buffer += data
            return
        self._stream(data)

    def _stream(self, data: bytes) -> None:
        """Let llhttp frame `data`, which starts at a message boundary or is all body
        (the whole clean requests at its start are read in one call, where the
        build has the whole-head reader)."""
        if self._whole_heads is not None and self._llhttp_idle and not self._closes:
            data = self._take_whole_requests(data)
            if not data:
                return
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
            self._state = PAUSED
            self._closes = _last_request_closes(self._events)
            return
        except httptools.HttpParserError as exc:
            refused: str | None = str(exc)  # llhttp's reason, or a callback's failure
        else:
            refused = None
        if refused is not None:
            # Outside the except block, so the careful path's errors carry no context.
            if refused == _LLHTTP_AFTER_CLOSE and len(self._events) == first:
                # The request before this read closed the connection (one in
                # it is found again by the careful path): what to answer is ours.
                self._llhttp = None
                self._buffer = data
                self._state = MUST_CLOSE
                self._advance()
                return
            del self._events[first:]  # not delivered yet: the careful path redoes them
            self._recover_carefully(data)
            return
        if self._llhttp_idle:
            return
        if not self._in_head:
            self._state = STREAM_BODY
            return
        if self._target and parser.get_method() == b"PRI":
            # llhttp reads on past the blank line of the HTTP/2 preface, which the
            # careful path ends the head at: it takes the read from its start.
            del self._events[first:]
            self._recover_carefully(data)
            return
        # The head goes on in the next read, which might bring a
        # Transfer-Encoding field: finish it on the careful path.
        self._head_seen = self._target_length() + sum(
            len(name) + len(value) + 4 for name, value in self._headers)
        self._buffer = data[-3:]  # enough to find a blank line split by the reads
        self._fed = len(self._buffer)
        self._state = HEAD
        if not self._target:  # a method unknown to llhttp needs its first bytes
            self._method_read = (data, self._events[first:])

    def _take_whole_requests(self, data: bytes) -> bytes:
        """The events of the whole clean requests at the start of `data`, read
        by the whole-head reader; what is left of `data` for llhttp."""
        assert self._whole_heads is not None  # (the caller asked)
        taken = self._whole_heads.read(data, self._events)
        if self._whole_heads.closes:
            # Its last request closes the connection: what follows it (none of it
            # read) is refused, or skipped if CR and LF, where the careful path does.
            self._closes = True
            self._buffer = data[taken:]
            self._state = MUST_CLOSE
            self._advance()
            return b""
        return data[taken:]

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
        self._state = HEAD
        self._buffer = data
        self._fed = 0
        self._method_read = None
        self._advance()

    # --- the careful path --------------------------------------------------------------

    def _advance(self) -> None:
        """Run the careful path over the buffer; hand back to the fast path when it is empty."""
        while True:
            state = self._state
            if state == BODY:
                if not self._read_body():
                    return
            elif not self._buffer:
                break
            elif state == HEAD:
                if not self._parse_head():
                    return
            elif state == METHOD:
                if not self._stand_in_method():
                    return
            elif state == MUST_CLOSE:
                self._refuse_after_close()
            else:  # PAUSED
                return
        if self._state == HEAD and self._fed == 0:
            self._state = STREAM

    def _read_body(self) -> bool:
        """Queue the next event of the body that the buffer completes; False if none yet."""
        assert self._reader is not None  # (BODY has one)
        event, self._buffer = self._reader.read(self._buffer)
        if event is None:
            return False
        if isinstance(event, Data):
            self._continue_due = False  # the client did not wait for it
            self._events.append(event)
        else:
            self._end_careful_message(event)
        return True

    def _parse_head(self) -> bool:
        """Feed llhttp the buffered head up to its blank line; False when more bytes must come.

        A limit is said at the byte that breaks it, as when the reads are cut
        there: llhttp sees the bytes before it first, and an error in them is
        the one said (`_feed_head_to` does the same for the target's limit).
        """
        buffer = self._buffer
        if self._fed == 0 and buffer[:1] in _CR_OR_LF:
            # RFC 9112 section 2.2: ignore empty lines before a request-line. llhttp
            # skips any CR and LF there (a bare one too), and so does this path.
            buffer = self._buffer = buffer.lstrip(b"\r\n")
            if not buffer:
                return True  # (between requests)
        end = buffer.find(b"\r\n\r\n", max(0, self._fed - 3))
        stop = len(buffer) if end < 0 else end + 4
        room = self._head_limit - self._head_seen
        if stop > room:
            if room > self._fed and not self._feed_head_to(room):
                return self._stand_in_method()
            raise ProtocolError(431, "request header block too large")
        if not self._feed_head_to(stop):
            return self._stand_in_method()
        if end < 0:
            return False
        self._method_read = None
        if self._in_head:
            self._refuse_unended_head()
        self._buffer = buffer[stop:]
        self._fed = 0
        self._head_seen = 0
        if not self._llhttp_idle:
            self._llhttp = None  # it waits for a body it will never see
        return True

    def _refuse_unended_head(self) -> None:
        """The head's blank line came and llhttp still reads the head: it does that
        for the HTTP/2 preface ("PRI * HTTP/2.0", a 505), and nothing else."""
        if self._llhttp is not None and self._llhttp.get_method() == b"PRI":
            raise ProtocolError(505, HTTP2_PREFACE_REFUSED)
        raise ProtocolError(400, "malformed request head")

    def _refuse_after_close(self) -> None:
        """MUST_CLOSE: what follows a request that closes the connection. RFC 9112
        section 9.6: the server must not process another request on it. CR and LF
        are skipped, as between any two requests (llhttp does, after such a request
        too); any other byte is a 400, however the reads split it."""
        rest = self._buffer.lstrip(b"\r\n")
        self._buffer = rest
        if rest:
            raise ProtocolError(400, AFTER_CLOSE_REFUSED)

    def _feed_head_to(self, stop: int) -> bool:
        """Feed llhttp the buffered head up to `stop`; False if it refused the method.

        on_url says 414 for a target past its limit when llhttp calls it: in one
        read, at the target's end, after llhttp's verdict on its bytes; in small
        reads, at the byte too many. So a piece that holds that byte is fed in two,
        cut just past it, and the 414 is said there, however the reads split.
        """
        buffer, fed = self._buffer, self._fed
        cut = self._past_target_limit(buffer, fed)
        if fed < cut < stop:
            if not self._feed_head(buffer[fed:cut], self._head_seen + cut):
                return False
            fed = cut
        if not self._feed_head(buffer[fed:stop], self._head_seen + stop):
            return False
        self._fed = stop
        return True

    def _past_target_limit(self, buffer: bytes, fed: int) -> int:
        """Where in the buffer the target's first byte over its limit ends, if llhttp
        is still reading the request line from `fed` on (-1: not in the buffer, or
        past it; where llhttp may have passed it, a cut there changes nothing)."""
        if self._llhttp_idle:  # the buffer begins with the request line
            space = buffer.find(b" ")
        elif self._headers:
            return -1
        else:
            size = self._target_length()
            if size:
                return fed - size + self._max_target + 1
            # (The buffer keeps the last byte llhttp saw.)
            space = fed - 1 if buffer[fed - 1:fed] == b" " else buffer.find(b" ", fed)
        if space < 0:
            return -1
        return space + 1 + self._max_target + 1

    def _feed_head(self, data: bytes, head_size: int) -> bool:
        """Feed llhttp a piece of the head; False if it refused the method."""
        self._feed_size = head_size
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
            self._llhttp = None  # paused for good; the framing here goes on
        except httptools.HttpParserInvalidMethodError:
            return False
        except httptools.HttpParserError as exc:
            detail = str(exc) or "malformed request"
            if detail == "Invalid HTTP version":
                raise ProtocolError(505, "this server speaks HTTP/1.0 and HTTP/1.1") from None
            if detail in _LLHTTP_PRI:
                # The method PRI: the same answer as for the preface, however it was split.
                raise ProtocolError(505, HTTP2_PREFACE_REFUSED) from None
            raise ProtocolError(400, detail) from None
        return True

    def _stand_in_method(self) -> bool:
        """llhttp refused the method, knowing a fixed list. Any token is a method
        (RFC 9110 section 9.1): the head is parsed again from its start by a fresh
        llhttp with a stand-in it knows, which frames a request as every method
        but CONNECT does, and the request keeps the real name. Not a token: 400.

        True with the buffer ready for that (HEAD); False while every byte so far
        may belong to the method (METHOD: the next one decides).
        """
        head = self._head_from_start()
        method = head[:len(head) - len(head.lstrip(TCHARS))]
        if len(method) > self._max_line:
            # Said at the byte too many, whatever follows it (however the reads split).
            raise ProtocolError(414, "request line too long")
        after = head[len(method):len(method) + 1]
        if not after and method:
            # Found once: the buffer holds the head from its start from now on.
            self._buffer, self._method_read, self._head_seen = head, None, 0
            self._state = METHOD
            return False
        if not method or after != b" ":
            raise ProtocolError(400, "invalid request method")
        self._method = method.decode("ascii")
        self._buffer = _STAND_IN + head[len(method):]
        self._head_seen = len(method) - len(_STAND_IN)  # the head's size as the client sent it
        self._method_read = None
        self._llhttp = None
        self._llhttp_idle = True
        self._fed = 0
        self._state = HEAD
        return True

    def _head_from_start(self) -> bytes:
        """The head being parsed, from its first byte (CR/LF before it skipped)."""
        buffer = self._buffer
        if self._method_read is not None:
            read, events = self._method_read
            kept = len(read[-3:])  # the buffer began with these bytes of the read
            buffer = read[_last_message_start(read, events):] + buffer[kept:]
        return buffer.lstrip(b"\r\n")


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


def _last_request_closes(events: list[Event]) -> bool:
    """Whether the last Request among `events` closes the connection."""
    for event in reversed(events):
        if type(event) is Request:
            return not event.keep_alive
    return False


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
