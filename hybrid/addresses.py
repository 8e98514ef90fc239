"""Addresses, parsed and written: a `--bind` value, a connection's peer, a listener's name.

What a worker and the settings need to know of an address, apart from the
arbiter's binding (`hybrid.sockets`): nothing here binds, listens or
accepts, so the settings' validators and every worker class may import it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


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
