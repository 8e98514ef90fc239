"""`WSGIBridge`: a WSGI app served as an ASGI 3 app, on a bounded pool of threads.

The `asgi` worker wraps a WSGI app in it (`--interface auto` or `wsgi`), and
it is public, so a Starlette or FastAPI app can mount a legacy Flask or
Django app beside its async routes. The PEP 3333 rules are not repeated
here: the environ is `hybrid.wsgi_environ.environ_from_scope` (the builder the sync
and thread workers use) and the response is driven by `hybrid.wsgi.run`,
whose responder seam this module fills with ASGI messages.

Theory of operation. Each HTTP request is one `_Exchange`. On the loop it
builds the environ and queues the WSGI call for a pool thread, in a copy of
the request task's context. The thread calls the app and drains the
iterable; the loop only sends what the thread produced and fetches body
chunks the thread asks for. The two sides meet in a `hybrid.handoff.Handoff`
(the direct path's `WsgiCycle` meets its thread in one too): a thread wakes
the loop only when the loop is not already going to look, and holds a
response's final messages until `close()` has run, so a request whose
response is one piece costs one hand-off each way.

The asgi worker serves a WSGI app's HTTP/1.1 requests without this adapter
(workers.asgi.wsgi_cycle: the environ built from the parsed request, the
answer framed on the loop), on this bridge's threads and gather budget; the
bridge serves its HTTP/2 streams, its lifespan, and any app that mounts it.

A body is gathered on the loop before a thread is taken, when it is short
(`gather_body`, the worker's --gather-body) and not held back for a 100
Continue: a client that trickles or stalls its upload then costs a
connection, not one of the few threads (it would hold a thread for
--body-timeout otherwise). The bytes gathered count against GATHER_BUDGET
until their app is done (they may wait in memory for a thread). A longer
body, or the rest of one that meets the end of the budget, is read by the
app as it comes, as under the thread class.

Backpressure, both ways: a thread that asks for body waits for the loop
to receive it, and the server stops reading the socket while nobody does;
a thread that streams waits once more than the handoff's WINDOW bytes are
handed over but not yet taken by the transport (the server's `send()` waits out its write
buffer). A client that leaves makes the thread's next hand-off raise, so
iteration stops within one piece and `close()` runs, in the thread, once.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterable
from queue import SimpleQueue
from typing import Any, Final

from hybrid.handoff import Handoff
from hybrid.logs import error_log as log
from hybrid.protocol import GATHER_BUDGET, error_body
from hybrid.typing import Message, Receive, Scope, Send, WSGIApp
from hybrid.wsgi import run
from hybrid.wsgi_environ import environ_from_scope
from hybrid.wsgi_input import FileWrapper, InputStream

DEFAULT_THREADS: Final = 4
"""Threads per bridge when not told: a few, so that a slow call does not hold
up the rest, and few enough that threads contending for the GIL do not cost
a CPU-bound app its speed (raise it for an app that waits on I/O)."""

DEFAULT_GATHER_BODY: Final = 1024 * 1024
"""A body up to this long is gathered on the loop before a thread is taken
(the default of --gather-body)."""


class WSGIBridge:
    """An ASGI 3 app that runs `app` (WSGI) on `threads` threads.

    The threads start with the first request (so a bridge made before a
    fork works in the child) and stop at the lifespan shutdown. When every
    thread is busy, requests wait in line; the pool never grows.
    """

    def __init__(self, app: WSGIApp, threads: int = DEFAULT_THREADS,
                 gather_body: int = DEFAULT_GATHER_BODY) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        if gather_body < 0:
            raise ValueError(f"gather_body must not be negative, not {gather_body}")
        self.app = app
        self.threads = threads
        self.gather_body = gather_body
        self.gather_left = GATHER_BUDGET  # (only the loop touches it)
        self._jobs: SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = \
            SimpleQueue()
        self._pool: list[threading.Thread] = []
        self._pool_lock = threading.Lock()
        self.abandoned = 0
        """Calls still running whose request was cancelled (--request-timeout): a
        thread cannot be stopped, only left to finish."""

    def abandon(self) -> None:
        """A call still running was given up (its request timed out)."""
        with self._pool_lock:
            self.abandoned += 1

    def abandoned_ended(self) -> None:
        """A call given up has returned (on its thread)."""
        with self._pool_lock:
            self.abandoned -= 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await _Exchange(self, scope, receive, send).serve()
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})  # a WSGI app has none: 403
        else:
            raise ValueError(f"WSGIBridge serves http, not {kind!r}")

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Run `job(*args)` on a pool thread (it must not raise)."""
        if len(self._pool) < self.threads:
            self._start_threads()
        self._jobs.put((job, args))

    def close(self) -> None:
        """Let the threads end once the jobs queued before this are done."""
        with self._pool_lock:
            for _ in self._pool:
                self._jobs.put(None)
            self._pool.clear()

    def _start_threads(self) -> None:
        with self._pool_lock:
            while len(self._pool) < self.threads:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"hybrid-wsgi-{len(self._pool)}")
                thread.start()
                self._pool.append(thread)

    def _work(self) -> None:
        jobs = self._jobs
        while (queued := jobs.get()) is not None:
            job, args = queued
            try:
                job(*args)
            except BaseException:  # a bug of ours: log it, but never lose the thread
                log.exception("WSGI bridge job failed")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


_BODY_WANTED: Final[Message] = {"type": "hybrid.body"}
"""What a thread posts to ask the loop for more of the body."""


def _error_messages(status: int, detail: str) -> list[Message]:
    """The core's plain-text error answer, as ASGI messages."""
    body = error_body(status, detail)
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    return [{"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body}]


def announced_body(headers: Iterable[tuple[bytes, bytes]], bound: int) -> tuple[bool, int]:
    """Whether a request's head (its `headers`, as the core gives them) announces
    a body, and how many bytes of it to gather before the app runs: its length,
    or `bound` for a chunked one; 0 for one the app reads as it comes (longer
    than `bound`, or held back until the app asks for it with 100 Continue)."""
    length: int | None = 0
    continue_expected = False
    for name, value in headers:
        if name == b"transfer-encoding":
            length = None
        elif name == b"content-length" and length is not None:
            length = int(value) if value.isdigit() else bound + 1
        elif name == b"expect":
            continue_expected = value.lower() == b"100-continue"
    if length == 0:
        return False, 0
    if continue_expected:
        return True, 0
    size = bound if length is None else length
    return True, size if size <= bound else 0


class _Exchange:
    """One HTTP request between the loop (`serve`) and a pool thread (`_call`)."""

    __slots__ = ("bridge", "scope", "receive", "send", "loop", "handoff", "arrived", "head",
                 "held", "watcher", "gathered")

    def __init__(self, bridge: WSGIBridge, scope: Scope, receive: Receive, send: Send) -> None:
        self.bridge = bridge
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = asyncio.get_running_loop()  # (made on the loop, by WSGIBridge.__call__)
        self.handoff: Handoff[Message | None] = Handoff(self.loop)  # None: done
        self.arrived: asyncio.Future[None] | None = None
        self.head: Message | None = None  # held until the first piece of the body
        self.held: list[Message] = []  # the final messages, posted with "done"
        self.watcher: asyncio.Task[None] | None = None  # waits for http.disconnect
        self.gathered = 0  # body bytes received before the app ran: counted in gather_left

    # --- on the loop -----------------------------------------------------------------

    async def serve(self) -> None:
        scope = self.scope
        bridge = self.bridge
        has_body, gather = announced_body(scope.get("headers", ()), bridge.gather_body)
        # A request without a body is told so now, sparing the thread a round trip;
        # a short body is gathered here (see the module docstring); the rest comes
        # to the thread on demand (the app may answer without it).
        try:
            if not has_body:
                if await self._take_body() is None:
                    return  # the client left before the app could start
            elif gather and bridge.gather_left > 0 and not await self._gather(gather):
                return  # the client left, or its body failed (the server answered it)
            environ = environ_from_scope(scope, InputStream(self._read_body))
            context = contextvars.copy_context()
            bridge.submit(context.run, self._call, environ)
            await self._relay()
        except asyncio.CancelledError:
            if self.handoff.give_up():
                bridge.abandon()
            raise
        finally:
            bridge.gather_left += self.gathered  # (held until the app is done with them)
            if self.watcher is not None:
                self.watcher.cancel()

    async def _take_body(self) -> int | None:
        """Receive one body message: its size, or None if it says the client left."""
        return self.handoff.body_received(await self.receive())

    async def _gather(self, bound: int) -> bool:
        """Receive the body, or its first `bound` bytes, before a thread is taken,
        counting what arrives against the bridge's budget (until the app is done:
        a gathered body may wait in memory for a thread), and stopping where the
        budget ends; False if the client left (or its body failed) meanwhile."""
        bridge = self.bridge
        while not self.handoff.body_done and self.gathered < bound and bridge.gather_left > 0:
            size = await self._take_body()
            if size is None:
                return False
            self.gathered += size
            bridge.gather_left -= size
        return True

    async def _relay(self) -> None:
        """Send what the thread produces, fetch the body it asks for, until it is done."""
        handoff = self.handoff
        while True:
            items = handoff.take()
            if not items:
                arrived = self.arrived = self.loop.create_future()
                await arrived
                continue
            for item in items:
                if item is None:
                    return
                if item["type"] == "hybrid.body":
                    await self._fetch_body()
                else:
                    await self._send(item)

    async def _send(self, message: Message) -> None:
        # (Only streamed pieces were counted in `unacked`; the final ones are held.)
        size = len(message["body"]) if message.get("more_body") else 0
        if not self.handoff.gone:
            try:
                await self.send(message)
            except OSError:  # (the client left: ClientDisconnected and the like)
                self.handoff.leave()
            except Exception as exc:
                self.handoff.leave()
                if message["type"] != "http.response.start":
                    raise
                # The server refused the app's head (a header it may not send, say).
                log.error("Invalid response to %s %s: %s", self.scope.get("method"),
                          self.scope.get("path"), exc)
                for error in _error_messages(500, ""):
                    await self.send(error)
            if message.get("more_body") and self.watcher is None and self.handoff.body_done:
                # A streamed response: a server whose send() does not fail once the
                # client left still says so through receive().
                self.watcher = self.loop.create_task(self._watch())
        if size:
            self.handoff.acked(size)

    async def _fetch_body(self) -> None:
        if not self.handoff.gone:
            try:
                await self._take_body()
            except Exception:
                self.handoff.leave()
        self.handoff.answered()

    async def _watch(self) -> None:
        # Once the body is in, the next message is the client leaving (a server
        # that answers anything else has nothing to tell).
        if (await self.receive())["type"] == "http.disconnect":
            self.handoff.leave()

    def _wake(self) -> None:
        arrived = self.arrived
        if arrived is not None and not arrived.done():
            arrived.set_result(None)

    # --- on the pool thread ------------------------------------------------------------

    def _call(self, environ: dict[str, Any]) -> None:
        handoff = self.handoff
        try:
            if handoff.start_call():
                run(self.bridge.app, environ, self)
        finally:
            if handoff.end_call([*self.held, None], self._wake):
                self.bridge.abandoned_ended()

    def _read_body(self) -> bytes:
        """`wsgi.input`'s receive(): the next piece of the body, b"" at its end."""
        return self.handoff.read_body(_BODY_WANTED, self._wake)

    # --- the responder `hybrid.wsgi.run` drives --------------------------------------

    def start(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.head = {"type": "http.response.start", "status": status, "headers": headers}

    def body(self, data: bytes, last: bool) -> None:
        if self.handoff.gone:
            raise ConnectionAbortedError("the client left")
        messages: list[Message] = []
        if self.head is not None:
            messages.append(self.head)
            self.head = None
        messages.append({"type": "http.response.body", "body": data, "more_body": not last})
        if last:
            self.held = messages  # sent once close() has run: one hand-off for all
        else:
            self.handoff.post(messages, self._wake, len(data))

    def whole(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
              data: bytes) -> None:
        self.start(status, reason, headers)
        self.body(data, last=True)

    def file(self, wrapper: FileWrapper) -> bool:
        return False  # iterated in its blocks

    def error(self, status: int, detail: str) -> None:
        if self.handoff.gone:
            raise ConnectionAbortedError("the client left")
        self.head = None
        self.held = _error_messages(status, detail)

    @property
    def sent(self) -> int:
        return 0  # the server counts what it sends

    @property
    def keep_alive(self) -> bool:
        return True  # the server decides
