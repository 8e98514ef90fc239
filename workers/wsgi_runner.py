"""Running a WSGI request on a blocking connection, and framing its answer.

`RequestRunner` runs one request of the `sync` or `thread` worker on a
`hybrid.workers.blocking.Connection`: the environ, `wsgi.input` fed from the
connection, gunicorn's pre_request and post_request hooks when the config file
has them, the access log line. `FramingResponder` turns the app's answer into
HTTP/1.1 bytes, framed by the core, written with the connection's `send` /
sendfile. `failed_body` says which requests never reach the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import IO, Any

from hybrid import wsgi, wsgi_environ, wsgi_input
from hybrid.config import Config
from hybrid.forwarded import ProxyHeaders
from hybrid.hooks import HookRequest, HookResponse
from hybrid.logs import AccessLog
from hybrid.protocol import (
    Data,
    Event,
    ProtocolError,
    Request,
    ResponseFramer,
    error_body,
    error_response,
)
from hybrid.typing import WSGIApp
from hybrid.workers.blocking import Connection


def failed_body(events: Iterable[Event]) -> ProtocolError | None:
    """The error that ends a request's body among `events` (what the parser gave
    after its head), when the body failed before the app could run: such a
    request is refused as a malformed head is, and never reaches the app."""
    for event in events:
        if type(event) is not Data:
            return event if type(event) is ProtocolError else None
    return None


class RequestRunner:
    """Runs one WSGI request after another on blocking connections, and logs
    each: what every request of a worker needs (the app, the settings, the
    logs), bound once."""

    def __init__(self, app: WSGIApp, cfg: Config, access_log: AccessLog, proxy: ProxyHeaders,
                 *, multithread: bool, hooked: Any = None) -> None:
        """`hooked`: the worker, when its config file has a pre_request or
        post_request hook."""
        self._app = app
        self._cfg = cfg
        self._access_log = access_log
        self._proxy = proxy
        self._multithread = multithread
        self._hooked = hooked
        self._root_path = cfg.root_path
        self._sendfile = cfg.sendfile

    def respond(self, conn: Connection, request: Request, server_willing: bool,
                started: float) -> wsgi.Outcome:
        """Run `request` on `conn`; `started`: a time.monotonic() reading
        taken when it arrived. `server_willing`: whether the worker would keep
        the connection (`persistence.may_persist`)."""
        client, scheme = conn.client, conn.scheme
        if request.forwarded:
            if conn.peer_trusted is None:
                conn.peer_trusted = self._proxy.trusted(conn.client[0])
            client, scheme = self._proxy.resolve(request.headers, client, scheme,
                                                 conn.peer_trusted)
        access_log = self._access_log
        if access_log.json:  # (the only format that adds to the request)
            access_log.prepare(request)
        environ = wsgi_environ.build_environ(request, conn.body_input(self._cfg), conn.server, client,
                                     scheme, self._root_path, self._multithread, conn.tls)
        responder = FramingResponder(
            request, conn.send, conn.sendfile if self._sendfile else None,
            may_persist=conn.may_persist, server_willing=server_willing)
        if self._hooked is None:
            outcome = wsgi.run(self._app, environ, responder)
        else:
            outcome = _run_hooked(self._app, environ, responder, self._hooked,
                                  HookRequest(request, client, scheme))
        duration = time.monotonic() - started
        access_log.log(request, outcome.status, outcome.bytes_sent, client, duration)
        conn.stats.request_done(request.method, outcome.status, outcome.bytes_sent, duration)
        return outcome


def _run_hooked(app: WSGIApp, environ: dict[str, Any], responder: FramingResponder,
                worker: Any, request: HookRequest) -> wsgi.Outcome:
    """wsgi.run with gunicorn's pre_request and post_request hooks around it; a
    pre_request that raises fails the request as the app would (500)."""
    before = worker.hooks.get("pre_request")

    def hooked_app(environ: dict[str, Any], start_response: Any) -> Any:
        if before is not None:
            before(worker, request)
        return app(environ, start_response)

    outcome = wsgi.run(hooked_app, environ, responder)
    worker.hooks.call("post_request", worker, request, environ,
                      HookResponse(outcome.status, outcome.bytes_sent))
    return outcome


class FramingResponder:
    """A WSGI response as HTTP/1.1 bytes on a blocking socket, framed by the core.

    The head waits to go out with the first piece of the body (one write);
    a `wsgi.file_wrapper` over a real file goes out with `sendfile(file,
    count)` (all of it when count is None), which returns the bytes sent
    (`sendfile` None: --no-sendfile, the file is iterated like any body).
    `may_persist(request, server_willing)`, asked when the head is written:
    whether the connection may outlive the answer (the connection's
    `Connection.may_persist`, which asks the core's `persistence.may_persist`).
    """

    def __init__(self, request: Request, send: Callable[[bytes], None],
                 sendfile: Callable[[IO[bytes], int | None], int] | None, *,
                 may_persist: Callable[[Request, bool], bool], server_willing: bool) -> None:
        self._request = request
        self._send = send
        self._sendfile = sendfile
        self._keep_alive = True  # until an error page is sent instead
        self._may_persist = may_persist
        self._server_willing = server_willing
        self._framer = ResponseFramer()
        self._head = b""
        self._error_bytes = 0  # an error page sent instead counts as the body it is

    def start(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        request = self._request
        self._head = self._framer.head(request.method, request.http_version,
                                       self._may_persist(request, self._server_willing),
                                       status, reason, headers)

    def body(self, data: bytes, last: bool) -> None:
        framer = self._framer
        out = framer.last(data) if last else framer.body(data)
        if self._head:
            out, self._head = self._head + out, b""
        if out:
            self._send(out)

    def whole(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
              data: bytes) -> None:
        request, framer = self._request, self._framer
        head = framer.head(request.method, request.http_version,  # (start(), inline)
                           self._may_persist(request, self._server_willing), status, reason,
                           headers)
        self._send(head + framer.last(data))

    def file(self, wrapper: wsgi_input.FileWrapper) -> bool:
        framer = self._framer
        if self._sendfile is None or framer.chunked or not framer.has_body \
                or wrapper.fileno() is None:
            return False
        head, self._head = self._head, b""
        self._send(head)
        remaining = framer.length_remaining  # (None: the body runs to the close)
        if remaining != 0:
            framer.account(self._sendfile(wrapper.filelike, remaining))
        self.body(b"", last=True)
        return True

    def error(self, status: int, detail: str) -> None:
        self._keep_alive = False
        self._send(error_response(status, detail))
        self._error_bytes = len(error_body(status, detail))

    @property
    def sent(self) -> int:
        return self._framer.bytes_sent + self._error_bytes

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive and self._framer.keep_alive
