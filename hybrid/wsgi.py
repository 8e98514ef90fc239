"""PEP 3333's response for every worker that serves WSGI: `start_response`
with its exc_info rules, the `write()` callable, the response iteration,
and the 500 for a failing app (an app that gives the wrong types gets one
log line naming its mistake; a `write()` from the iterable's `close()`,
after the response's end, is dropped with a warning). The environ is
`hybrid.wsgi_environ`'s, and `wsgi.input` `hybrid.wsgi_input`'s.

The I/O stays with the caller: the response goes to a `Responder` (start,
body pieces, or an error), so the sync worker, the thread worker
(`FramingResponder`: HTTP/1.1 bytes) and the ASGI bridge (ASGI messages)
share this code and write no PEP 3333 rule twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple, Protocol

from mypy_extensions import mypyc_attr

from hybrid.protocol import LocalProtocolError
from hybrid.protocol.memo import Memo
from hybrid.typing import WSGIApp
from hybrid.wsgi_input import BodyReadError, EmptyInput, FileWrapper, InputStream

log: Final = logging.getLogger("hybrid.error")

_STATUS_MAX: Final = 64
_HEADERS_CHARS_MAX: Final = 1024


def _plain_short_status(status: str) -> bool:
    """A status line worth remembering: a str (not a subclass, whose hash and
    equality are its own) of at most _STATUS_MAX characters."""
    return type(status) is str and len(status) <= _STATUS_MAX


def _plain_short_header_list(headers: tuple[Any, ...]) -> bool:
    """A header list worth remembering: pairs of str (tuples, not subclasses),
    at most _HEADERS_CHARS_MAX characters in all."""
    return all(type(pair) is tuple and type(pair[0]) is str and type(pair[1]) is str
               for pair in headers) \
        and sum(len(name) + len(value) for name, value in headers) <= _HEADERS_CHARS_MAX


_STATUSES: Final[Memo[str, tuple[int, bytes]]] = Memo(256, _plain_short_status)
"""Status lines apps gave, parsed: an app gives a few, and each is parsed once
per process (only lines up to _STATUS_MAX characters)."""
_ENCODED_HEADERS: Final[Memo[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]]] = \
    Memo(256, _plain_short_header_list)
"""Header lists apps gave, encoded: an app gives a few (often the same but for a
Content-Length), each encoded once per process, and the same bytes each time
make the core's framing cache cheaper to look in (lists of str pairs only, up
to _HEADERS_CHARS_MAX characters)."""


class Outcome(NamedTuple):
    """What happened to one response, for the access log and the connection."""

    status: int
    bytes_sent: int
    keep_alive: bool  # False: the driver must close the connection


class Responder(Protocol):
    """Where a WSGI response goes: the blocking workers frame it as HTTP/1.1
    bytes with the core's `ResponseFramer`, the bridge turns it into ASGI
    messages. `run()` calls `start()` once, then `body()` until `last`; or
    `whole()` for both when the body is one piece; or `error()` instead, when
    the app failed before its head was due.

    A method that finds the client gone raises OSError.
    """

    def start(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """The head (it may wait to go out with the first piece of the body)."""

    def body(self, data: bytes, last: bool) -> None:
        """A piece of the body; `last`: the response ends with it."""

    def whole(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
              data: bytes) -> None:
        """The whole response at once: `start()`, then `body(data, last=True)`
        (the app's body was one piece)."""

    def file(self, wrapper: FileWrapper) -> bool:
        """Send the rest of the response (after `start()`) from a
        `wsgi.file_wrapper` over a file with a descriptor, if this responder
        can do better than iterating it; False: iterate it."""

    def error(self, status: int, detail: str) -> None:
        """Answer with an error instead (nothing of the response was sent)."""

    @property
    def sent(self) -> int:
        """Body bytes the client was sent."""

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may outlive the response, as sent."""


@mypyc_attr(native_class=False)
class WorkerExit(SystemExit):
    """Raised by a worker's own signal handlers: it passes through the app's
    error handling, where an app's own SystemExit becomes a 500."""


class _ClientGone(Exception):
    """Sending to the client failed: it left, or read too slowly."""


@mypyc_attr(native_class=False)
class AppMistake(TypeError):
    """The app gave start_response(), write() or its iterable something of the
    wrong type. The worker says so in one line naming the mistake (and where the
    app made it, when a frame of the app's shows it), not with a traceback
    through the server's caches, and answers 500 if nothing was sent yet.

    Found on the slow path only: a value a cache lookup missed, or one that
    failed to encode, is looked at again to tell what is wrong with it."""


def run(app: WSGIApp, environ: dict[str, Any], responder: Responder) -> Outcome:
    """Call the app, hand its response to `responder`, and always close its iterable.

    An app exception before the response started becomes a 500; after it
    started, the connection is closed so the client sees the truncation.
    A responder that raises OSError means the client is gone (or too slow):
    the response is abandoned quietly.
    """
    body = environ["wsgi.input"]  # before the app can replace it
    response = _Response(responder, body)
    what = (environ["REQUEST_METHOD"], environ["RAW_URI"])  # for the log, if it fails
    try:
        result = app(environ, response.start_response)
        try:
            if body.error is not None:
                # The app made an answer of a body that failed (it caught the read's
                # error): the client never gets it; the failure's 4xx goes instead.
                raise body.error
            response.write_result(result)
        finally:
            close = None if type(result) is list else getattr(result, "close", None)
            if close is not None:
                # The response is over (or failed): a write() from close() would
                # go out after its end, where a keep-alive client reads it as the
                # next response. It is dropped instead (see _Response.write).
                response.headers = None
                response.closing = what
                close()
    except _ClientGone as gone:  # (not `exc`: mypyc gives a name one type per function)
        log.debug("client went away during %s %s: %s", *what, gone.__cause__)
        return Outcome(response.status or 499, responder.sent, False)
    except WorkerExit:
        raise
    except BaseException as exc:  # (an app's SystemExit or CancelledError too: a 500)
        failed = exc if isinstance(exc, BodyReadError) else getattr(body, "error", None)
        if failed is not None:
            # The body was cut short, malformed or too slow: the client's doing,
            # whatever the app made of it.
            log.debug("bad request body in %s %s: %s (the app raised %s)", *what, failed,
                      type(exc).__name__)
            if not response.head_sent:
                _error_quietly(responder, failed.status, failed.detail)
                return Outcome(failed.status, responder.sent, False)
            return Outcome(response.status, responder.sent, False)
        if isinstance(exc, LocalProtocolError):
            log.error("Invalid response to %s %s: %s", *what, exc)
        elif isinstance(exc, AppMistake):
            log.error("WSGI app error (%s %s): %s%s", *what, exc, _app_frame(exc))
        else:
            log.exception("Error handling request %s %s", *what)
        if response.head_sent:
            return Outcome(response.status, responder.sent, False)
        _error_quietly(responder, 500, "")
        return Outcome(500, responder.sent, False)
    return Outcome(response.status, responder.sent, responder.keep_alive)


def _error_quietly(responder: Responder, status: int, detail: str) -> None:
    try:
        responder.error(status, detail)
    except OSError:
        pass  # the client is gone; nothing more to tell it


class _Response:
    """start_response, write() and the lazy head of one WSGI response."""

    def __init__(self, responder: Responder, body: InputStream | EmptyInput) -> None:
        self.responder = responder
        self.body = body  # (whose failed read, if any, the app must not answer)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.head_sent = False
        # Set (to the request's method and target) when the app's close() is
        # called: the response is over.
        self.closing: tuple[str, str] | None = None
        self.late_write_logged = False

    def start_response(self, status: Any, headers: Any,
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.headers is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        try:
            self.status, self.reason = _STATUSES.known[status]
        except (KeyError, TypeError):  # (TypeError: not a str, and unhashable)
            self.status, self.reason = _parse_status(status)
        if type(headers) is not list:  # (a tuple or an iterator: read once, here)
            headers = _header_list(headers)
        try:
            encoded = _ENCODED_HEADERS.known[tuple(headers)]
        except (KeyError, TypeError):  # (TypeError: a pair given as a list)
            encoded = _encode_headers(headers)
        self.headers = list(encoded)
        return self.write

    def write(self, data: Any) -> None:
        """The write() callable, and each piece the app yields."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AppMistake(_NOT_BYTES + _described(data))
        if self.headers is None:
            self._write_out_of_turn(data)
            return
        if data:  # PEP 3333: the head waits for the first non-empty piece
            self._send(bytes(data), last=False)

    def _write_out_of_turn(self, data: object) -> None:
        """write() before start_response(), or from the app's close(): dropped
        then, with one warning per response."""
        what = self.closing
        if what is None:
            raise AssertionError("write() called before start_response()")
        if data and not self.late_write_logged:
            self.late_write_logged = True
            log.warning("write() called from the response's close() in %s %s: dropped, "
                        "as the response had ended", *what)

    def _start(self) -> None:
        assert self.headers is not None
        self.responder.start(self.status, self.reason, self.headers)  # (it may refuse the head)
        self.head_sent = True

    def _send(self, data: bytes, last: bool) -> None:
        if not self.head_sent and self.body.error is not None:
            # A lazy app read a body that failed, and answers anyway: the failure's
            # 4xx goes instead (as run() does for an app that answered at once).
            raise self.body.error
        try:
            if not self.head_sent:
                self._start()
            self.responder.body(data, last)
        except OSError as exc:
            raise _ClientGone() from exc

    def write_result(self, result: Iterable[Any]) -> None:
        headers = self.headers
        if headers is not None and not self.head_sent and isinstance(result, (list, tuple)) \
                and len(result) == 1:
            # One piece (the common case, first): the whole body is known, so it
            # gets a Content-Length and goes out with the head (one write).
            (piece,) = result
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise AppMistake(_NOT_BYTES + _described(piece))
            for name, _ in headers:
                if name.lower() == b"content-length":
                    break
            else:
                headers.append((b"Content-Length", b"%d" % len(piece)))
            try:
                self.responder.whole(self.status, self.reason, headers, bytes(piece))
            except OSError as exc:
                self.head_sent = True  # (part of it may be out: no 500 after it)
                raise _ClientGone() from exc
            self.head_sent = True
            return
        if headers is None:
            # start_response may legally wait for the first iteration.
            iterator = iter(result)
            first = next(iterator, None)
            if self.headers is None:
                raise AssertionError("the app returned without calling start_response()")
            if first is not None:
                self.write(first)
            for piece in iterator:
                self.write(piece)
        elif isinstance(result, FileWrapper) and not self.head_sent \
                and result.fileno() is not None:
            # (A file without a descriptor is iterated like any body: its head
            # waits for the first read, so a read that fails is still a 500.)
            try:
                self._start()
                if self.responder.file(result):
                    return
            except OSError as exc:
                raise _ClientGone() from exc
            for piece in result:
                self.write(piece)
        else:
            for piece in result:
                self.write(piece)
        self._send(b"", last=True)


_NOT_BYTES: Final = "the response body must be bytes (what the iterable yields, or write() takes), got "
_NO_HEADER_LIST: Final = "start_response() headers must be a list of (name, value) str pairs, got "


def _described(value: object) -> str:
    """A value an app gave where it should not have: its type and (the start of) its repr."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


# This module's frames, by the end of their path: the interpreted build's name
# this file, the compiled build's the copy mypyc compiled (build/.../hybrid/wsgi.py).
_OWN_FRAMES: Final = "/hybrid/wsgi.py"


def _app_frame(error: BaseException) -> str:
    """Where the app made the mistake that raised `error`: the last frame of its
    traceback outside this module (the app's call of start_response or write),
    as ' (at FILE, line N, in NAME)'; "" when every frame is the server's (a
    piece the iterable yielded)."""
    found = ""
    traceback = error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if not code.co_filename.endswith(_OWN_FRAMES):
            found = f" (at {code.co_filename}, line {traceback.tb_lineno}, in {code.co_name})"
        traceback = traceback.tb_next
    return found


def _parse_status(status: object) -> tuple[int, bytes]:
    if not isinstance(status, str):
        raise AppMistake(
            f"start_response() status must be a str like '200 OK', got {_described(status)}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise LocalProtocolError(f"invalid status {status!r}")
    return _STATUSES.remember(status, (int(code), reason.strip().encode("latin-1")))


def _header_list(given: Any) -> list[tuple[str, str]]:
    """What an app gave start_response() for its headers, as a list: any iterable
    of pairs (PEP 3333 asks for a list; a tuple or a generator is taken too)."""
    # (A dict or a bytes iterates, into names or ints: refused before it does.)
    if isinstance(given, (Mapping, str, bytes, bytearray, memoryview)):
        raise AppMistake(_NO_HEADER_LIST + _described(given))
    try:
        return list(given)
    except TypeError:
        raise AppMistake(_NO_HEADER_LIST + _described(given)) from None


def _encode_headers(given: list[Any]) -> tuple[tuple[bytes, bytes], ...]:
    """An app's header list, Latin-1 encoded (and remembered, within bounds)."""
    headers = tuple(given)
    try:
        encoded = tuple([(name.encode("latin-1"), value.encode("latin-1"))
                         for name, value in headers])
    except (AttributeError, TypeError, ValueError):
        # Not a list of str pairs: say which pair.
        encoded = tuple([_encode_header(header) for header in headers])
    return _ENCODED_HEADERS.remember(headers, encoded)


def _encode_header(header: Any) -> tuple[bytes, bytes]:
    try:
        name, value = header
    except (TypeError, ValueError):
        raise AppMistake(_NO_HEADER_LIST + "an item " + _described(header)) from None
    if not isinstance(name, str) or not isinstance(value, str):
        raise AppMistake(f"start_response() header names and values must be str, got "
                         f"{_described(header)}")
    try:
        return name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise AppMistake(f"start_response() header {header!r} is not latin-1 (ISO-8859-1) "
                         f"text, as PEP 3333 and HTTP require") from None
