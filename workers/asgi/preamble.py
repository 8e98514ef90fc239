"""What comes before an asgi connection's first request: who is at the other
end, and how it came.

The client is the peer, or the one a PROXY protocol header names: read here
off the connection's first bytes, or by the listener before a TLS handshake
(workers.asgi.listener). On TLS, the handshake's facts go to the app (the
ASGI TLS extension), and its time counts against --header-timeout.

`ConnectionPreamble` is a base of `HttpProtocol` (workers.asgi.connection),
above `ConnectionLifetime`: the facts it keeps are those a cycle's scope
gives (`client`, `peer_trusted`, `address`, `scheme`, `tls`).

Thread boundaries: none. Everything here runs on the worker's event loop.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol, TypeVar

from hybrid.addresses import client_address, server_address
from hybrid.logs import error_log as log
from hybrid.protocol.proxy_protocol import PEEK_SIZE, ProxyHeaderError
from hybrid.protocol.proxy_protocol import parse as parse_proxy_header
from hybrid.tls_facts import ServerTLS
from hybrid.tls_facts import describe as describe_tls
from hybrid.workers.asgi.lifetime import ConnectionLifetime, LifetimeHost


class PreambleHost(LifetimeHost, Protocol):
    """What a connection's preamble reads of its worker, beyond its lifetime's."""

    tls: ServerTLS | None

    def expects_proxy_header(self, peer: object) -> bool:
        """Whether a connection from `peer` begins with a PROXY protocol header."""


_P = TypeVar("_P", bound=PreambleHost)


class ConnectionPreamble(ConnectionLifetime[_P]):
    """Who is at the other end of a connection, and its PROXY header if one comes."""

    def __init__(self, server: _P) -> None:
        super().__init__(server)
        self.client: tuple[str, int] | None = None
        self.peer_trusted = False  # may this peer speak for the client (proxy headers)
        self.address: tuple[str, int | None] | None = None
        self.scheme = "http"
        self.tls: dict[str, Any] | None = None
        # The loop makes the protocol when it accepts; a TLS handshake comes before
        # connection_made, and counts against --header-timeout.
        self.accepted_at = server.loop.time() if server.tls is not None else 0.0
        self.awaiting_proxy_header = False  # --proxy-protocol: its header comes first
        # The header read before TLS (listener.Listener), and the client it named, if any.
        self.proxy_header_read = False
        self.proxy_client: tuple[str, str] | None = None
        self._proxy_header = b""  # the part of it received so far

    def _meet_peer(self, transport: asyncio.BaseTransport, sock: socket.socket | None) -> float:
        """Learn who is at the other end, as the connection is made; the time
        left of --header-timeout for the first head (a TLS handshake took some)."""
        client = self.proxy_client or client_address(transport.get_extra_info("peername"))
        self.client = (client[0], int(client[1])) if client[1] else None
        host, port = server_address(sock) if sock is not None else ("", "")
        self.address = (host, int(port) if port else None)
        self.peer_trusted = self.server.proxy.trusted(client[0])
        self.awaiting_proxy_header = not self.proxy_header_read and \
            self.server.expects_proxy_header(transport.get_extra_info("peername"))
        head_time = self.cfg.header_timeout
        server_tls = self.server.tls
        if server_tls is not None:
            self.tls = describe_tls(transport.get_extra_info("ssl_object"), server_tls)
            self.scheme = "https"
            head_time -= self.server.loop.time() - self.accepted_at
        return head_time

    def _take_proxy_header(self, data: bytes) -> bytes:
        """Read the PROXY protocol header off the connection's first bytes; what
        follows it (b"" until it is whole, or when it is no header: then the
        connection is closed)."""
        received = self._proxy_header + data
        try:
            header = parse_proxy_header(received)
            if (header.length if header is not None else len(received)) > PEEK_SIZE:
                raise ProxyHeaderError(f"a PROXY protocol header longer than {PEEK_SIZE} bytes")
        except ProxyHeaderError as exc:
            log.debug("Connection from %s closed: %s",
                      self.client[0] if self.client else "", exc)
            self._close()
            return b""
        if header is None:
            self._proxy_header = received
            return b""
        self.awaiting_proxy_header = False
        self._proxy_header = b""
        if header.client is not None:
            host, port = header.client
            self.client = (host, int(port))
            self.peer_trusted = self.server.proxy.trusted(host)
        return received[header.length:]
