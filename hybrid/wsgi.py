"""PEP 3333 for every worker that serves WSGI: the environ (from a parsed
request or from an ASGI scope, by the same code), `wsgi.input`,
`start_response` with its exc_info rules, the `write()` callable, the
response iteration, `wsgi.file_wrapper`, and the 500 for a failing app (an
app that gives the wrong types gets one log line naming its mistake; a
`write()` from the iterable's `close()`, after the response's end, is
dropped with a warning).

The I/O stays with the caller: `wsgi.input` reads through a `receive()`
(the next piece of the request body, b"" at its end), and the response goes
to a `Responder` (start, body pieces, or an error), so the sync worker, the
thread worker (`FramingResponder`: HTTP/1.1 bytes) and the ASGI bridge
(ASGI messages) share this code and write no PEP 3333 rule twice.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, NamedTuple, Protocol
from urllib.parse import unquote, unquote_to_bytes

from hybrid import __version__
from hybrid.protocol import LocalProtocolError, Request
from hybrid.tls import wsgi_environ
from hybrid.typing import Scope, WSGIApp

log = logging.getLogger("hybrid.error")

SERVER_SOFTWARE = f"hybrid/{__version__}"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# (`b"%" in raw` tries the operand as an int first, raising and clearing a
# TypeError inside: an int's membership costs a fraction of it.)
_PERCENT = ord("%")
_UNPREFIXED = {"HTTP_CONTENT_TYPE": "CONTENT_TYPE", "HTTP_CONTENT_LENGTH": "CONTENT_LENGTH"}
_BARE_KEYS = frozenset(_UNPREFIXED.values())  # set, never combined, when repeated
_ENVIRON_KEYS: dict[bytes, str] = {}
"""Field names seen, and their environ keys: each is worked out once per process.
Only names up to _ENVIRON_NAME_MAX bytes are kept, _ENVIRON_KEYS_MAX at most, so
a client sending random names holds at most ~100 KiB of it."""
_ENVIRON_KEYS_MAX = 1024
_ENVIRON_NAME_MAX = 40
_STATUSES: dict[str, tuple[int, bytes]] = {}
"""Status lines apps gave, parsed: an app gives a few, and each is parsed once
per process (only lines up to _STATUS_MAX characters, _STATUSES_MAX at most)."""
_STATUSES_MAX = 256
_STATUS_MAX = 64
_ENCODED_HEADERS: dict[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]] = {}
"""Header lists apps gave, encoded: an app gives a few (often the same but for a
Content-Length), each encoded once per process, and the same bytes each time
make the core's framing cache cheaper to look in (lists of str pairs only, up
to _HEADERS_CHARS_MAX characters; emptied when it holds _ENCODED_HEADERS_MAX,
as the core's is)."""
_ENCODED_HEADERS_MAX = 256
_HEADERS_CHARS_MAX = 1024
_HOSTS: dict[tuple[str, str], tuple[str, str]] = {}
"""Host fields (and the scheme) seen, as SERVER_NAME and SERVER_PORT: a server is
named a few ways, each split once per process (bounded as above)."""
_HOSTS_MAX = 256
_HOST_MAX = 100


class BodyReadError(OSError):
    """The request body could not be read: cut short, malformed or too slow.

    Raised from `wsgi.input`; `status` is what to answer if the app lets it
    propagate before its response started.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class InputStream:
    """`wsgi.input`: exactly the request body, read on demand.

    `receive()` returns the next piece of the body and b"" once it is
    complete; it raises BodyReadError if the body is cut short, so an app
    never mistakes a truncated body for a whole one.
    """

    def __init__(self, receive: Callable[[], bytes]) -> None:
        self._receive = receive
        self._buffer = bytearray()
        self._eof = False
        self.error: BodyReadError | None = None
        """Why reading failed, if it did (the app may have turned it into another error)."""

    def _fill(self) -> bool:
        """Append one more piece to the buffer; False at the end of the body."""
        if self._eof:
            return False
        try:
            data = self._receive()
        except BodyReadError as exc:
            self.error = exc
            raise
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        scanned = 0
        while True:
            newline = self._buffer.find(b"\n", scanned)
            if newline >= 0:
                return self._take(min(newline + 1, limit))
            if len(self._buffer) >= limit:
                return self._take(limit)
            scanned = len(self._buffer)
            if not self._fill():
                return self._take(min(len(self._buffer), limit))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> InputStream:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class EmptyInput:
    """`wsgi.input` of a request without a body (most requests): at its end from
    the start. It has no __init__: making one per request costs no Python call."""

    error: BodyReadError | None = None

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> EmptyInput:
        return self

    def __next__(self) -> bytes:
        raise StopIteration


Input = InputStream | EmptyInput


class FileWrapper:
    """`wsgi.file_wrapper`: iterates a file in blocks; workers may sendfile() it."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data

    def fileno(self) -> int | None:
        """The file's descriptor when the OS can send it directly, else None."""
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, ValueError):
            return None


def build_environ(request: Request, wsgi_input: Input, server: tuple[str, str],
                  client: tuple[str, str], url_scheme: str = "http", root_path: str = "",
                  multithread: bool = False,
                  tls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The PEP 3333 environ for one parsed request (the sync and thread workers).

    `server` and `client` are (host, port) strings, the client's after proxy
    headers; the Host header, when present, names the server instead (as the
    client addressed it). `tls`: a TLS connection's facts, as the ASGI TLS
    extension holds them (`hybrid.tls.describe`).
    """
    raw = request.path
    path = (unquote_to_bytes(raw) if _PERCENT in raw else raw).decode("latin-1")
    return _environ(request.method, request.http_version, path, request.query, request.headers,
                    server, client, url_scheme, root_path, request.target.decode("latin-1"),
                    wsgi_input, multithread, tls)


def environ_from_scope(scope: Scope, wsgi_input: InputStream) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope (the bridge), built by the
    same code as `build_environ`, so an app sees the same environ whichever
    worker class serves it.

    PATH_INFO comes from `raw_path` when the server gives it (the bytes the
    client sent, as the blocking workers read them), else from `path`;
    `root_path` is SCRIPT_NAME, stripped from the path when the path starts
    with it (a mount point, or a proxy that kept its prefix).
    """
    root_path: str = scope.get("root_path", "")
    raw_path: bytes | None = scope.get("raw_path")
    decoded: str = scope["path"]
    path = unquote_to_bytes(raw_path).decode("latin-1") if raw_path else _latin1(decoded)
    script_name = _latin1(root_path)
    if script_name and not _under(path, script_name) and _under(decoded, root_path) \
            and not (raw_path and decoded == root_path + unquote(raw_path.decode("latin-1"))):
        # root_path is in `path` but not in `raw_path`: a mount point's prefix
        # that a proxy stripped, say. (If `path` is only root_path + `raw_path`,
        # as uvicorn and hybrid give --root-path, `raw_path` is exact as it is.)
        path = _latin1(decoded)
    query: bytes = scope.get("query_string", b"")
    raw_uri = (raw_path or decoded.encode("utf-8")).decode("latin-1")
    if query:
        raw_uri += "?" + query.decode("latin-1")
    server = scope.get("server") or ("", None)
    client = scope.get("client") or ("", 0)
    return _environ(scope.get("method", "GET"), scope.get("http_version", "1.1"), path, query,
                    scope.get("headers", ()),
                    (server[0], "" if server[1] is None else str(server[1])),
                    (client[0], str(client[1])), scope.get("scheme", "http"), script_name,
                    raw_uri, wsgi_input, True, scope.get("extensions", {}).get("tls"))


def _environ_key(name: bytes) -> str:
    """The environ key of a field (PEP 3333: HTTP_ and upper case, but CONTENT_TYPE
    and CONTENT_LENGTH bare); "" for a name with "_": "X_Forwarded_For" and
    "X-Forwarded-For" would both become HTTP_X_FORWARDED_FOR, so the spelling a
    proxy may not strip is dropped."""
    if b"_" in name:
        key = ""
    else:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        key = _UNPREFIXED.get(key, key)
    if type(name) is bytes and len(name) <= _ENVIRON_NAME_MAX \
            and len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


def _latin1(text: str) -> str:
    """A decoded str as PEP 3333 wants it: its UTF-8 bytes, one char per byte."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


# Every environ starts as a copy of this (a copy costs less than building the
# dict anew); _environ sets each None. SERVER_NAME and SERVER_PORT come last.
_ENVIRON_TEMPLATE: dict[str, Any] = {
    "REQUEST_METHOD": None,
    "SCRIPT_NAME": None,
    "PATH_INFO": None,
    "QUERY_STRING": None,
    "RAW_URI": None,
    "REQUEST_URI": None,
    "SERVER_PROTOCOL": None,
    "SERVER_SOFTWARE": SERVER_SOFTWARE,
    "REMOTE_ADDR": None,
    "REMOTE_PORT": None,
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": None,
    "wsgi.input": None,
    "wsgi.input_terminated": True,
    "wsgi.errors": None,
    "wsgi.multithread": None,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": FileWrapper,
}


def _environ(method: str, http_version: str, path: str, query: bytes,
             headers: Iterable[tuple[bytes, bytes]], server: tuple[str, str],
             client: tuple[str, str], url_scheme: str, script_name: str, raw_uri: str,
             wsgi_input: Input, multithread: bool,
             tls: Mapping[str, Any] | None) -> dict[str, Any]:
    """`path` is the request's path as latin-1 text; `script_name` is stripped
    from its start when it is there. A TLS connection adds mod_ssl's keys
    (HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_VERIFY, SSL_CLIENT_CERT,
    SSL_CLIENT_S_DN), which WSGI middleware already knows."""
    if script_name and _under(path, script_name):
        path = path[len(script_name):]
    environ = _ENVIRON_TEMPLATE.copy()
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = raw_uri
    environ["SERVER_PROTOCOL"] = "HTTP/" + http_version
    environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = wsgi_input
    environ["wsgi.errors"] = sys.stderr  # (the one of the moment: a test may swap it)
    environ["wsgi.multithread"] = multithread
    keys = _ENVIRON_KEYS
    for name, value in headers:
        try:  # (a subscript costs half a get(): this runs for every field)
            key = keys[name]
        except (KeyError, TypeError):  # (TypeError: a bytearray name, from a scope)
            key = None
        if key is None:
            key = _environ_key(name)
        if not key:
            continue
        if key in environ:
            if key in _BARE_KEYS:
                environ[key] = value.decode("latin-1")
            else:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value.decode("latin-1")
        else:
            environ[key] = value.decode("latin-1")
    if tls is not None:
        environ.update(wsgi_environ(tls))
    host = environ.get("HTTP_HOST")
    if host:
        split = _HOSTS.get((host, url_scheme))
        if split is None:
            default_port = _DEFAULT_PORTS.get(url_scheme, "80")
            server_name, port = _split_host(host, default_port)
            split = server_name, port or default_port
            if len(host) <= _HOST_MAX and len(_HOSTS) < _HOSTS_MAX:
                _HOSTS[host, url_scheme] = split
        environ["SERVER_NAME"], environ["SERVER_PORT"] = split
    else:
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = server[1] or _DEFAULT_PORTS.get(url_scheme, "80")
    return environ


def _split_host(host: str, default_port: str) -> tuple[str, str]:
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default_port


class Outcome(NamedTuple):
    """What happened to one response, for the access log and the connection."""

    status: int
    bytes_sent: int
    keep_alive: bool  # False: the driver must close the connection


# Outcome(...) runs a Python-level __new__; this builds the same tuple in C.
_new_outcome = tuple.__new__


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


class WorkerExit(SystemExit):
    """Raised by a worker's own signal handlers: it passes through the app's
    error handling, where an app's own SystemExit becomes a 500."""


class _ClientGone(Exception):
    """Sending to the client failed: it left, or read too slowly."""


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
    except _ClientGone as exc:
        log.debug("client went away during %s %s: %s", *what, exc.__cause__)
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
    return _new_outcome(Outcome, (response.status, responder.sent, responder.keep_alive))


def _error_quietly(responder: Responder, status: int, detail: str) -> None:
    try:
        responder.error(status, detail)
    except OSError:
        pass  # the client is gone; nothing more to tell it


class _Response:
    """start_response, write() and the lazy head of one WSGI response."""

    # Set (to the request's method and target) when the app's close() is called:
    # the response is over. A class default, so that a response pays nothing for it.
    closing: tuple[str, str] | None = None
    late_write_logged = False

    def __init__(self, responder: Responder, body: InputStream | EmptyInput) -> None:
        self.responder = responder
        self.body = body  # (whose failed read, if any, the app must not answer)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.head_sent = False

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.headers is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        # (The caches are read by subscript, which costs half a get(); a miss is
        # rare, and pays for its exception with work of its own anyway.)
        try:
            self.status, self.reason = _STATUSES[status]
        except (KeyError, TypeError):  # (TypeError: not a str, and unhashable)
            self.status, self.reason = _parse_status(status)
        if type(headers) is not list:  # (a tuple or an iterator: read once, here)
            headers = _header_list(headers)
        try:
            encoded = _ENCODED_HEADERS[tuple(headers)]
        except (KeyError, TypeError):  # (TypeError: a pair given as a list)
            encoded = _encode_headers(headers)
        self.headers = list(encoded)
        return self.write

    def write(self, data: bytes) -> None:
        """The write() callable, and each piece the app yields."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AppMistake(_NOT_BYTES + _described(data))
        if self.headers is None:
            self._write_out_of_turn(data)
            return
        if data:  # PEP 3333: the head waits for the first non-empty piece
            self._send(bytes(data), last=False)

    def _write_out_of_turn(self, data: bytes) -> None:
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

    def write_result(self, result: Iterable[bytes]) -> None:
        headers = self.headers
        if headers is not None and not self.head_sent and isinstance(result, (list, tuple)) \
                and len(result) == 1:
            # One piece (the common case, first): the whole body is known, so it
            # gets a Content-Length and goes out with the head (one write).
            (piece,) = result
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise AppMistake(_NOT_BYTES + _described(piece))
            for name, _ in headers:
                if len(name) == 14 and name.lower() == b"content-length":
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


_NOT_BYTES = "the response body must be bytes (what the iterable yields, or write() takes), got "
_NO_HEADER_LIST = "start_response() headers must be a list of (name, value) str pairs, got "


def _described(value: object) -> str:
    """A value an app gave where it should not have: its type and (the start of) its repr."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


def _app_frame(error: BaseException) -> str:
    """Where the app made the mistake that raised `error`: the last frame of its
    traceback outside this module (the app's call of start_response or write),
    as ' (at FILE, line N, in NAME)'; "" when every frame is the server's (a
    piece the iterable yielded)."""
    here = _app_frame.__code__.co_filename
    found = ""
    traceback = error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_filename != here:
            found = f" (at {code.co_filename}, line {traceback.tb_lineno}, in {code.co_name})"
        traceback = traceback.tb_next
    return found


def _parse_status(status: str) -> tuple[int, bytes]:
    if not isinstance(status, str):
        raise AppMistake(
            f"start_response() status must be a str like '200 OK', got {_described(status)}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise LocalProtocolError(f"invalid status {status!r}")
    parsed = int(code), reason.strip().encode("latin-1")
    if type(status) is str and len(status) <= _STATUS_MAX and len(_STATUSES) < _STATUSES_MAX:
        _STATUSES[status] = parsed
    return parsed


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


def _encode_headers(given: list[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    """An app's header list, Latin-1 encoded (and remembered, within bounds)."""
    headers = tuple(given)
    try:
        encoded = tuple([(name.encode("latin-1"), value.encode("latin-1"))
                         for name, value in headers])
    except (AttributeError, TypeError, ValueError):
        # Not a list of str pairs: say which pair.
        encoded = tuple([_encode_header(header) for header in headers])
    if len(_ENCODED_HEADERS) >= _ENCODED_HEADERS_MAX:
        _ENCODED_HEADERS.clear()  # (lists made per response, a cookie's say, go again)
    if all(type(pair) is tuple and type(pair[0]) is str and type(pair[1]) is str
                    for pair in headers) \
            and sum(len(name) + len(value) for name, value in headers) <= _HEADERS_CHARS_MAX:
        _ENCODED_HEADERS[headers] = encoded
    return encoded


def _encode_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
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
