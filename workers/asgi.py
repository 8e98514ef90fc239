"""The `asgi` worker: an event loop (uvloop by default), one asyncio Protocol
per connection, ASGI 3 HTTP cycles and the lifespan protocol.

The Protocol only moves bytes: it feeds them to the shared HTTP core
(`hybrid.protocol`) and routes the events to `RequestCycle`s, one per
request, served strictly in arrival order (pipelining). Flow control works
both ways: reading pauses while a request body waits unconsumed beyond
BODY_HIGH_WATER (or too many pipelined requests wait), and an app's `send`
waits while the transport's write buffer is above its high-water mark.

A body the app answered without reading is skipped (up to DRAIN_BYTES, as
the blocking workers do) so the connection stays alive. A connection closed
while the client may still be sending shuts our side first and drops input
for a moment (a lingering close): closing with unread input makes the kernel
send RST, which can destroy the last response before the client reads it.

The heartbeat is beaten by a timer on the loop itself, so a loop blocked
by CPU-bound code for longer than --timeout gets the worker replaced.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import deque
from typing import Any
from urllib.parse import unquote

from hybrid import logs
from hybrid.logs import error_log as log
from hybrid.protocol import (
    CONTINUE,
    REASONS,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    RequestParser,
    ResponseFramer,
    error_response,
)
from hybrid.heartbeat import HEARTBEAT_INTERVAL
from hybrid.workers.base import Worker
from hybrid.workers.asgi_ws import ClientDisconnected, WebSocketCycle, is_websocket
from hybrid.workers.blocking import (
    DRAIN_BYTES,
    LINGER_BYTES,
    LINGER_SECONDS,
    client_address,
    may_skip_rest,
    server_address,
)

BODY_HIGH_WATER = 65536  # buffered request body that pauses reading
MAX_PIPELINED = 16  # requests parsed ahead of the one being answered
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
WEBSOCKET_CLOSE_GRACE = 5.0  # seconds a client has to answer our close frame


class AsgiWorker(Worker):
    """Serves ASGI 3 apps on an event loop."""

    interfaces = ("asgi",)

    def run(self) -> None:
        if self.cfg.loop == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            loop.close()

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set up what connections read from the worker (before any is made)."""
        cfg = self.cfg
        self.loop = loop
        self.limits = cfg.request_limits()
        self.limit_concurrency = cfg.limit_concurrency
        self.root_path = cfg.root_path
        self.log_access = self.access_log.enabled
        self.connections: set[HttpProtocol] = set()
        self.in_flight = 0
        self.state: dict[str, Any] = {}

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.cfg
        self.prepare(loop)
        self._stop = asyncio.Event()
        self._fast_stop = False
        lifespan = Lifespan(self.app, cfg.lifespan)
        failure = await lifespan.startup()
        if failure:
            self.boot_failed(failure)
        self.state = lifespan.state
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, False)
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, True)
        loop.add_signal_handler(signal.SIGQUIT, self._on_stop_signal, True)
        loop.add_signal_handler(signal.SIGUSR1, logs.reopen_files)
        if not self.alive:  # a TERM came before the loop took the signals over
            self._stop.set()
        servers = [await loop.create_server(lambda: HttpProtocol(self), sock=listener,
                                            backlog=cfg.backlog)
                   for listener in self.listeners]
        self.report_ready()
        self._tick()
        await self._stop.wait()
        for server in servers:
            server.close()
        for connection in list(self.connections):
            connection.shut_down(abort=self._fast_stop)
        deadline = loop.time() + (0 if self._fast_stop else cfg.graceful_timeout)
        while self.connections and loop.time() < deadline and not self._fast_stop:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.shut_down(abort=True)
        if not self._fast_stop:
            await lifespan.shutdown(cfg.graceful_timeout)

    def describe_work(self) -> str:
        return ", ".join(
            f"{c.active.request.method} {c.active.request.target.decode('latin-1')}"
            for c in self.connections if c.active is not None)

    def _on_stop_signal(self, fast: bool) -> None:
        self.alive = False
        self._fast_stop = self._fast_stop or fast
        self._stop.set()

    def _tick(self) -> None:
        """Heartbeat from the loop (it beats only while the loop turns), and the
        connections' header and keep-alive deadlines."""
        self.tend()
        if self.parent_changed():
            self._on_stop_signal(False)
            return
        now = self.loop.time()
        for connection in [c for c in self.connections
                           if c.deadline is not None and c.deadline <= now]:
            connection.deadline = None
            connection.on_deadline()
        self.loop.call_later(HEARTBEAT_INTERVAL, self._tick)


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: bytes to the core, events to request cycles."""

    def __init__(self, worker: AsgiWorker) -> None:
        self.worker = worker
        self.cfg = worker.cfg
        self.parser = RequestParser(worker.limits)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.peer_trusted = False  # may this peer speak for the client (proxy headers)
        self.server: tuple[str, int | None] | None = None
        self.active: RequestCycle | None = None  # the one being answered
        self.receiving: RequestCycle | None = None  # the one whose body arrives now
        self.waiting: deque[RequestCycle] = deque()  # pipelined, not started
        self.pending_error: ProtocolError | None = None
        self.websocket: WebSocketCycle | None = None
        self.read_paused = False
        # Where reads go instead of the parser: an accepted WebSocket, or a lingering close.
        self.divert: Any = None
        self.lingering = False
        self.dropped = 0  # input bytes skipped or lingered over
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False
        self.deadline: float | None = None  # swept once a second by the worker's tick
        self.on_deadline: Any = None
        self.idle = False

    # --- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is no subclass)
        self.worker.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = client_address(transport.get_extra_info("peername"))
        self.client = (client[0], int(client[1])) if client[1] else None
        host, port = server_address(sock) if sock is not None else ("", "")
        self.server = (host, int(port) if port else None)
        self.peer_trusted = self.worker.proxy.trusted(client[0])
        self._arm_timer(self.cfg.header_timeout, self._on_head_timeout)

    def data_received(self, data: bytes) -> None:
        divert = self.divert
        if divert is not None:
            divert(data)
            return
        for event in self.parser.feed(data):
            self._route(event)
        if self.idle and self.parser.in_message:
            # Part of the next head came: from now on it has --header-timeout.
            self.idle = False
            self._arm_timer(self.cfg.header_timeout, self._on_head_timeout)

    def eof_received(self) -> bool:
        if self.websocket is not None or self.lingering:
            return False  # connection_lost tells the app; a lingering close is over
        for event in self.parser.feed_eof():
            self._route(event)
        # A client that stops sending has left, as far as an ASGI app can tell
        # (uvicorn does the same): returning False closes the transport after
        # what was written so far, and connection_lost tells the cycles.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        self._cancel_timer()
        self.writable.set()
        for cycle in (self.active, self.receiving, *self.waiting, self.websocket):
            if cycle is not None:
                cycle.client_gone()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # --- events from the parser ------------------------------------------------------------

    def _route(self, event: Event) -> None:
        kind = type(event)
        if kind is Request:
            if self.lingering:
                return  # closing: what the client sent after that is dropped
            self.deadline = None
            self.idle = False
            if event.upgrade and is_websocket(event) and self.active is None \
                    and self.websocket is None:
                self._start_websocket(event)
                return
            cycle = self.receiving = RequestCycle(self, event)
            if self.active is None:
                self._start(cycle)
            else:
                self.waiting.append(cycle)
                if len(self.waiting) >= MAX_PIPELINED:
                    self._pause_reading()
        elif kind is EndOfMessage:
            receiving = self.receiving
            if receiving is not None:  # (None: the end of a WebSocket handshake request)
                receiving.body_complete()
                if receiving.complete and not self.lingering:  # its skipped body ended
                    self.receiving = None
                    self._carry_on()
        elif kind is Data:
            receiving = self.receiving
            if receiving is not None:
                if receiving.complete:
                    self._skip(len(event.data))
                else:
                    receiving.body_arrived(event.data)
        elif kind is ProtocolError:
            receiving = self.receiving
            if receiving is not None and not receiving.body_done:
                receiving.body_failed(event)
                if receiving.complete:  # answered already: no second answer, just close
                    self._close()
                    return
            if self.active is None:
                self._reject(event)
            else:
                self.pending_error = event  # answered after the requests before it
        elif kind is ConnectionClosed and self.active is None:
            self._close()

    def _start_websocket(self, request: Request) -> None:
        websocket = WebSocketCycle(self, request, http_scope(self, request))
        error = websocket.handshake_error()
        if error is not None:
            status, detail, headers = error
            self._reject(ProtocolError(status, detail), headers)
            return
        self.websocket = websocket
        self.worker.in_flight += 1
        self.worker.loop.create_task(websocket.run(self.worker.app))

    def upgraded(self, websocket: WebSocketCycle) -> None:
        """The app accepted: from now on the bytes are WebSocket frames."""
        self._cancel_timer()
        self.divert = websocket.data_received

    def close_after_websocket(self, grace: bool = False) -> None:
        """Close now, or, after sending our close frame, once the client answers
        (or within a few seconds)."""
        if grace:
            self._arm_timer(WEBSOCKET_CLOSE_GRACE, self._close)
        else:
            self._close()

    def _start(self, cycle: RequestCycle) -> None:
        self.active = cycle
        worker = self.worker
        if worker.limit_concurrency and worker.in_flight >= worker.limit_concurrency:
            cycle.refuse(503, "too many requests in flight; try again")
            return
        worker.in_flight += 1  # counted now: tasks started in this turn of the loop run later
        worker.loop.create_task(cycle.run(worker.app))

    def response_done(self, cycle: RequestCycle, keep_alive: bool) -> None:
        """`cycle` finished its response; go on with the next one, or wait, or close."""
        if cycle.request.upgrade and not self.closed:
            # An Upgrade answered as plain HTTP: the connection stays HTTP.
            for event in self.parser.resume():
                self._route(event)
        self.active = None
        if self.closed:
            return
        if not keep_alive or not self.worker.alive or cycle.body_error is not None:
            self._close()
            return
        if not cycle.body_done:
            # Answered before the body came (a 401 to an upload, say): skip the rest
            # of it, if it is short and timely, rather than lose the connection.
            self.dropped = cycle.buffered  # counted as skipped, as may_skip_rest() did
            cycle.body.clear()
            self._arm_timer(self.cfg.body_timeout, self._close)
            self._resume_reading()
            return
        if self.receiving is cycle:
            self.receiving = None
        if not self.waiting and self.pending_error is None and self.parser.failed:
            self._close()  # the client closed its side after the last request
            return
        self._carry_on()

    def _carry_on(self) -> None:
        """The last response is done and its request read: the next one, or wait.

        Also called while a read's events are being routed (a skipped body
        ended): the events after it, an error among them, are routed next.
        """
        if self.waiting:
            self._start(self.waiting.popleft())
            self._resume_reading()
        elif self.pending_error is not None:
            self._reject(self.pending_error)
        else:
            self.idle = not self.parser.in_message
            if self.idle:
                self._arm_timer(self.cfg.keep_alive, self._close)
            else:
                self._arm_timer(self.cfg.header_timeout, self._on_head_timeout)
            if self.read_paused:
                self._resume_reading()

    def _reject(self, error: ProtocolError, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        log.debug("Rejected request from %s: %d %s", self.client, error.status, error.detail)
        self.write(error_response(error.status, error.detail, headers))
        self._close()

    def _skip(self, size: int) -> None:
        self.dropped += size
        if self.dropped > DRAIN_BYTES:
            self._close()

    # --- helpers ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and not self.lingering:
            assert self.transport is not None
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.writable.is_set():
            await self.writable.wait()

    def body_consumed(self) -> None:
        if not self.waiting or len(self.waiting) < MAX_PIPELINED:
            self._resume_reading()

    def body_backlogged(self) -> None:
        self._pause_reading()

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            assert self.transport is not None
            self.transport.pause_reading()
            self.read_paused = True

    def _resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            assert self.transport is not None
            self.transport.resume_reading()
            self.read_paused = False

    def _arm_timer(self, delay: float, callback: Any) -> None:
        # A deadline the worker checks every second, not a loop timer per
        # request: arming and cancelling one costs more than serving a request.
        self.deadline = self.worker.loop.time() + delay
        self.on_deadline = callback

    def _cancel_timer(self) -> None:
        self.deadline = None

    def _on_head_timeout(self) -> None:
        if self.active is None:
            self._reject(ProtocolError(408, "the client was too slow to send the request"))

    def _close(self) -> None:
        transport = self.transport
        if self.closed or self.lingering or transport is None:
            return  # (a lingering close keeps its own deadline)
        self._cancel_timer()
        parser = self.parser
        if (parser.in_message or parser.failed) and not transport.is_closing() \
                and transport.can_write_eof():
            # The client may still be sending: linger (see the module docstring).
            self.lingering = True
            self.divert = self._drop_input
            self.dropped = 0
            transport.write_eof()  # after what is buffered
            self._resume_reading()
            self._arm_timer(LINGER_SECONDS, transport.close)
            return
        transport.close()

    def _drop_input(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > LINGER_BYTES:
            assert self.transport is not None
            self.transport.close()

    def shut_down(self, abort: bool) -> None:
        """The worker stops: close now if idle (or if aborting), else after this response;
        an open WebSocket gets a going-away close."""
        if abort:
            if self.transport is not None:
                self.transport.abort()
        elif self.websocket is not None:
            self.websocket.shut_down()
        elif self.active is None:
            self._close()


class RequestCycle:
    """One request: its ASGI scope, `receive` and `send`."""

    __slots__ = ("protocol", "request", "scope", "body", "buffered", "body_done",
                 "body_delivered", "body_error", "disconnected", "_waiter", "continue_due",
                 "framer", "head", "started", "complete", "status", "clock")

    def __init__(self, protocol: HttpProtocol, request: Request) -> None:
        self.protocol = protocol
        self.request = request
        self.scope = http_scope(protocol, request)
        self.body: list[bytes] = []
        self.buffered = 0
        self.body_done = False
        self.body_delivered = False
        self.body_error: ProtocolError | None = None
        self.disconnected = False
        self._waiter: asyncio.Future[None] | None = None  # receive() waiting for news
        self.continue_due = request.expect_continue
        self.framer = ResponseFramer()
        self.head: bytes | None = None
        self.started = False
        self.complete = False
        self.status = 0
        self.clock = time.perf_counter()

    # --- from the protocol --------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None = None) -> None:
        self._waiter = self.protocol.worker.loop.create_future()
        try:
            await asyncio.wait_for(self._waiter, timeout)
        finally:
            self._waiter = None

    def body_arrived(self, data: bytes) -> None:
        self.body.append(data)
        self.buffered += len(data)
        self._wake()
        if self.buffered > BODY_HIGH_WATER:
            self.protocol.body_backlogged()

    def body_complete(self) -> None:
        self.body_done = True
        self._wake()

    def body_failed(self, error: ProtocolError) -> None:
        """The body cannot be read (malformed, or too slow): the app's next receive()
        sees http.disconnect, and the answer, if the app has not started one, is
        the error's status."""
        self.body_error = error
        self.disconnected = True
        self._wake()

    def client_gone(self) -> None:
        self.disconnected = True
        self._wake()

    # --- the ASGI interface -------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if self.continue_due and not self.body and not self.body_done:
            self.continue_due = False
            self.protocol.write(CONTINUE)
        while not self.body and not self.body_done and not self.disconnected:
            try:
                await self._wait(self.protocol.cfg.body_timeout)
            except asyncio.TimeoutError:
                self.body_failed(ProtocolError(408, "the request body stalled"))
        if self.body or (self.body_done and not self.body_delivered):
            data = b"".join(self.body)
            self.body.clear()
            self.buffered = 0
            self.protocol.body_consumed()
            self.body_delivered = self.body_done
            return {"type": "http.request", "body": data, "more_body": not self.body_done}
        # The body was delivered: the next event is the client leaving.
        while not self.disconnected and not self.complete:
            await self._wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.protocol.closed:
            raise ClientDisconnected("the client closed the connection")
        kind = message.get("type")
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            status = message["status"]
            headers = message.get("headers", ())
            request = self.request
            keep_alive = request.keep_alive and self.protocol.worker.alive
            if keep_alive and not self.body_done:
                # An Upgrade request's parser pauses at its end; after a skip, closing
                # is simpler than resuming it, and such a request is rare.
                keep_alive = not request.upgrade and may_skip_rest(
                    self.protocol.parser, self.continue_due, self.buffered)
            self.continue_due = False  # no interim response once the final one has begun
            self.head = self.framer.head(request.method, request.http_version, keep_alive,
                                         status, REASONS.get(status, b""), headers)
            self.started = True
            self.status = status
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        if self.complete:
            raise RuntimeError("'http.response.body' sent after the response was complete")
        more = message.get("more_body", False)
        data = self.framer.body(message.get("body", b""))
        if self.head is not None:  # the head goes out with the first body: one write
            data, self.head = self.head + data, None
        if not more:
            data += self.framer.end()
            self.complete = True
        if data:
            self.protocol.write(data)  # dropped if the client is gone
        if more:
            await self.protocol.drain()
        else:
            self._finish(self.framer.keep_alive)

    # --- running the app ----------------------------------------------------------------

    async def run(self, app: Any) -> None:
        worker = self.protocol.worker
        try:
            await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            log.debug("Client left before the response to %s %s was sent", self.request.method,
                      self.request.target.decode("latin-1"))
            self._fail()
        except Exception:
            if self.body_error is None:
                log.exception("Exception in ASGI application (%s %s)", self.request.method,
                              self.request.target.decode("latin-1"))
            self._fail()
        else:
            if self.disconnected:
                self._fail()  # the client left, or its body failed: not the app's fault
            elif not self.started:
                log.error("ASGI application returned without a response (%s %s)",
                          self.request.method, self.request.target.decode("latin-1"))
                self._fail()
            elif not self.complete:
                log.error("ASGI application returned before its response was complete")
                self._fail()
        finally:
            worker.in_flight -= 1

    def refuse(self, status: int, detail: str) -> None:
        self.status = status
        self.protocol.write(error_response(status, detail))
        self.complete = True
        self._finish(keep_alive=False)

    def _fail(self) -> None:
        if self.complete:
            return
        self.complete = True
        if not self.started or self.head is not None:
            error = self.body_error
            self.status = error.status if error else 500
            self.protocol.write(error_response(self.status, error.detail if error else ""))
        self._finish(keep_alive=False)  # a started response cannot be mended: cut it

    def _finish(self, keep_alive: bool) -> None:
        worker = self.protocol.worker
        if worker.log_access:
            worker.access_log.log(self.request, self.status, self.framer.bytes_sent,
                                  _client_text(self.protocol), self.clock)
        if self._waiter is not None:
            self._wake()
        self.protocol.response_done(self, keep_alive)


def http_scope(protocol: HttpProtocol, request: Request) -> dict[str, Any]:
    """The ASGI scope of a request (a WebSocket cycle adapts it)."""
    worker = protocol.worker
    root_path = worker.root_path
    client, scheme = protocol.client, "http"
    if request.forwarded and protocol.peer_trusted:
        peer = _client_text(protocol)
        (host, port), scheme = worker.proxy.resolve(request.headers, peer, scheme, True)
        if (host, port) != peer:
            client = (host, int(port) if port.isdigit() else 0)
    raw_path = request.path
    path = raw_path.decode("ascii", "replace")  # llhttp admits only ASCII in targets
    if _PERCENT in raw_path:
        path = unquote(path)
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version,
        "server": protocol.server,
        "client": client,
        "scheme": scheme,
        "method": request.method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": request.query,
        "headers": request.headers,
        "state": worker.state.copy(),
    }


_PERCENT = ord("%")


def _client_text(protocol: HttpProtocol) -> tuple[str, str]:
    if protocol.client is None:
        return "", ""
    return protocol.client[0], str(protocol.client[1])


class Lifespan:
    """The ASGI lifespan protocol: startup before serving, shutdown after."""

    def __init__(self, app: Any, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._failure = ""
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> str:
        """Run the app's startup; return why it failed ('' when it did not)."""
        if self.mode == "off":
            return ""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._messages.put({"type": "lifespan.startup"})
        await self._started.wait()
        if self._failure:
            return self._failure
        if not self.supported and self.mode == "on":
            return "the app does not support the ASGI lifespan protocol (--lifespan on)"
        return ""

    async def shutdown(self, timeout: float) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._messages.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("ASGI lifespan shutdown did not finish within %g s", timeout)

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            if self._started.is_set():
                log.exception("ASGI lifespan failed")
            elif self.mode == "on":
                self._failure = f"ASGI lifespan startup raised {type(exc).__name__}: {exc}"
            else:
                log.info("ASGI lifespan not supported by the app (%s: %s); serving without it",
                         type(exc).__name__, exc)
                self.supported = False
        else:
            if not self._started.is_set():
                self.supported = False  # returned without answering the startup
        finally:
            self._started.set()
            self._stopped.set()

    async def _receive(self) -> dict[str, Any]:
        return await self._messages.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self._failure = "ASGI lifespan startup failed: " + (message.get("message") or "no reason given")
            self._started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if kind.endswith("failed"):
                log.error("ASGI lifespan shutdown failed: %s", message.get("message", ""))
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
