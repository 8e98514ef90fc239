"""Taking connections off the listeners, for every worker class.

`Acceptor` accepts on a non-blocking listener and rests when the process is
out of descriptors instead of spinning on a listener that stays readable.
`take_proxy_header` reads a load balancer's PROXY protocol header
(--proxy-protocol), the first bytes of an accepted connection, before HTTP
or a TLS handshake sees any. The sync and thread classes use both (through
`hybrid.workers.blocking`'s connection), and so does the asgi class when it
accepts by itself (`hybrid.workers.asgi.listener`).
"""

from __future__ import annotations

import errno
import select
import socket
import time

from hybrid.logs import error_log as log
from hybrid.protocol.proxy_protocol import PEEK_SIZE, ProxyHeader, ProxyHeaderError
from hybrid.protocol.proxy_protocol import parse as parse_proxy_header

ACCEPT_REST = 0.5  # seconds accepting stops when out of descriptors (nginx waits as long)
REST_LOG_INTERVAL = 10.0  # seconds between two log lines about it, at least
# accept() failing for want of resources: the worker goes on serving what it has.
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# accept() passing on a network error of the connection it was taking: Linux's
# accept(2) says to treat these like EAGAIN (the next connection may be fine).
_CONNECTION_FAILED = (errno.EPROTO, errno.ENOPROTOOPT, errno.ENETDOWN, errno.ENONET,
                      errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EOPNOTSUPP)
# take_proxy_header(): part of the header came, the rest has not; such a socket
# stays readable, so it is looked at again after a pause instead of at once.
PARTIAL = -1
PARTIAL_PAUSE = 0.05
# A read of the header that cannot go on now. (The socket is a plain one: TLS,
# when on, begins after the header, so TLS's want-read cannot come here.)
_NOT_YET = (BlockingIOError, InterruptedError)


class Acceptor:
    """Takes connections off non-blocking listeners.

    When the process is out of file descriptors (or memory), the listener
    stays readable and accepting again at once would spin: accepting rests
    for ACCEPT_REST seconds instead (the driver stops watching the
    listeners while `resting()`), connections already open are served, and
    the log says so at most once per REST_LOG_INTERVAL.
    """

    def __init__(self) -> None:
        self.rest_until = 0.0  # a time.monotonic() reading
        self._logged_at = -REST_LOG_INTERVAL

    def accept(self, listener: socket.socket) -> tuple[socket.socket, object] | None:
        """The next connection, or None when there is none to take: another
        worker took it, the client left already (or its connection failed), or
        accepting must rest."""
        try:
            return listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        except OSError as exc:
            if exc.errno in _CONNECTION_FAILED:
                return None
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            now = time.monotonic()
            self.rest_until = now + ACCEPT_REST
            if now - self._logged_at >= REST_LOG_INTERVAL:
                self._logged_at = now
                log.warning("Cannot accept connections (%s); serving the open ones, and "
                            "trying again every %g s", exc.strerror, ACCEPT_REST)
            return None

    def resting(self, now: float) -> bool:
        return now < self.rest_until


def take_proxy_header(sock: socket.socket) -> ProxyHeader | int:
    """One try at the PROXY protocol header on a non-blocking socket: the
    header once it is whole, POLLIN while nothing has come, PARTIAL while part
    of it has; ProxyHeaderError (or OSError) if it is no header. It is peeked
    at and only its own bytes are taken off the socket, so what follows (HTTP,
    or a TLS handshake) is read as if it had never been there."""
    try:
        peeked = sock.recv(PEEK_SIZE, socket.MSG_PEEK)
    except _NOT_YET:
        return select.POLLIN
    if not peeked:
        raise ProxyHeaderError("the connection closed before its PROXY protocol header")
    header = parse_proxy_header(peeked)
    if header is None:
        if len(peeked) >= PEEK_SIZE:
            raise ProxyHeaderError(f"a PROXY protocol header longer than {PEEK_SIZE} bytes")
        return PARTIAL
    sock.recv(header.length)
    return header
