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

Accepting rests as the blocking classes' does (`Acceptor`) when the process
is out of descriptors.
"""

from __future__ import annotations

import socket
import time

from hybrid.logs import error_log as log
from hybrid.sockets import client_address
from hybrid.workers.asgi.connection import Host, HttpProtocol
from hybrid.workers.blocking import ACCEPT_REST, Acceptor

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
            await server.loop.connect_accepted_socket(
                lambda: http, sock, ssl=server.tls.context,
                ssl_handshake_timeout=server.cfg.header_timeout)
        except (OSError, TimeoutError, EOFError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address(peer)[0],
                      str(exc) or type(exc).__name__)
            sock.close()
        finally:
            server.opening -= 1
