"""Listening sockets: parse bind addresses, bind them before fork, close them.

The arbiter binds every address once; forked workers inherit the sockets and
accept on them. The sockets stay open across reloads, so a graceful reload
never refuses a connection: the kernel keeps queueing on the backlog while
old workers retire and new ones start.

With --reuse-port, the arbiter's TCP socket only holds the address (bound
with SO_REUSEPORT, not listening: a listening one would get its share of
connections, which no one accepts), and each worker listens on a socket of
its own for it (`own_listeners`): the kernel spreads new connections over
them, instead of waking whichever worker accepts first.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from typing import Any


class BindError(Exception):
    """An address could not be bound; the message is for people."""


@dataclass(frozen=True)
class Address:
    """One parsed `--bind` value."""

    kind: str  # "tcp", "unix" or "fd"
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """Parse `HOST:PORT`, `[V6]:PORT`, `:PORT`, `HOST`, `unix:PATH` or `fd://N`."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"{text!r}: unix: needs a path")
        return Address("unix", path=path)
    if text.startswith("fd://"):
        number = text[len("fd://"):]
        if not number.isdigit():
            raise ValueError(f"{text!r}: fd:// needs a file descriptor number")
        return Address("fd", fd=int(number))
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: expected [IPV6]:PORT")
        port_text = rest[1:] if rest else "8000"
    elif text.count(":") > 1:
        raise ValueError(f"{text!r}: write IPv6 addresses as [ADDRESS]:PORT")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "8000")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: port must be a number from 0 to 65535")
    return Address("tcp", host=host or "0.0.0.0", port=int(port_text))


def bind(address: Address, backlog: int, reuse_port: bool = False) -> socket.socket:
    """Create, bind and listen on one address; raise BindError with a readable reason.
    `reuse_port`: a TCP address is bound with SO_REUSEPORT and left for the
    workers to listen on (see the module's docstring)."""
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
    sock = _tcp_socket(family, reuse_port)
    return _listen(sock, sockaddr, address, None if reuse_port else backlog)


def _tcp_socket(family: int, reuse_port: bool) -> socket.socket:
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
        own = _tcp_socket(held.family, reuse_port=True)
        own.bind(held.getsockname())
        own.listen(backlog)
        held.close()
        out.append(own)
    return out


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


def unix_path(sock: socket.socket) -> str:
    """The file a UNIX listening socket is bound to ("" for other sockets)."""
    if sock.family != socket.AF_UNIX:
        return ""
    name = sock.getsockname()
    return name if isinstance(name, str) else ""


def client_address(peer: object) -> tuple[str, str]:
    """A connection's peer as (host, port) strings; ("", "") for a UNIX socket peer."""
    if isinstance(peer, tuple):
        return str(peer[0]), str(peer[1])
    return "", ""


def server_address(listener: socket.socket) -> tuple[str, str]:
    """The address a connection was accepted on, as (host, port) strings."""
    name = listener.getsockname()
    if isinstance(name, tuple):
        return str(name[0]), str(name[1])
    return str(name), ""


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """The address a bound socket listens on, as a user would write it."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{name[0]}]:{name[1]}"
    return f"{scheme}://{name[0]}:{name[1]}"

