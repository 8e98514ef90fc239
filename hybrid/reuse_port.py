"""--reuse-port, both halves: the TCP socket the arbiter binds, and each worker's own listener.

With --reuse-port, the arbiter's TCP socket only holds the address (bound
with SO_REUSEPORT, not listening: a listening one would get its share of
connections, which no one accepts), and each worker listens on a socket of
its own for it (`own_listeners`): the kernel spreads new connections over
them, instead of waking whichever worker accepts first.

Both sides make their TCP sockets with `tcp_socket`, so the worker's copy
carries the options of the arbiter's. The arbiter's binding itself
(`hybrid.sockets`) stays on its side: a worker imports this room, not that.
"""

from __future__ import annotations

import socket


def tcp_socket(family: int, reuse_port: bool) -> socket.socket:
    """A TCP socket with a listener's options, not bound yet."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        # "[::]:8000" means IPv6 only; bind 0.0.0.0 as well for both.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def own_listeners(inherited: list[socket.socket], backlog: int) -> list[socket.socket]:
    """In a worker under --reuse-port: a listening socket of its own for each
    address the arbiter only holds (the inherited copy is closed); the rest
    (UNIX sockets, sockets passed by systemd) as they are."""
    out = []
    for held in inherited:
        if held.family == socket.AF_UNIX or held.getsockopt(socket.SOL_SOCKET,
                                                            socket.SO_ACCEPTCONN):
            out.append(held)
            continue
        own = tcp_socket(held.family, reuse_port=True)
        own.bind(held.getsockname())
        own.listen(backlog)
        held.close()
        out.append(own)
    return out
