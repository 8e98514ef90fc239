"""--proxy-protocol: a load balancer's PROXY protocol header (v1 and v2)
names the client on every class, over plain HTTP and before TLS; only the
--proxy-allow-ips peers may send one."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import struct

import pytest
import trustme

from hybrid.protocol.proxy_protocol import ProxyHeaderError, V2_SIGNATURE, parse
from tests.conftest import read_until_closed, split_response

CLIENT = ("203.0.113.7", 51234)


def v1(client=CLIENT, family="TCP4") -> bytes:
    return f"PROXY {family} {client[0]} 192.0.2.1 {client[1]} 443\r\n".encode()


def v2(client=CLIENT, command=0x21) -> bytes:
    address = ipaddress.ip_address(client[0])
    family = 0x11 if address.version == 4 else 0x21
    destination = ipaddress.ip_address("192.0.2.1" if address.version == 4 else "2001:db8::1")
    body = address.packed + destination.packed + struct.pack("!HH", client[1], 443)
    tlv = b"\x04\x00\x03abc"  # (a type-length-value the server skips)
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(body + tlv)) + body + tlv


# --- the parser --------------------------------------------------------------------

@pytest.mark.parametrize("header", [v1(), v1(("2001:db8::7", 51234), "TCP6"), v2(),
                                    v2(("2001:db8::7", 51234))])
def test_a_header_names_the_client_and_its_own_length(header):
    parsed = parse(header + b"GET / HTTP/1.1\r\n")
    assert parsed is not None and parsed.length == len(header)
    assert parsed.client is not None and parsed.client[1] == "51234"


@pytest.mark.parametrize("header", [b"PROXY UNKNOWN\r\n", v2(command=0x20)])
def test_a_header_for_the_proxys_own_connection_names_no_client(header):
    assert parse(header) == (None, len(header))


@pytest.mark.parametrize("cut", [1, 5, 12, 15, 20])
def test_part_of_a_header_asks_for_more(cut):
    assert parse(v2()[:cut]) is None
    assert parse(v1()[:min(cut, len(v1()) - 2)]) is None


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n", b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",
    b"PROXY TCP4 2001:db8::7 192.0.2.1 51234 443\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 051234 443\r\n", b"PROXY " + b"x" * 120,
    V2_SIGNATURE + b"\x31\x11\x00\x00",
])
def test_anything_else_is_no_header(data):
    with pytest.raises(ProxyHeaderError):
        parse(data)


# --- the classes -------------------------------------------------------------------

APPS = {"sync": "tests.apps.basic:app", "thread": "tests.apps.basic:app",
        "asgi": "tests.apps.asgi_basic:app"}


def client_seen(port: int, klass: str, header: bytes, wrap=None) -> str:
    """The client address the app saw, for one request after `header`."""
    path = b"/scope" if klass == "asgi" else b"/environ"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(header)
        sock = wrap(raw) if wrap else raw
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = split_response(read_until_closed(sock))
    assert status == 200
    seen = json.loads(body)
    return seen["client"][0] if klass == "asgi" else seen["REMOTE_ADDR"]


@pytest.mark.parametrize("klass", APPS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_app_sees_the_client_the_header_names(start_server, klass, version):
    server = start_server(APPS[klass], "-k", klass, "--proxy-protocol")
    assert client_seen(server.port, klass, v1() if version == "v1" else v2()) == CLIENT[0]


@pytest.mark.parametrize("klass", APPS)
def test_an_allowed_peer_without_a_header_is_closed(start_server, klass):
    server = start_server(APPS[klass], "-k", klass, "--proxy-protocol")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" not in read_until_closed(sock)
    assert client_seen(server.port, klass, v1()) == CLIENT[0]  # (the worker serves on)


@pytest.mark.parametrize("klass", APPS)
def test_other_peers_are_served_as_they_are_and_cannot_send_a_header(start_server, klass):
    server = start_server(APPS[klass], "-k", klass, "--proxy-protocol",
                          "--proxy-allow-ips", "10.9.8.7")
    assert client_seen(server.port, klass, b"") == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(v1() + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert split_response(read_until_closed(sock))[0] == 400


def start_tls_behind_a_balancer(start_server, tmp_path, klass):
    """A server with --proxy-protocol over TLS, and a wrap() for its clients."""
    ca = trustme.CA()
    issued = ca.issue_cert("localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    server = start_server(APPS[klass], "-k", klass, "--proxy-protocol", "--certfile", str(cert),
                          "--keyfile", str(key))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return server, lambda raw: context.wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize("klass", APPS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_header_comes_before_the_tls_handshake(start_server, tmp_path, klass, version):
    server, wrap = start_tls_behind_a_balancer(start_server, tmp_path, klass)
    header = v1() if version == "v1" else v2()
    assert client_seen(server.port, klass, header, wrap) == CLIENT[0]


@pytest.mark.parametrize("klass", ["thread", "asgi"])
def test_a_silent_connection_of_the_balancer_holds_up_no_other(start_server, tmp_path, klass):
    server, wrap = start_tls_behind_a_balancer(start_server, tmp_path, klass)
    with socket.create_connection(("127.0.0.1", server.port)):  # (no header, nothing)
        assert client_seen(server.port, klass, v1(), wrap) == CLIENT[0]
