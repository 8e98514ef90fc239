"""One HTTP request on the asgi worker: its ASGI scope, `receive` and `send`.

`HttpCycle` is what an HTTP/1.1 request and an HTTP/2 stream share: the
scope, the body the connection feeds it (`body_arrived`, `body_complete`,
`body_failed`), `receive()` with its pace, and how the answer ends (the
error that takes its place, the access log, the counters). The connection
learns from `response_done` that the answer is out. What goes on the wire
is each protocol's: `RequestCycle` here is HTTP/1.1's, which frames the
answer with the core's `ResponseFramer` and asks the core's connection
state (`RequestParser`) whether 100 Continue is due and whether an unread
body may be skipped; `StreamCycle` (workers.asgi.h2.stream) is HTTP/2's.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import unquote

from mypy_extensions import mypyc_attr

from hybrid.logs import error_log as log
from hybrid.protocol import persistence
from hybrid.protocol import (
    REASONS,
    BodyPace,
    ProtocolError,
    Request,
    RequestParser,
    ResponseFramer,
    early_hints,
    error_body,
    error_response,
)
from hybrid.workers.asgi.cycle import Channel, ClientDisconnected, Cycle

if TYPE_CHECKING:
    from hybrid.typing import Message, Scope

BODY_HIGH_WATER: Final = 65536  # buffered request body that pauses reading
PATHSEND_PIECE: Final = 65536  # bytes of a file read per send() under http.response.pathsend
# The ASGI extensions both protocols serve (a copy in every scope: an app may change it).
EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.trailers": {}, "http.response.pathsend": {}, "http.response.early_hint": {},
}
ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.4"}

class CycleChannel(Channel, Protocol):
    """What a request cycle sees of its connection, on either protocol."""

    def response_done(self, cycle: Any, keep_alive: bool) -> None:
        """`cycle`'s answer is out: the next request, or wait, or close."""


class HttpChannel(CycleChannel, Protocol):
    """What an HTTP/1.1 request cycle sees of its connection."""

    parser: RequestParser  # the connection's HTTP state: 100-continue, skipping


_CC = TypeVar("_CC", bound=CycleChannel)


@mypyc_attr(allow_interpreted_subclasses=True)  # (StreamCycle)
class HttpCycle(Cycle[_CC]):
    """One request, on either protocol: its scope, its body, and how it ends."""

    __slots__ = ("request", "scope", "client", "scheme", "body", "buffered", "body_done", "body_delivered",
                 "body_error", "disconnected", "started", "complete",
                 "status", "clock", "pace", "task", "timed_out", "awaiting_disconnect")

    def __init__(self, channel: _CC, request: Request) -> None:
        super().__init__(channel)
        self.request = request
        access_log = channel.server.access_log
        if access_log.json:
            access_log.prepare(request)  # (a request id the app sees too)
        # The client and scheme, after proxy headers (the scope's, the access log's).
        self.client, self.scheme = resolved_peer(channel, request)
        self.body: list[bytes] = []
        self.buffered = 0
        self.body_done = False
        self.body_delivered = False
        self.body_error: ProtocolError | None = None
        self.pace: BodyPace | None = None  # made at the first wait for body bytes
        self.disconnected = False
        self.started = False
        self.complete = False
        self.status = 0
        self.clock = time.perf_counter()
        self.task: asyncio.Task[None] | None = None  # the app's, once it runs
        self.timed_out = False  # the worker cancelled it: --request-timeout
        self.awaiting_disconnect = False  # the app's receive() waits for the client to leave

    # --- from the connection ------------------------------------------------------------

    def body_arrived(self, data: bytes) -> None:
        self.body.append(data)
        self.buffered += len(data)
        self._wake()
        if self.buffered > BODY_HIGH_WATER:
            self.channel.input_backlogged()

    def body_complete(self) -> None:
        self.body_done = True
        self._wake()

    def body_failed(self, error: ProtocolError) -> None:
        """The body cannot be read (malformed, cut short, or too slow): the error's
        answer replaces the app's if none went out yet, else the connection is cut,
        now; the app's next receive() sees http.disconnect and its send() raises
        ClientDisconnected, so no answer of the app's follows a body it never had."""
        self.body_error = error
        self.disconnected = True
        self.body.clear()  # (a part of a body that failed is of no use to the app)
        log.debug("Request body from %s failed (%s): %s", client_text(self.channel)[0],
                  self.request.summary(), error.detail)
        self._fail(error)
        self._wake()

    def client_gone(self) -> None:
        self.disconnected = True
        self._wake()

    @property
    @abc.abstractmethod
    def answer_begun(self) -> bool:
        """Some of the answer is on its way to the wire (a head alone is held)."""

    # --- the wire: each protocol's --------------------------------------------------

    @abc.abstractmethod
    def _ask_for_body(self) -> None:
        """The app's first read of a body not all here: a 100 Continue, if one is due."""

    @abc.abstractmethod
    def _body_stalled(self) -> ProtocolError:
        """The error for a body that stopped coming."""

    @abc.abstractmethod
    def _body_taken(self, size: int) -> None:
        """The app took `size` bytes of the body: the client may send more."""

    @abc.abstractmethod
    def _write_error(self, status: int, detail: str) -> None:
        """Answer with the error page for `status`, in place of the app's answer."""

    @abc.abstractmethod
    def _body_bytes_sent(self) -> int:
        """Body bytes of the answer sent so far (the access log's %(b)s)."""

    def _client_seen(self) -> tuple[str, str]:
        """The client as the access log names it: after proxy headers, as the WSGI
        classes log it."""
        client = self.client
        return (client[0], str(client[1])) if client else ("", "")

    # --- the ASGI interface -------------------------------------------------------------

    async def receive(self) -> Message:
        channel = self.channel
        if not self.body_done:
            self._ask_for_body()
        while not self.body and not self.body_done and not self.disconnected:
            cfg = channel.server.cfg
            pace = self.pace
            if pace is None:
                pace = self.pace = BodyPace(cfg.body_timeout, cfg.body_min_rate)
            started = channel.server.loop.time()
            try:
                await self._wait(pace.allowance())
            except asyncio.TimeoutError:
                pace.waited(channel.server.loop.time() - started, 0)
                self.body_failed(pace.too_slow() or self._body_stalled())
            else:
                pace.waited(channel.server.loop.time() - started, sum(map(len, self.body)))
        if self.body or (self.body_done and not self.body_delivered):
            data = b"".join(self.body)
            self.body.clear()
            self.buffered = 0
            self._body_taken(len(data))
            self.body_delivered = self.body_done
            return {"type": "http.request", "body": data, "more_body": not self.body_done}
        # The body was delivered: the next event is the client leaving.
        self.awaiting_disconnect = True
        try:
            while not self.disconnected and not self.complete:
                await self._wait()
        finally:
            self.awaiting_disconnect = False
        return {"type": "http.disconnect"}

    async def send_path(self, path: str) -> None:
        """`http.response.pathsend`: the file at `path` as the body, in pieces through
        `send()`, so that each waits for the client as the app's own would. (Read on
        the loop: a local file's read is short, as a static-file app's own would be.)"""
        if not self.started or self.complete:
            raise RuntimeError("'http.response.pathsend' needs a response begun and not "
                               "complete")
        with open(path, "rb") as file:
            while piece := file.read(PATHSEND_PIECE):
                await self.send({"type": "http.response.body", "body": piece, "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    # --- how the app ended --------------------------------------------------------------

    def _cancelled_by_timeout(self) -> bool:
        return self.timed_out

    def _timed_out(self) -> None:
        self._fail(ProtocolError(504, "the app took longer than --request-timeout"))

    def _client_left(self) -> None:
        log.debug("Client left before the response to %s was sent", self.request.summary())
        self._fail()

    def _app_raised(self) -> None:
        if self.disconnected:  # the client left, or its body failed: not the app's fault
            log.debug("ASGI application raised after the client left (%s)",
                      self.request.summary(), exc_info=True)
        else:
            log.exception("Exception in ASGI application (%s)", self.request.summary())
        self._fail()

    def _app_returned(self) -> None:
        if self.disconnected:
            self._fail()  # the client left, or its body failed: not the app's fault
        elif not self.started:
            log.error("ASGI application returned without a response (%s)",
                      self.request.summary())
            self._fail()
        elif not self.complete:
            log.error("ASGI application returned before its response was complete (%s)",
                      self.request.summary())
            self._fail()

    def time_out(self) -> bool:
        """--request-timeout is over: stop the app (the client gets a 504, or a cut
        answer); False when no app runs for it."""
        if self.task is None:
            return False
        self.timed_out = True
        self.task.cancel()
        return True

    def refuse(self, status: int, detail: str) -> None:
        """Answer without running the app (a limit said no)."""
        self.status = status
        self._write_error(status, detail)
        self.complete = True
        self._finish(keep_alive=False)

    def _fail(self, error: ProtocolError | None = None) -> None:
        """End the answer: `error`'s (else the body's error, else a 500) if none
        went out yet, else cut it."""
        if self.complete:
            return
        self.complete = True
        if not self.answer_begun:
            error = error or self.body_error
            if error is None and self.disconnected:
                self.status = 499  # the client left before an answer (nginx's code)
            else:
                self.status = error.status if error else 500
                self._write_error(self.status, error.detail if error else "")
        self._finish(keep_alive=False)  # a started response cannot be mended: cut it

    def _finish(self, keep_alive: bool) -> None:
        server = self.channel.server
        duration = time.perf_counter() - self.clock
        if server.log_access:
            server.access_log.log(self.request, self.status, self._body_bytes_sent(),
                                  self._client_seen(), duration)
        server.stats.request_done(self.request.method, self.status, self._body_bytes_sent(),
                                  duration, http2=self.request.http_version == "2")
        server.request_served()
        self._wake()
        self.channel.response_done(self, keep_alive)


class Http1Cycle(HttpCycle[HttpChannel]):
    """One HTTP/1.1 request, whatever runs it: the answer framed by the core's
    `ResponseFramer`, the body paced by the connection's parser."""

    __slots__ = ("framer", "head")

    def __init__(self, channel: HttpChannel, request: Request) -> None:
        super().__init__(channel, request)
        self.framer = ResponseFramer()
        self.head: bytes | None = None  # framed, held for the first piece of the body

    @abc.abstractmethod
    def begin(self, context: contextvars.Context) -> None:
        """Run the app on this request, from a copy of `context` (the connection's:
        never the previous request's); the connection counted it in flight."""

    @property
    def answer_begun(self) -> bool:
        return self.started and self.head is None

    def _ask_for_body(self) -> None:
        interim = self.channel.parser.continue_response(self.started)
        if interim:
            self.channel.write(interim)

    def _body_stalled(self) -> ProtocolError:
        return self.channel.parser.timeout_error()

    def _body_taken(self, size: int) -> None:
        self.channel.input_consumed()

    def _write_error(self, status: int, detail: str) -> None:
        self.channel.write(error_response(status, detail))
        self.framer.bytes_sent += len(error_body(status, detail))  # (the page is the body)

    def _body_bytes_sent(self) -> int:
        return self.framer.bytes_sent

    def _write_body(self, data: bytes, last: bool) -> None:
        """Frame a piece of the body, with the head held for it (one write), and
        write it (dropped if the client is gone); `last`: the answer is complete."""
        framer = self.framer
        out = framer.last(data) if last else framer.body(data)
        if self.head is not None:
            out, self.head = self.head + out, None
        if last:
            self.complete = True
        if out:
            self.channel.write(out)

    def _frame_head(self, status: int, reason: bytes, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Frame the answer's head (held in `head` for the first piece of the body),
        with whether the connection may outlive it; the core raises
        LocalProtocolError for a head it may not send."""
        request = self.request
        channel = self.channel
        server = channel.server
        server_willing = server.alive and server.keeps_alive
        if self.body_done:
            keep_alive = persistence.may_persist(request, server_willing)
        else:
            keep_alive = persistence.may_persist(request, server_willing, self.buffered,
                                                 channel.parser.body_rest)
        self.head = self.framer.head(request.method, request.http_version, keep_alive,
                                     status, reason, headers)
        self.started = True  # no interim response once the final one has begun
        self.status = status


class RequestCycle(Http1Cycle):
    """One HTTP/1.1 request to an ASGI app: its scope, `receive` and `send`."""

    __slots__ = ("trailers_due", "body_ended")

    def __init__(self, channel: HttpChannel, request: Request) -> None:
        super().__init__(channel, request)
        self.scope = http_scope(channel, request, self.client, self.scheme)
        self.trailers_due = False  # the app announced trailers: they end the answer
        self.body_ended = False  # its last body came; the trailers are still to come

    def begin(self, context: contextvars.Context) -> None:
        # A task copies the context it is created in.
        self.task = context.run(self.channel.server.loop.create_task,
                                self.run(self.channel.server.app))

    async def send(self, message: Message) -> None:
        channel = self.channel
        if channel.closed:
            raise ClientDisconnected("the client closed the connection")
        if self.body_error is not None:
            raise ClientDisconnected(f"the request body failed: {self.body_error.detail}")
        kind = message.get("type")
        if not self.started:
            if kind != "http.response.start":
                if kind == "http.response.early_hint":
                    self._send_early_hint(message)
                    return
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            status = message["status"]
            self._frame_head(status, REASONS.get(status, b""), message.get("headers", ()))
            self.trailers_due = message.get("trailers", False)
            return
        if kind != "http.response.body":
            if kind == "http.response.trailers":
                self._send_trailers(message)
                return
            if kind == "http.response.pathsend":
                await self.send_path(message["path"])
                return
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        if self.complete or self.body_ended:
            raise RuntimeError("'http.response.body' sent after the response was complete")
        if channel.flow.write_paused:  # a client that does not read holds the writer here
            await channel.drain()
            if channel.closed:
                raise ClientDisconnected("the client closed the connection")
            if self.body_error is not None:  # (it failed while the app waited here)
                raise ClientDisconnected(f"the request body failed: {self.body_error.detail}")
        more = message.get("more_body", False)
        body = message.get("body", b"")
        if not more and self.trailers_due:
            more = self.body_ended = True  # (the trailers end the answer)
        self._write_body(body, last=not more)
        if not more:
            self._finish(self.framer.keep_alive)

    def _send_early_hint(self, message: Message) -> None:
        """103 Early Hints before the answer (RFC 8297); not to an HTTP/1.0 client,
        which knows no interim responses."""
        if self.request.http_version == "1.1":
            self.channel.write(early_hints(message.get("links", ())))

    def _send_trailers(self, message: Message) -> None:
        if not self.body_ended or self.complete:
            raise RuntimeError("'http.response.trailers' sent before the body ended, or "
                               "without 'trailers' in 'http.response.start'")
        more = message.get("more_trailers", False)
        if more:
            raise RuntimeError("more_trailers is not supported: send all trailers at once")
        data = self.framer.end_with_trailers(message.get("headers", ()))
        if self.head is not None:
            data, self.head = self.head + data, None
        self.complete = True
        self.channel.write(data)
        self._finish(self.framer.keep_alive)


def http_scope(channel: Channel, request: Request, client: tuple[str, int] | None,
               scheme: str) -> Scope:
    """The ASGI scope of a request (a WebSocket cycle adapts it); `client` and
    `scheme` as `resolved_peer` gives them."""
    server = channel.server
    root_path = server.root_path
    raw_path = request.path
    path = raw_path.decode("ascii", "replace")  # llhttp admits only ASCII in targets
    if "%" in path:
        path = unquote(path)
    scope: Scope = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version,
        "server": channel.address,
        "client": client,
        "scheme": scheme,
        "method": request.method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": request.query,
        "headers": request.headers,
        "state": server.state.copy(),
        "extensions": EXTENSIONS.copy(),
    }
    if channel.tls is not None:
        scope["extensions"]["tls"] = channel.tls
    return scope


def resolved_peer(channel: Channel, request: Request) -> tuple[tuple[str, int] | None, str]:
    """The client and scheme of a request: as its proxy's fields say when the
    peer is trusted (--forwarded-allow-ips), else the connection's."""
    client, scheme = channel.client, channel.scheme
    if request.forwarded and channel.peer_trusted:
        peer = client_text(channel)
        (host, port), scheme = channel.server.proxy.resolve(request.headers, peer, scheme, True)
        if (host, port) != peer:
            client = (host, int(port) if port.isdigit() else 0)
    return client, scheme


def client_text(channel: Channel) -> tuple[str, str]:
    """The connection's client as (host, port) strings, as the logs and proxy take it."""
    if channel.client is None:
        return "", ""
    return channel.client[0], str(channel.client[1])
