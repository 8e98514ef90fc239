"""The asgi class's direct path for a WSGI app (workers.asgi.wsgi_cycle): its
HTTP/1.1 requests run on the bridge's threads with no ASGI between. What
every class that serves WSGI does is specified in test_wsgi_behaviour.py and
test_bridge.py, which run on this path; here is what it adds: the environ it
builds is the one the bridge and the blocking classes build, and whatever
ends a request, the worker's count of work in flight comes down."""

from __future__ import annotations

import json
import socket
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hybrid.heartbeat import HEARTBEAT_INTERVAL
from tests.conftest import free_port, raw_exchange, split_response, wait_for
from tests.test_bridge import ENVIRON_REQUEST, environ_under

ABSOLUTE_FORM_REQUEST = (
    b"GET http://example.com/environ/a%20b?q=1 HTTP/1.1\r\n"
    b"Host: example.com\r\nConnection: close\r\n\r\n"
)


def test_an_absolute_form_target_reaches_the_app_as_the_thread_class_gives_it(start_server):
    direct = environ_under(start_server, "asgi", ABSOLUTE_FORM_REQUEST)
    blocking = environ_under(start_server, "thread", ABSOLUTE_FORM_REQUEST)
    assert direct == blocking
    assert direct["RAW_URI"] == "http://example.com/environ/a%20b?q=1"
    assert direct["PATH_INFO"] == "/environ/a b"


def test_the_bridge_as_an_asgi_app_builds_the_environ_the_direct_path_builds(start_server):
    server = start_server("tests.apps.bridged:app", "-k", "asgi", "--root-path", "/api",
                          "--forwarded-allow-ips", "127.0.0.1")
    status, _, body = split_response(raw_exchange(server.port, ENVIRON_REQUEST))
    assert status == 200
    bridged = json.loads(body)
    del bridged["REMOTE_PORT"]  # a different connection each time
    assert bridged == environ_under(start_server, "asgi")


def in_flight(control: str) -> float:
    text = httpx.get(control + "/metrics", timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text)
                 if f.name == "hybrid_requests_in_flight"]
    return sum(sample.value for sample in family.samples)


def test_work_in_flight_comes_down_however_a_request_ends(start_server):
    port = free_port()
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--request-timeout", "1",
                          "--control-bind", f"127.0.0.1:{port}")
    control = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/").status_code == 200
        assert client.get("/error").status_code == 500
        assert client.post("/echo", content=b"x" * 100_000).status_code == 200
        assert client.get("/sleep?s=2").status_code == 504  # given up; its thread goes on
        try:
            client.get("/late-error")
        except httpx.RemoteProtocolError:
            pass  # the answer begun was cut, as it must be
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /stream?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1024)  # the answer has begun: leave in the middle of it
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    # The gauge is set at each heartbeat: one must pass after the last request
    # for a count that never came down to show.
    time.sleep(2 * HEARTBEAT_INTERVAL)
    wait_for(lambda: in_flight(control) == 0, timeout=10, message="no request in flight")
    assert httpx.get(server.url + "/", timeout=10).status_code == 200


def test_a_pipelined_request_is_served_under_a_concurrency_limit_of_one(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--limit-concurrency", "1")
    raw = raw_exchange(server.port, b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\n"
                                    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 ") == 2, raw
