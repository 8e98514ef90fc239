"""PEP 3333 for every worker that serves WSGI: the environ, `wsgi.input`,
`start_response` with its exc_info rules, the `write()` callable, the
response iteration, `wsgi.file_wrapper`, and the 500 for a failing app.

The I/O stays with the caller: it passes `receive()` (the next piece of the
request body, b"" at its end) and `send(bytes)` (blocking until written), so
the sync worker, the thread worker and the ASGI bridge share this code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, NamedTuple
from urllib.parse import unquote_to_bytes

from hybrid import __version__
from hybrid.protocol import LocalProtocolError, Request, ResponseFramer, error_response
from hybrid.typing import WSGIApp

log = logging.getLogger("hybrid.error")

SERVER_SOFTWARE = f"hybrid/{__version__}"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_UNPREFIXED = {"HTTP_CONTENT_TYPE": "CONTENT_TYPE", "HTTP_CONTENT_LENGTH": "CONTENT_LENGTH"}


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


def build_environ(request: Request, wsgi_input: InputStream, *, server: tuple[str, str],
                  client: tuple[str, str], url_scheme: str = "http", root_path: str = "",
                  multithread: bool = False) -> dict[str, Any]:
    """The PEP 3333 environ for one request.

    `server` and `client` are (host, port) strings; the Host header, when
    present, names the server instead (as the client addressed it).
    """
    path_info = unquote_to_bytes(request.path).decode("latin-1")
    script_name = ""
    if root_path and (path_info == root_path or path_info.startswith(root_path + "/")):
        script_name, path_info = root_path, path_info[len(root_path):]
    elif root_path:
        script_name = root_path
    target = request.target.decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.query.decode("latin-1"),
        "RAW_URI": target,
        "REQUEST_URI": target,
        "SERVER_PROTOCOL": "HTTP/" + request.http_version,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": client[1],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.input": wsgi_input,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    for name, value in request.headers:
        if b"_" in name:
            # "X_Forwarded_For" and "X-Forwarded-For" would both become
            # HTTP_X_FORWARDED_FOR: drop the spelling a proxy may not strip.
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key in _UNPREFIXED:
            environ[_UNPREFIXED[key]] = text
        elif key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + text
        else:
            environ[key] = text
    host = environ.get("HTTP_HOST")
    default_port = _DEFAULT_PORTS.get(url_scheme, "80")
    server_name, port = _split_host(host, default_port) if host else server
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server_name, port or default_port
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


Send = Callable[[bytes], None]
SendFile = Callable[[bytes, IO[bytes], "int | None"], int]


class WorkerExit(SystemExit):
    """Raised by a worker's own signal handlers: it passes through the app's
    error handling, where an app's own SystemExit becomes a 500."""


class _ClientGone(Exception):
    """Sending to the client failed: it left, or read too slowly."""


def run(app: WSGIApp, environ: dict[str, Any], request: Request,
        send: Send, *, keep_alive: bool, sendfile: SendFile | None = None,
        may_persist: Callable[[], bool] | None = None) -> Outcome:
    """Call the app, write its response through `send`, and always close its iterable.

    `keep_alive`: whether the request and the server allow the connection to
    persist; `may_persist()`, asked when the head is written, whether what
    the app left of the request body allows it too.

    `sendfile(head, file, count)` writes the head and then `count` bytes of
    the file (all of it when None) and returns the body bytes sent.
    An app exception before the response started becomes a 500; after it
    started, the connection is closed so the client sees the truncation.
    A `send` that raises OSError means the client is gone (or too slow):
    the response is abandoned quietly.
    """
    response = _Response(request, send, keep_alive, may_persist)
    body = environ["wsgi.input"]  # before the app can replace it
    try:
        result = app(environ, response.start_response)
        try:
            response.write_result(result, sendfile)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except _ClientGone as exc:
        log.debug("client went away during %s %s: %s", request.method, environ["RAW_URI"],
                  exc.__cause__)
        return Outcome(response.status or 499, response.sent, False)
    except WorkerExit:
        raise
    except (Exception, SystemExit) as exc:
        failed = exc if isinstance(exc, BodyReadError) else getattr(body, "error", None)
        if failed is not None:
            # The body was cut short, malformed or too slow: the client's doing,
            # whatever the app made of it.
            log.debug("bad request body in %s %s: %s (the app raised %s)", request.method,
                      environ["RAW_URI"], failed, type(exc).__name__)
            if not response.head_sent:
                _send_quietly(send, error_response(failed.status, failed.detail))
                return Outcome(failed.status, 0, False)
            return Outcome(response.status, response.sent, False)
        if isinstance(exc, LocalProtocolError):
            log.error("Invalid response to %s %s: %s", request.method, environ["RAW_URI"], exc)
        else:
            log.exception("Error handling request %s %s", request.method, environ["RAW_URI"])
        if response.head_sent:
            return Outcome(response.status, response.sent, False)
        _send_quietly(send, error_response(500))
        return Outcome(500, 0, False)
    return Outcome(response.status, response.sent, response.framer.keep_alive)


def _send_quietly(send: Send, data: bytes) -> None:
    try:
        send(data)
    except OSError:
        pass  # the client is gone; nothing more to tell it


class _Response:
    """start_response, write() and the lazy head of one WSGI response."""

    def __init__(self, request: Request, send: Send, keep_alive: bool,
                 may_persist: Callable[[], bool] | None) -> None:
        self.request = request
        self._send = send
        self.keep_alive = keep_alive
        self.may_persist = may_persist
        self.sent = 0  # body bytes the client was sent
        self.framer = ResponseFramer()
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
        self.status, self.reason = _parse_status(status)
        self.headers = [_encode_header(header) for header in headers]
        return self.write

    def send(self, data: bytes) -> None:
        try:
            self._send(data)
        except OSError as exc:
            raise _ClientGone() from exc
        self.sent = self.framer.bytes_sent

    def write(self, data: bytes) -> None:
        """The write() callable, and each piece the app yields."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"WSGI body pieces must be bytes, not {type(data).__name__}")
        if self.headers is None:
            raise AssertionError("write() called before start_response()")
        if not data:
            return  # PEP 3333: the head waits for the first non-empty piece
        if not self.head_sent:
            self.send(self._head() + self.framer.body(bytes(data)))
        else:
            self.send(self.framer.body(bytes(data)))

    def write_result(self, result: Iterable[bytes], sendfile: SendFile | None) -> None:
        if self.headers is None:
            # start_response may legally wait for the first iteration.
            iterator = iter(result)
            first = next(iterator, None)
            if self.headers is None:
                raise AssertionError("the app returned without calling start_response()")
            if first is not None:
                self.write(first)
            for piece in iterator:
                self.write(piece)
        elif isinstance(result, FileWrapper) and sendfile is not None and not self.head_sent:
            self._send_file(result, sendfile)
        else:
            if not self.head_sent and isinstance(result, (list, tuple)) and len(result) == 1:
                self._add_content_length(len(result[0]))
            for piece in result:
                self.write(piece)
        if not self.head_sent:
            self.send(self._head() + self.framer.end())
        else:
            tail = self.framer.end()
            if tail:
                self.send(tail)

    def _send_file(self, wrapper: FileWrapper, sendfile: SendFile) -> None:
        head = self._head()
        framer = self.framer
        if not framer.has_body or framer.length_remaining == 0:
            self.send(head)
            return
        if framer.chunked or wrapper.fileno() is None:
            self.send(head + framer.body(next(wrapper, b"")))
            for piece in wrapper:
                self.send(framer.body(piece))
            return
        try:
            framer.account(sendfile(head, wrapper.filelike, framer.length_remaining))
        except OSError as exc:
            raise _ClientGone() from exc
        self.sent = framer.bytes_sent

    def _add_content_length(self, length: int) -> None:
        assert self.headers is not None
        if not any(name.lower() == b"content-length" for name, _ in self.headers):
            self.headers.append((b"Content-Length", b"%d" % length))

    def _head(self) -> bytes:
        assert self.headers is not None
        request = self.request
        keep_alive = self.keep_alive and (self.may_persist is None or self.may_persist())
        head = self.framer.head(request.method, request.http_version, keep_alive,
                                self.status, self.reason, self.headers)
        self.head_sent = True
        return head


def _parse_status(status: str) -> tuple[int, bytes]:
    if not isinstance(status, str):
        raise TypeError(f"status must be a str like '200 OK', not {type(status).__name__}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise LocalProtocolError(f"invalid status {status!r}")
    return int(code), reason.strip().encode("latin-1")


def _encode_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
    name, value = header
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"header names and values must be str, got {header!r}")
    return name.encode("latin-1"), value.encode("latin-1")
