"""Forwarding headers a proxy adds (`Forwarded`, `X-Forwarded-*`), one
implementation for every worker class. (HAProxy's PROXY protocol header,
which comes before any HTTP, is `hybrid.protocol.proxy_protocol`'s.)

Behind a proxy the TCP peer is the proxy; the client and the scheme it
used arrive in `Forwarded` (RFC 7239) or `X-Forwarded-For` /
`X-Forwarded-Proto`. Those headers are believed only when the peer is in
--forwarded-allow-ips (addresses or networks, or "*"); anyone else could
forge them. The client is found by walking the forwarding chain from the
right (the hop nearest to us) past every trusted proxy: the first
untrusted address is the client.

Only an IP address becomes the client: a hop that names none (RFC 7239's
`unknown`, an obfuscated `_name`, or anything that is no address) ends the
walk with the TCP peer kept as the client, since nothing further left can
be vouched for. The scheme is believed only as http, https, ws or wss (a
WebSocket's ws and wss are told as http and https, which the WebSocket
scope turns back), and is honoured from a trusted peer with or without a
client address.
"""

from __future__ import annotations

import ipaddress
from typing import Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# The schemes a proxy may report, as the HTTP scheme they stand for.
SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class ProxyHeaders:
    def __init__(self, allow: tuple[str, ...]) -> None:
        self.trust_all = "*" in allow
        self.networks: list[Network] = [ipaddress.ip_network(item, strict=False)
                                        for item in allow if item != "*"]

    def trusted(self, address: str) -> bool:
        """May the TCP peer at `address` speak for the client?"""
        if self.trust_all or not address:  # "": a UNIX socket peer, on this host
            return True
        ip = _ip(address)
        return ip is not None and self._trusts(ip)

    def _trusts(self, ip: Address) -> bool:
        return self.trust_all or any(ip in network for network in self.networks)

    def resolve(self, headers: list[tuple[bytes, bytes]], client: tuple[str, str],
                scheme: str, peer_trusted: bool | None = None) -> tuple[tuple[str, str], str]:
        """The (client, scheme) a request really came with, given its TCP peer.

        `peer_trusted`: `trusted(client[0])` if the caller already knows it
        (it does not change during a connection).
        """
        if peer_trusted is None:
            peer_trusted = self.trusted(client[0])
        if not peer_trusted:
            return client, scheme
        forwarded = addresses = protos = None
        for name, value in headers:  # one pass; most requests carry none of these
            if name == b"forwarded":
                forwarded = value if forwarded is None else forwarded + b"," + value
            elif name == b"x-forwarded-for":
                addresses = value if addresses is None else addresses + b"," + value
            elif name == b"x-forwarded-proto":
                protos = value if protos is None else protos + b"," + value
        # X-Forwarded-Proto: the first value is the scheme the client used.
        forwarded_scheme = _scheme(protos.decode("latin-1").split(",")[0]) if protos else None
        if forwarded is not None:
            # The X- family is not mixed in: a proxy that writes Forwarded without a
            # proto may pass on an X-Forwarded-Proto the client wrote itself.
            hops = [_forwarded_element(e) for e in forwarded.decode("latin-1").split(",")]
            chain = [(hop.get("for", ""), _scheme(hop.get("proto", ""))) for hop in hops]
        elif addresses is not None:
            chain = [(node, forwarded_scheme) for node in addresses.decode("latin-1").split(",")]
        else:
            return client, forwarded_scheme or scheme
        return self._walk(chain, client, scheme)

    def _walk(self, chain: list[tuple[str, str | None]], peer: tuple[str, str],
              scheme: str) -> tuple[tuple[str, str], str]:
        """The client: the hop nearest the client that a trusted proxy vouched for."""
        for index in range(len(chain) - 1, -1, -1):
            node, proto = chain[index]
            node = node.strip()
            ip = _ip(_host_only(node))
            if ip is None:  # unknown, obfuscated or no address: the peer stays the client
                return peer, proto or scheme
            if index == 0 or not self._trusts(ip):
                return (str(ip), _port_of(node)), proto or scheme
        return peer, scheme  # (an empty chain: nothing to walk)


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _scheme(text: str) -> str | None:
    """A reported proto as the scheme the app is told; None for any other value."""
    return SCHEMES.get(text.strip().lower())


def _forwarded_element(element: str) -> dict[str, str]:
    pairs = {}
    for pair in element.split(";"):
        key, _, value = pair.strip().partition("=")
        pairs[key.strip().lower()] = value.strip().strip('"')
    return pairs


def _host_only(node: str) -> str:
    """'1.2.3.4:5' -> '1.2.3.4'; '[::1]:5' -> '::1'; anything else as it is."""
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node


def _port_of(node: str) -> str:
    """The port a hop names, or "0" (none, or RFC 7239's obfuscated `_port`)."""
    if node.startswith("["):
        rest = node.partition("]")[2]
        port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        port = node.partition(":")[2]
    else:
        port = ""
    return port if port.isascii() and port.isdigit() else "0"
