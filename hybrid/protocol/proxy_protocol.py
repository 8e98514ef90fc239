"""HAProxy's PROXY protocol, versions 1 (text) and 2 (binary): the header a
TCP load balancer sends before anything else on a connection, naming the
client it accepted (haproxy.org/download/2.9/doc/proxy-protocol.txt).

`parse()` reads it from the connection's first bytes. The workers peek at
those bytes and take only the header's length off the socket, so what
follows (HTTP, or a TLS handshake) is read as if the header had never been
there.
"""

from __future__ import annotations

import ipaddress
from typing import Final, NamedTuple

V1_PREFIX: Final = b"PROXY "
V1_MAX: Final = 107  # the longest version 1 line, CRLF included
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED: Final = 16  # signature, version and command, family, length
PEEK_SIZE: Final = 4096  # the longest header taken: far more than load balancers send

_V2_LOCAL: Final = 0x20
_V2_PROXY: Final = 0x21
_V2_TCP4: Final = 0x11
_V2_TCP6: Final = 0x21


class ProxyHeaderError(Exception):
    """The connection's first bytes are no PROXY protocol header."""


class ProxyHeader(NamedTuple):
    client: tuple[str, str] | None  # (host, port); None: the proxy speaks for itself
    length: int  # the bytes the header takes


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`; None while more bytes are needed;
    ProxyHeaderError if they are not a header."""
    if data.startswith(V2_SIGNATURE[:len(data)]) and len(data) < len(V2_SIGNATURE):
        return None
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if len(data) < len(V1_PREFIX) and V1_PREFIX.startswith(data):
        return None
    if data.startswith(V1_PREFIX):
        return _parse_v1(data)
    raise ProxyHeaderError("expected a PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("a PROXY v1 line longer than 107 bytes")
        return None
    words = data[:end].decode("ascii", "replace").split(" ")
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return ProxyHeader(None, end + 2)
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"a malformed PROXY v1 line: {data[:end]!r}")
    _, family, source, _, source_port, destination_port = words
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        raise ProxyHeaderError(f"a PROXY v1 line with no address: {source!r}") from None
    if address.version != (4 if family == "TCP4" else 6):
        raise ProxyHeaderError(f"a {family} PROXY v1 line with {source!r}")
    for port in (source_port, destination_port):
        if not port.isdigit() or not 0 <= int(port) <= 65535 or (len(port) > 1 and port[0] == "0"):
            raise ProxyHeaderError(f"a PROXY v1 line with a bad port {port!r}")
    return ProxyHeader((str(address), source_port), end + 2)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_FIXED:
        return None
    command, family = data[12], data[13]
    length = V2_FIXED + int.from_bytes(data[14:16], "big")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProxyHeaderError(f"a PROXY v2 header of version/command {command:#x}")
    if len(data) < length:
        return None
    body = data[V2_FIXED:length]
    if command == _V2_LOCAL or family not in (_V2_TCP4, _V2_TCP6):
        return ProxyHeader(None, length)  # a health check of the proxy's own, or not TCP
    size = 4 if family == _V2_TCP4 else 16
    if len(body) < 2 * size + 4:
        raise ProxyHeaderError("a PROXY v2 header too short for its addresses")
    address = ipaddress.ip_address(body[:size])
    port = int.from_bytes(body[2 * size:2 * size + 2], "big")
    return ProxyHeader((str(address), str(port)), length)
