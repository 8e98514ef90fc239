"""The asgi worker's listeners: how connections are taken off each listening socket.

A plain listener starts with libuv's accepting (`create_server` on a
duplicate of the socket): accepting in C, the cheapest way. But libuv
accepts every queued connection in one go before any code of ours hears
of one, and out of descriptors it accepts with one it keeps in reserve
and closes the connection at once: the client gets a reset, and nobody
is told. So near a bound the listener accepts connections itself instead
(`add_reader`, the blocking classes' `Acceptor`):

* within a burst of the descriptor limit (RLIMIT_NOFILE less what the
  kernel may queue on every listener, min(--backlog, somaxconn) each, and
  DESCRIPTOR_MARGIN): from the start when the limit is that low, else from
  the first connection whose descriptor number says so (the kernel hands
  out the lowest free one, so descriptor N means N are taken), or the
  worker's probe once a second (descriptors the app takes make no
  connection). Out of descriptors, accepting rests ACCEPT_REST and says so
  once; the kernel queues the rest. This lasts as long as the worker.
* within CONNECTION_MARGIN of --worker-connections: each connection counts
  from its accept, and accepting pauses while the bound is reached with no
  idle connection left to close in a new one's place (other workers take
  the rest), and resumes as connections end. libuv's accepting comes back
  once the connections are down to half that mark, HAND_BACK_INTERVAL
  after the switch at the soonest.

Accepting in Python costs a task per connection, which sets the transport
up two loop turns later: 30% fewer connections a second for one client at
a time, and a longer tail under many (benchmarks/RESULTS.md); hence it is
kept for when it is needed.

TLS listeners always accept on their own: with `create_server(ssl=...)`
the handshake runs before any code of ours hears of the connection, bound
by nothing but the handshake timeout, and a failure leaves no word. Here
its handshake runs on the loop (`connect_accepted_socket`) within
--header-timeout, a failure is one debug line naming the client, and
`HttpProtocol` then serves it as any other; its head gets what the
handshake left of --header-timeout. With --proxy-protocol, a load
balancer's PROXY header comes before the handshake: it is read off the
socket first, by its own length (`take_proxy_header`, as the blocking
classes read it), and the client it names is the connection's.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time

from hybrid.logs import error_log as log
from hybrid.protocol.proxy_protocol import ProxyHeader, ProxyHeaderError
from hybrid.addresses import client_address
from hybrid.workers.accept import (
    ACCEPT_REST,
    PARTIAL,
    PARTIAL_PAUSE,
    Acceptor,
    take_proxy_header,
)
from hybrid.workers.asgi.connection import Host, HttpProtocol

ACCEPT_BATCH = 64  # connections taken per readiness, at most (others may take the rest)
MIN_HANDSHAKE_TIME = 0.1  # what a handshake gets when a slow PROXY header used the rest
DESCRIPTOR_MARGIN = 64  # descriptors kept beyond a burst for the app and the worker
CONNECTION_MARGIN = 64  # connections below --worker-connections where counting begins
HAND_BACK_INTERVAL = 10.0  # seconds accepting stays here at least, once it came here


def queue_length(backlog: int) -> int:
    """How many connections the kernel may hold for a listener: a burst libuv
    accepts at once."""
    try:
        with open("/proc/sys/net/core/somaxconn") as file:
            return min(backlog, int(file.read()))
    except (OSError, ValueError):
        return backlog


def descriptor_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class Listener:
    """Takes connections off one listening socket, by libuv or by itself."""

    def __init__(self, server: Host, sock: socket.socket, *, own: bool) -> None:
        self.server = server
        self.sock = sock
        self.acceptor = Acceptor()
        sock.setblocking(False)
        self.stopped = False
        self.own = False  # accepting here (else libuv's server does)
        self._fast: asyncio.AbstractServer | None = None
        self._switching: asyncio.Task[None] | None = None  # libuv's server being made
        self._switched_at = -HAND_BACK_INTERVAL
        self._watching = False
        self._tasks: set[asyncio.Task[None]] = set()  # the openings under way
        if own:
            self.accept_here()

    async def start(self) -> None:
        """Begin accepting (by libuv, unless this listener accepts itself)."""
        if not self.own:
            await self._start_fast()

    def close(self) -> None:
        """Stop accepting for good (a graceful stop); connections opening go on.
        The socket is closed too: under --reuse-port it is this worker's own, and
        the kernel would go on queueing connections on it for nobody."""
        self.stopped = True
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self._pause()
        self.sock.close()

    def abandon(self) -> None:
        """The stop's time is over: cut the openings still under way."""
        for task in list(self._tasks):
            task.cancel()

    def accept_here(self) -> None:
        """From now on accept here: libuv's accepting stops (its queue stays the kernel's)."""
        if self.own or self.stopped:
            return
        self.own = True
        self._switched_at = time.monotonic()
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self.resume()  # (a switch to libuv under way closes its server when it is made)

    def accept_by_libuv(self) -> None:
        """Hand accepting back to libuv (plain listeners, far from every bound); not
        while accepting rests, and not sooner than HAND_BACK_INTERVAL after a switch."""
        now = time.monotonic()
        if not self.own or self.stopped or self._switching is not None \
                or self.server.tls is not None or self.acceptor.resting(now) \
                or now - self._switched_at < HAND_BACK_INTERVAL:
            return
        self.own = False
        self._switched_at = now
        self._pause()
        self._switching = self.server.loop.create_task(self._start_fast())

    async def _start_fast(self) -> None:
        # A duplicate, because closing libuv's server closes the socket it was given.
        try:
            sock = self.sock.dup()
            try:
                fast = await self.server.loop.create_server(
                    lambda: HttpProtocol(self.server), sock=sock,
                    backlog=self.server.cfg.backlog)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            log.warning("Worker %d cannot hand accepting to the loop (%s); it accepts "
                        "connections itself", os.getpid(), exc)
            self.own = True
            self.resume()
            return
        finally:
            self._switching = None
        if self.own or self.stopped:
            fast.close()  # (superseded while it was made)
        else:
            self._fast = fast

    def resume(self) -> None:
        """Watch the listener again, if it rested or was at the bound and may not now."""
        if self.own and not (self._watching or self.stopped or self._full()
                             or self.acceptor.resting(time.monotonic())):
            self.server.loop.add_reader(self.sock.fileno(), self._accept)
            self._watching = True

    def _pause(self) -> None:
        if self._watching:
            self.server.loop.remove_reader(self.sock.fileno())
            self._watching = False

    def _full(self) -> bool:
        """At --worker-connections, counting connections from their accept, with no
        idle one left to close for each accepted past the bound (it is closed
        when the new connection is made: after the TLS handshake, if any), or
        with as many openings as the bound: other workers take the rest (the
        kernel queues them)."""
        server = self.server
        bound = server.cfg.worker_connections
        held = len(server.connections) + len(server.opening)
        if held < bound:
            return False
        return len(server.opening) >= bound or held >= bound + len(server.idle)

    def _accept(self) -> None:
        server = self.server
        for _ in range(ACCEPT_BATCH):
            if self._full():
                self._pause()  # (resumed as connections end, and by the worker's tick)
                return
            try:
                accepted = self.acceptor.accept(self.sock)
            except OSError as exc:
                log.error("Worker %d failed to accept: %s", os.getpid(), exc)
                accepted = None
                self.acceptor.rest_until = time.monotonic() + ACCEPT_REST
            if accepted is None:
                if self.acceptor.resting(time.monotonic()):
                    self._pause()
                    server.loop.call_later(ACCEPT_REST, self.resume)
                return
            sock, peer = accepted
            sock.setblocking(False)  # (accept() gives a blocking socket: never on the loop)
            http = HttpProtocol(server)  # (made now: its head's time counts from here)
            server.opening.add(http)
            opening = self._open_tls(http, sock, peer) if server.tls is not None \
                else self._open(http, sock)
            task = server.loop.create_task(opening)
            self._tasks.add(task)
            task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.resume()

    async def _open(self, http: HttpProtocol, sock: socket.socket) -> None:
        try:
            await self.server.loop.connect_accepted_socket(lambda: http, sock)
        except OSError as exc:
            log.debug("Connection closed as it opened: %s", exc)
        finally:
            self.server.opening.discard(http)

    async def _open_tls(self, http: HttpProtocol, sock: socket.socket, peer: object) -> None:
        server = self.server
        assert server.tls is not None
        loop = server.loop
        client = client_address(peer)[0]
        deadline = loop.time() + server.cfg.header_timeout
        try:
            if server.expects_proxy_header(peer):
                try:
                    header = await self._proxy_header(sock, deadline)
                except (ProxyHeaderError, OSError) as exc:
                    log.debug("Connection from %s closed: %s", client, exc)
                    sock.close()
                    return
                http.proxy_header_read, http.proxy_client = True, header.client
            try:
                # From here the transport owns the socket (and closes it on failure).
                await loop.connect_accepted_socket(
                    lambda: http, sock, ssl=server.tls.context,
                    ssl_handshake_timeout=max(deadline - loop.time(), MIN_HANDSHAKE_TIME))
            except (OSError, asyncio.TimeoutError, EOFError) as exc:
                log.debug("TLS handshake with %s failed: %s", client,
                          str(exc) or type(exc).__name__)
        finally:
            server.opening.discard(http)

    async def _proxy_header(self, sock: socket.socket, deadline: float) -> ProxyHeader:
        """The PROXY protocol header that comes before the handshake (by
        `deadline`, a loop time), taken off the socket by its own length."""
        loop = self.server.loop
        while True:
            header = take_proxy_header(sock)
            if isinstance(header, ProxyHeader):
                return header
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProxyHeaderError("no PROXY protocol header within --header-timeout")
            if header == PARTIAL:
                await asyncio.sleep(PARTIAL_PAUSE)  # (readable still: waiting would not wait)
                continue
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _settle, readable)
            try:
                await asyncio.wait_for(readable, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_reader(sock.fileno())


def _settle(future: asyncio.Future[None]) -> None:
    """A reader's callback: it may run again before the waiting task removes it."""
    if not future.done():
        future.set_result(None)
