"""Forwarded / X-Forwarded-* believed from trusted proxies only, the same for
every worker class; only an IP address becomes the client, and only a web
scheme the scheme."""

from __future__ import annotations

import httpx
import pytest

from hybrid.protocol import Request, RequestParser
from hybrid.forwarded import ProxyHeaders
from hybrid.workers import WORKER_CLASSES
from tests.conftest import app_for, launch

PEER = ("10.0.0.5", "40000")


def resolve(allow, headers, peer=PEER):
    encoded = [(name.encode(), value.encode()) for name, value in headers]
    return ProxyHeaders(tuple(allow)).resolve(encoded, peer, "http")


def test_untrusted_peer_is_taken_at_its_word():
    assert resolve(["127.0.0.1"], [("x-forwarded-for", "1.2.3.4")]) == (PEER, "http")


def test_trusted_peer_forwards_client_and_scheme():
    client, scheme = resolve(["10.0.0.0/8"], [("x-forwarded-for", "1.2.3.4"),
                                              ("x-forwarded-proto", "https")])
    assert (client[0], scheme) == ("1.2.3.4", "https")


def test_the_chain_is_walked_past_trusted_proxies_only():
    headers = [("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.9")]
    assert resolve(["10.0.0.0/8"], headers)[0][0] == "1.2.3.4"  # 6.6.6.6 may be forged


def test_rfc7239_forwarded_wins_and_keeps_the_port():
    headers = [("forwarded", 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.9'),
               ("x-forwarded-for", "9.9.9.9")]
    client, scheme = resolve(["10.0.0.0/8"], headers)
    assert client == ("2001:db8::1", "4711") and scheme == "https"


def test_star_trusts_every_peer():
    assert resolve(["*"], [("x-forwarded-for", "1.2.3.4")])[0][0] == "1.2.3.4"


def test_unix_socket_peers_are_trusted():
    assert resolve(["127.0.0.1"], [("x-forwarded-for", "1.2.3.4")], peer=("", ""))[0][0] == "1.2.3.4"


# --- what is believed ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["garbage", "1.2.3.4.5", "<script>", "", "1.2.3.4 5.6.7.8",
                                   "example.com"])
def test_a_forwarded_for_that_is_no_ip_address_never_becomes_the_client(value):
    assert resolve(["*"], [("x-forwarded-for", value)]) == (PEER, "http")
    assert resolve(["*"], [("forwarded", f'for="{value}"')]) == (PEER, "http")


@pytest.mark.parametrize("node", ["unknown", "_hidden", "_SEVKISEK"])
def test_rfc7239_unknown_and_obfuscated_identifiers_keep_the_peer(node):
    assert resolve(["10.0.0.0/8"], [("forwarded", f"for={node};proto=https")]) == (PEER, "https")


def test_a_hop_that_names_no_address_ends_the_walk_there():
    # 6.6.6.6 sits beyond a hop nobody can vouch for: it may be forged.
    headers = [("x-forwarded-for", "6.6.6.6, unknown, 10.0.0.9")]
    assert resolve(["10.0.0.0/8"], headers) == (PEER, "http")


def test_an_empty_hop_is_not_taken_for_a_trusted_proxy():
    assert resolve(["10.0.0.0/8"], [("x-forwarded-for", "6.6.6.6, ")]) == (PEER, "http")


def test_x_forwarded_proto_alone_is_honoured_from_a_trusted_peer():
    assert resolve(["10.0.0.0/8"], [("x-forwarded-proto", "https")]) == (PEER, "https")


def test_x_forwarded_proto_alone_is_ignored_from_an_untrusted_peer():
    assert resolve(["127.0.0.1"], [("x-forwarded-proto", "https")]) == (PEER, "http")


@pytest.mark.parametrize("headers", [[("x-forwarded-proto", "garbage")],
                                     [("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "ftp")],
                                     [("forwarded", "for=1.2.3.4;proto=garbage")],
                                     [("forwarded", "proto=javascript")]])
def test_a_proto_that_is_no_web_scheme_is_ignored(headers):
    assert resolve(["*"], headers)[1] == "http"


@pytest.mark.parametrize(("proto", "scheme"), [("https", "https"), ("HTTPS", "https"),
                                               ("http", "http"), ("wss", "https"),
                                               ("ws", "http")])
def test_websocket_protos_are_told_as_their_http_schemes(proto, scheme):
    # (the WebSocket scope turns https back into wss)
    assert resolve(["*"], [("x-forwarded-proto", proto)], peer=("10.0.0.5", "1"))[1] == scheme


def test_forwarded_proto_alone_is_honoured_and_keeps_the_peer():
    assert resolve(["*"], [("forwarded", "proto=https")]) == (PEER, "https")


def test_x_forwarded_proto_is_not_mixed_into_a_forwarded_without_proto():
    # (a proxy that writes Forwarded may pass on the client's own X-Forwarded-Proto)
    headers = [("forwarded", "for=1.2.3.4"), ("x-forwarded-proto", "https")]
    assert resolve(["*"], headers) == (("1.2.3.4", "0"), "http")


def test_an_obfuscated_port_is_no_port():
    assert resolve(["*"], [("forwarded", 'for="1.2.3.4:_abc"')])[0] == ("1.2.3.4", "0")


def test_a_request_with_x_forwarded_proto_alone_is_flagged_for_the_proxy_check():
    # The workers look at proxy headers only for a request the parser flagged.
    parser = RequestParser()
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n")
    (request,) = [event for event in events if isinstance(event, Request)]
    assert request.forwarded


# --- every class, through real sockets ---------------------------------------------------

@pytest.fixture(scope="module", params=sorted(WORKER_CLASSES))
def trusting(request, tmp_path_factory):
    """A server of each class that believes its peer (127.0.0.1)."""
    srv = launch(app_for(request.param), "-k", request.param, "-w", "1",
                 workdir=tmp_path_factory.mktemp("proxy"))
    yield srv
    assert srv.stop() == 0, srv.log()


def whoami(server, headers):
    return httpx.get(server.url + "/whoami", timeout=10, headers=headers).text


def test_every_class_believes_a_trusted_proxy(trusting):
    assert whoami(trusting, {"X-Forwarded-For": "203.0.113.7",
                             "X-Forwarded-Proto": "https"}) == "203.0.113.7 https"


def test_every_class_honours_x_forwarded_proto_alone(trusting):
    assert whoami(trusting, {"X-Forwarded-Proto": "https"}) == "127.0.0.1 https"


def test_every_class_keeps_the_peer_for_a_forwarded_for_that_is_no_address(trusting):
    assert whoami(trusting, {"X-Forwarded-For": "garbage"}) == "127.0.0.1 http"


@pytest.mark.parametrize("worker_class", sorted(WORKER_CLASSES))
def test_every_class_ignores_an_untrusted_peer(start_server, worker_class):
    srv = start_server(app_for(worker_class), "-k", worker_class,
                       "--forwarded-allow-ips", "192.0.2.1")
    response = httpx.get(srv.url + "/whoami", timeout=10,
                         headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.text == "127.0.0.1 http"
