"""The asgi worker's TLS listeners: accept, then the handshake, then HTTP.

With TLS on, the worker accepts connections itself (`TLSListener`) instead
of through the loop's `create_server(ssl=...)`, under which the handshake
runs before any code of ours hears of the connection: then a client that
never finishes it is bounded by nothing but the handshake timeout, and a
failure leaves no word. Here each accepted connection counts against
--worker-connections from the accept, its handshake runs on the loop
(`connect_accepted_socket`) within --header-timeout, and a failure is one
debug line naming the client. `HttpProtocol` then serves it as any other;
its head gets what the handshake left of --header-timeout.

With --proxy-protocol, a load balancer's PROXY header comes before the
handshake: it is read off the socket first, by its own length
(`take_proxy_header`, as the blocking classes read it), and the client it
names is the connection's. Accepting rests as the blocking classes' does
(`Acceptor`) when the process is out of descriptors.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from hybrid.logs import error_log as log
from hybrid.protocol.proxy_protocol import ProxyHeader, ProxyHeaderError
from hybrid.sockets import client_address
from hybrid.workers.asgi.connection import Host, HttpProtocol
from hybrid.workers.blocking import (
    ACCEPT_REST,
    PARTIAL,
    PARTIAL_PAUSE,
    Acceptor,
    take_proxy_header,
)

ACCEPT_BATCH = 64  # connections taken per readiness, at most (others may take the rest)
MIN_HANDSHAKE_TIME = 0.1  # what a handshake gets when a slow PROXY header used the rest


class TLSListener:
    """Accepts on one listening socket and opens each connection's TLS."""

    def __init__(self, server: Host, listener: socket.socket) -> None:
        self.server = server
        self.listener = listener
        self.acceptor = Acceptor()
        listener.setblocking(False)
        self.stopped = False
        self._watching = False
        self._tasks: set[asyncio.Task[None]] = set()  # the openings under way
        self.resume()

    def close(self) -> None:
        """Stop accepting for good (a graceful stop); connections opening go on."""
        self.stopped = True
        self._pause()

    def abandon(self) -> None:
        """The stop's time is over: cut the openings still under way."""
        for task in list(self._tasks):
            task.cancel()

    def resume(self) -> None:
        """Watch the listener again, if it rested or was at the bound and may not now."""
        if not (self._watching or self.stopped or self._full()
                or self.acceptor.resting(time.monotonic())):
            self.server.loop.add_reader(self.listener.fileno(), self._accept)
            self._watching = True

    def _pause(self) -> None:
        if self._watching:
            self.server.loop.remove_reader(self.listener.fileno())
            self._watching = False

    def _full(self) -> bool:
        """At --worker-connections (opening ones counted) with none idle to make room
        for, or with as many openings as the bound: other workers take the rest
        (the kernel queues them). A bare TCP connect never closes an idle one."""
        server = self.server
        bound = server.cfg.worker_connections
        return len(server.opening) >= bound or (
            len(server.connections) + len(server.opening) >= bound
            and not any(c.idle and not c.closed for c in server.connections))

    def _accept(self) -> None:
        server = self.server
        for _ in range(ACCEPT_BATCH):
            if self._full():
                self._pause()  # (resumed as openings end, and by the worker's tick)
                return
            try:
                accepted = self.acceptor.accept(self.listener)
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
            task = server.loop.create_task(self._open(http, sock, peer))
            self._tasks.add(task)
            task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.resume()

    async def _open(self, http: HttpProtocol, sock: socket.socket, peer: object) -> None:
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
