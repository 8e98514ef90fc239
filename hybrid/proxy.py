"""Proxy headers, one implementation for every worker class.

Behind a proxy the TCP peer is the proxy; the client and the scheme it
used arrive in `Forwarded` (RFC 7239) or `X-Forwarded-For` /
`X-Forwarded-Proto`. Those headers are believed only when the peer is in
--forwarded-allow-ips (addresses or networks, or "*"); anyone else could
forge them. The client is found by walking the forwarding chain from the
right (the hop nearest to us) past every trusted proxy: the first
untrusted address is the client.
"""

from __future__ import annotations

import ipaddress
from typing import Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ProxyHeaders:
    def __init__(self, allow: tuple[str, ...]) -> None:
        self.trust_all = "*" in allow
        self.networks: list[Network] = [ipaddress.ip_network(item, strict=False)
                                        for item in allow if item != "*"]

    def trusted(self, address: str) -> bool:
        if self.trust_all or not address:  # "": a UNIX socket peer, on this host
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

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
        if forwarded is not None:
            hops = [_forwarded_element(e) for e in forwarded.decode("latin-1").split(",")]
            chain = [(hop.get("for", ""), hop.get("proto")) for hop in hops]
        elif addresses is not None:
            proto = protos.decode("latin-1").split(",")[0].strip().lower() if protos else None
            chain = [(a.strip(), proto) for a in addresses.decode("latin-1").split(",")]
        else:
            return client, scheme
        for index in range(len(chain) - 1, -1, -1):
            address, proto = chain[index]
            if index == 0 or not self.trusted(_host_only(address)):
                return (_host_only(address), _port_of(address)), (proto or scheme)
        return client, scheme


def _forwarded_element(element: str) -> dict[str, str]:
    pairs = {}
    for pair in element.split(";"):
        key, _, value = pair.strip().partition("=")
        pairs[key.strip().lower()] = value.strip().strip('"')
    if "proto" in pairs:
        pairs["proto"] = pairs["proto"].lower()
    return pairs


def _host_only(address: str) -> str:
    """'1.2.3.4:5' -> '1.2.3.4'; '[::1]:5' -> '::1'; obfuscated ids stay as they are."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def _port_of(address: str) -> str:
    if address.startswith("["):
        rest = address.partition("]")[2]
        return rest[1:] if rest.startswith(":") else "0"
    if address.count(":") == 1:
        return address.partition(":")[2]
    return "0"
