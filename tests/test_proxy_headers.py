"""Forwarded / X-Forwarded-* believed from trusted proxies only, the same for
every worker class."""

from __future__ import annotations

import httpx
import pytest

from hybrid.proxy import ProxyHeaders
from tests.conftest import app_for
from hybrid.workers import WORKER_CLASSES

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


@pytest.mark.parametrize("worker_class", sorted(WORKER_CLASSES))
def test_every_class_believes_a_trusted_proxy(start_server, worker_class):
    srv = start_server(app_for(worker_class), "-k", worker_class)
    response = httpx.get(srv.url + "/whoami", timeout=10,
                         headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.text == "203.0.113.7 https"


@pytest.mark.parametrize("worker_class", sorted(WORKER_CLASSES))
def test_every_class_ignores_an_untrusted_peer(start_server, worker_class):
    srv = start_server(app_for(worker_class), "-k", worker_class,
                       "--forwarded-allow-ips", "192.0.2.1")
    response = httpx.get(srv.url + "/whoami", timeout=10,
                         headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.text == "127.0.0.1 http"
