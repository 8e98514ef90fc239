"""Listening sockets, the arbiter's side: bind them before fork, or adopt them.

The arbiter binds every address once; forked workers inherit the sockets and
accept on them. The sockets stay open across reloads, so a graceful reload
never refuses a connection: the kernel keeps queueing on the backlog while
old workers retire and new ones start.

With --reuse-port, the arbiter's TCP socket only holds the address, and each
worker listens on a socket of its own for it (`hybrid.reuse_port`). Parsing
and writing addresses is `hybrid.addresses`'s: the workers and the settings
import that, never this.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any

from hybrid.addresses import Address
from hybrid.reuse_port import tcp_socket


class BindError(Exception):
    """An address could not be bound; the message is for people."""


def bind(address: Address, backlog: int, reuse_port: bool = False) -> socket.socket:
    """Create, bind and listen on one address; raise BindError with a readable reason.
    `reuse_port`: a TCP address is bound with SO_REUSEPORT and left for the
    workers to listen on (see `hybrid.reuse_port`)."""
    if address.kind == "fd":
        try:
            sock = socket.socket(fileno=address.fd)
        except OSError as exc:
            raise BindError(f"cannot use {address}: {exc.strerror}") from None
        sock.listen(backlog)
        return sock
    if address.kind == "unix":
        return _bind_unix(address, backlog)
    return _bind_tcp(address, backlog, reuse_port)


def _bind_tcp(address: Address, backlog: int, reuse_port: bool) -> socket.socket:
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot bind {address}: unknown host ({exc.strerror})") from None
    family, socktype, proto, _, sockaddr = infos[0]
    sock = tcp_socket(family, reuse_port)
    return _listen(sock, sockaddr, address, None if reuse_port else backlog)


def _bind_unix(address: Address, backlog: int) -> socket.socket:
    path = address.path
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            if _someone_listens(path):
                raise BindError(_explain(address, OSError(errno.EADDRINUSE, "in use")))
            os.unlink(path)  # a stale socket left by a run that did not clean up
    except FileNotFoundError:
        pass
    except BindError:
        raise
    except OSError as exc:
        raise BindError(_explain(address, exc)) from None
    return _listen(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path, address, backlog)


def _someone_listens(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


def _listen(sock: socket.socket, sockaddr: str | tuple[Any, ...], address: Address,
            backlog: int | None) -> socket.socket:
    """Bind, and listen unless `backlog` is None."""
    try:
        sock.bind(sockaddr)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(_explain(address, exc)) from None
    return sock


def _explain(address: Address, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot bind {address}: address already in use (is another server running?)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot bind {address}: permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind {address}: address not available on this host"
    return f"cannot bind {address}: {exc.strerror or exc}"


SYSTEMD_FIRST_FD = 3  # sd_listen_fds(3): passed descriptors start here
FDS_VARIABLE = "HYBRID_FDS"  # set by an upgrading arbiter (hybrid.reexec)


def inherited() -> tuple[list[socket.socket], str] | None:
    """Listening sockets handed to this process instead of --bind, and by whom:
    an upgrading arbiter ("upgrade": HYBRID_FDS) or systemd socket activation
    ("systemd": LISTEN_FDS, for this process when LISTEN_PID names it). The
    variables are removed, so that no child adopts the sockets again."""
    passed = os.environ.pop(FDS_VARIABLE, None)
    if passed is not None:
        return [adopt(int(fd)) for fd in passed.split(",") if fd.isdigit()], "upgrade"
    count = os.environ.pop("LISTEN_FDS", None)
    listen_pid = os.environ.pop("LISTEN_PID", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    if count is None:
        return None
    if listen_pid != str(os.getpid()):
        raise BindError(f"LISTEN_FDS is set for process {listen_pid}, not this one "
                        f"({os.getpid()}): start hybrid itself from the socket unit")
    if not count.isdigit() or int(count) < 1:
        raise BindError(f"LISTEN_FDS={count!r}: expected a number of sockets")
    return [adopt(fd) for fd in range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + int(count))], \
        "systemd"


def adopt(fd: int) -> socket.socket:
    """A listening socket from an inherited descriptor; BindError if it is none."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"inherited descriptor {fd}: {exc.strerror}") from None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    held = sock.family != socket.AF_UNIX and sock.getsockopt(socket.SOL_SOCKET,
                                                              socket.SO_REUSEPORT)
    if sock.type != socket.SOCK_STREAM or not (listening or held):
        sock.detach()
        raise BindError(f"inherited descriptor {fd} is not a listening stream socket")
    sock.set_inheritable(False)
    return sock
