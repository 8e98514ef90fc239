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


class TLSListener:
    """Accepts on one listening socket and opens each connection's TLS."""

    def __init__(self, server: Host, listener: socket.socket) -> None:
        self.server = server
        self.listener = listener
        self.acceptor = Acceptor()
        listener.setblocking(False)
        self._watching = False
        self._watch()

    def close(self) -> None:
        """Stop accepting (a graceful stop); connections opening go on."""
        if self._watching:
            self.server.loop.remove_reader(self.listener.fileno())
            self._watching = False

    def _watch(self) -> None:
        self.server.loop.add_reader(self.listener.fileno(), self._accept)
        self._watching = True

    def _accept(self) -> None:
        server = self.server
        for _ in range(ACCEPT_BATCH):
            accepted = self.acceptor.accept(self.listener)
            if accepted is None:
                if self.acceptor.resting(time.monotonic()):
                    self.close()
                    server.loop.call_later(ACCEPT_REST, self._resume)
                return
            sock, peer = accepted
            if len(server.connections) + server.opening >= server.cfg.worker_connections \
                    and not server.make_room():
                sock.close()  # (past the bound, with none idle: no 503 can be said before TLS)
                continue
            server.opening += 1
            server.loop.create_task(self._open(sock, peer))

    def _resume(self) -> None:
        if self.server.alive and not self._watching:
            self._watch()

    async def _open(self, sock: socket.socket, peer: object) -> None:
        server = self.server
        assert server.tls is not None
        http = HttpProtocol(server)  # (made now: its head's time counts from here)
        try:
            if server.expects_proxy_header(peer):
                header = await self._proxy_header(sock)
                http.proxy_header_read, http.proxy_client = True, header.client
            await server.loop.connect_accepted_socket(
                lambda: http, sock, ssl=server.tls.context,
                ssl_handshake_timeout=server.cfg.header_timeout)
        except ProxyHeaderError as exc:
            log.debug("Connection from %s closed: %s", client_address(peer)[0], exc)
            sock.close()
        except (OSError, asyncio.TimeoutError, EOFError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address(peer)[0],
                      str(exc) or type(exc).__name__)
            sock.close()
        finally:
            server.opening -= 1

    async def _proxy_header(self, sock: socket.socket) -> ProxyHeader:
        """The PROXY protocol header that comes before the handshake (within
        --header-timeout), taken off the socket by its own length."""
        loop = self.server.loop
        deadline = loop.time() + self.server.cfg.header_timeout
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
