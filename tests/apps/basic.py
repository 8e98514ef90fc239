"""A WSGI app that exercises PEP 3333 corners; one route per behaviour."""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs

IMPORTED_BY = os.getpid()  # the arbiter's pid under --preload, else the worker's
CLOSED = {"count": 0}
HITS = {"count": 0}
_MEETINGS: dict[int, threading.Barrier] = {}
_MEETINGS_LOCK = threading.Lock()
_CALLS = {"now": 0, "most": 0}
_CALLS_LOCK = threading.Lock()
LEAKED: list[bytearray] = []


class ClosingBody:
    """An iterable whose close() the server must call."""

    def __init__(self, pieces):
        self.pieces = pieces

    def __iter__(self):
        return iter(self.pieces)

    def close(self):
        CLOSED["count"] += 1


class Unusual(BaseException):
    """What some libraries raise (asyncio.CancelledError is one)."""


class FailingFile:
    """A file-like without a descriptor whose first read fails."""

    def read(self, size=-1):
        raise OSError("the disk went away")


def _query(environ):
    return {key: values[0] for key, values in parse_qs(environ["QUERY_STRING"]).items()}


def _text(start_response, body, status="200 OK", headers=()):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers])
    return [data]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = _query(environ)
    if path == "/":
        return _text(start_response, "hello")
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/frozen":  # the objects in the collector's permanent generation
        return _text(start_response, str(gc.get_freeze_count()))
    if path == "/getenv":  # a variable of the process's environment
        return _text(start_response, os.environ.get(query["name"], "(unset)"))
    if path == "/print":  # writes to stdout, as an app's print() does
        print(query.get("text", "printed"), flush=True)
        return _text(start_response, "printed")
    if path == "/server-header":  # the app names its own server
        start_response("200 OK", [("Content-Type", "text/plain"), ("Server", "my-app")])
        return [b"mine"]
    if path == "/ids":
        mask = os.umask(0)
        os.umask(mask)
        return _text(start_response, f"{os.getuid()} {os.getgid()} {mask:03o}")
    if path.startswith("/path"):
        return _text(start_response, path)
    if path.startswith("/environ"):
        safe = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
        safe["wsgi.version"] = list(environ["wsgi.version"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(safe).encode("utf-8")]
    if path == "/echo":
        return _echo(environ, start_response, query)
    if path == "/count":  # reads the body piece by piece, keeps none of it
        stream = environ["wsgi.input"]
        return _text(start_response, str(sum(map(len, iter(lambda: stream.read(65536), b"")))))
    if path == "/sleep":
        print("sleep started", file=environ["wsgi.errors"], flush=True)
        time.sleep(float(query.get("s", "1")))
        return _text(start_response, "slept")
    if path == "/meet":  # answers once `n` calls are inside the app at the same time
        return _meet(start_response, int(query["n"]))
    if path == "/counted-sleep":
        return _counted_sleep(start_response, float(query.get("s", "0.2")))
    if path == "/most-calls-at-once":
        return _text(start_response, str(_CALLS["most"]))
    if path == "/leak":  # keeps `mib` MiB more, touched so that it is resident
        LEAKED.append(bytearray(b"x" * (int(query.get("mib", "50")) * 1024 * 1024)))
        return _text(start_response, str(os.getpid()))
    if path == "/start-then-sleep":  # a response begun, then a long wait before its end
        return _start_then_sleep(start_response, float(query.get("s", "1")))
    if path == "/error":
        raise RuntimeError("the app failed on purpose")
    if path == "/late-error":
        return _late_error(start_response)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"piece {i}\n".encode() for i in range(int(query.get("n", "3"))))
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/file":
        return _file(environ, start_response, int(query.get("size", "100000")))
    if path == "/closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingBody([b"a", b"b"])
    if path == "/whoami":
        return _text(start_response, f"{environ['REMOTE_ADDR']} {environ['wsgi.url_scheme']}")
    if path == "/imported-by":
        return _text(start_response, str(IMPORTED_BY))
    if path == "/sys-exit":
        sys.exit(3)
    if path == "/base-exception":
        raise Unusual("an exception that is not an Exception")
    if path == "/file-fails":
        return environ["wsgi.file_wrapper"](FailingFile())
    if path == "/two-lengths":
        start_response("200 OK", [("Content-Length", "3"), ("Content-Length", "10")])
        return [b"abc"]
    if path == "/empty-then-error":
        return _empty_then_error(start_response)
    if path == "/hit":
        HITS["count"] += 1
        return _text(start_response, "hit")
    if path == "/hits":
        return _text(start_response, str(HITS["count"]))
    if path == "/method":
        return _text(start_response, environ["REQUEST_METHOD"])
    if path == "/closed-count":
        return _text(start_response, str(CLOSED["count"]))
    if path == "/exc-info":
        return _exc_info(start_response)
    if path == "/status":
        code = query.get("code", "200")
        start_response(f"{code} Whatever", [("Content-Type", "text/plain")])
        return [b"this body must not be sent for 204 and 304"]
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b"never sent"]
    if path == "/lazy-start":
        return _lazy_start(start_response)
    if path == "/errors-stream":
        print("hello from wsgi.errors", file=environ["wsgi.errors"])
        return _text(start_response, "logged")
    if path == "/ignore-body":
        return _text(start_response, "ignored")
    if path == "/body-after-start":
        return _body_after_start(environ, start_response)
    if path == "/read-and-wrap":
        try:
            environ["wsgi.input"].read()
        except OSError as exc:  # what a framework may do with a failed read
            raise RuntimeError("could not read the upload") from exc
        return _text(start_response, "read")
    if path == "/read-then-answer":  # swallows a failed read: its answer must never go out
        try:
            environ["wsgi.input"].read()
        except OSError:
            pass
        return _text(start_response, "the app's answer")
    if path == "/hold-fds":
        _hold_fds(float(query.get("s", "2")))
        return _text(start_response, "holding")
    if path == "/content-length":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"12345"]
    return _text(start_response, "not found", "404 Not Found")


def _start_then_sleep(start_response, seconds):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"begun\n"
    time.sleep(seconds)
    yield b"ended"


def _meet(start_response, parties):
    with _MEETINGS_LOCK:
        barrier = _MEETINGS.setdefault(parties, threading.Barrier(parties))
    try:
        barrier.wait(timeout=10)
    except threading.BrokenBarrierError:
        return _text(start_response, "alone", "504 Gateway Timeout")
    return _text(start_response, "met")


def _counted_sleep(start_response, seconds):
    """A call that sleeps, counting the calls inside it at the same time."""
    with _CALLS_LOCK:
        _CALLS["now"] += 1
        _CALLS["most"] = max(_CALLS["most"], _CALLS["now"])
    try:
        time.sleep(seconds)
    finally:
        with _CALLS_LOCK:
            _CALLS["now"] -= 1
    return _text(start_response, "slept")


def _hold_fds(seconds):
    """Keep every free file descriptor of the process taken for `seconds` (taking
    back any that is freed meanwhile), so that accept() fails with EMFILE."""
    deadline = time.monotonic() + seconds

    def hold():
        held = []
        while time.monotonic() < deadline:
            try:
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
            time.sleep(0.005)
        for fd in held:
            os.close(fd)

    threading.Thread(target=hold, daemon=True).start()


def _echo(environ, start_response, query):
    stream = environ["wsgi.input"]
    mode = query.get("mode", "read")
    if mode == "read":
        body = stream.read()
    elif mode == "readline":
        body = b"|".join(iter(stream.readline, b""))
    elif mode == "lines":
        body = b"|".join(stream)
    elif mode == "readlines":
        body = b"|".join(stream.readlines())
    else:  # pieces of a fixed size
        size = int(mode)
        body = b"|".join(iter(lambda: stream.read(size), b""))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Body-Length", str(len(body)))])
    return [body]


def _body_after_start(environ, start_response):
    """Sends part of the response, then reads the body (of an Expect: 100-continue request)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"started\n"
    yield environ["wsgi.input"].read()


def _late_error(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first piece\n"
    raise RuntimeError("failed after the response started")


def _file(environ, start_response, size):
    handle = tempfile.TemporaryFile()
    handle.write(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    handle.seek(0)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](handle, 8192)


def _exc_info(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replaced")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced by exc_info"]


def _empty_then_error(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    try:
        raise ValueError("failed before any body byte")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    yield b"error page"


def _lazy_start(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    yield b"after an empty piece"


def create_app():
    """A factory, for --factory and 'module:create_app()'."""
    return app


class Holder:
    wsgi = staticmethod(app)


holder = Holder()
not_callable = 42
