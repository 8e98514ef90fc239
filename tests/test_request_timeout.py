"""--request-timeout, in every class: a 504 when the answer had not begun, a
cut answer when it had, the request named in the log; what happens to the
call itself is each class's (asgi cancels it, thread and the bridge leave it
to its thread, sync replaces the worker)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from hybrid.heartbeat import HEARTBEAT_INTERVAL
from tests.conftest import read_until_closed, wait_for

WSGI = "tests.apps.basic:app"
ASGI = "tests.apps.asgi_basic:app"
SERVERS = [("sync", WSGI), ("thread", WSGI), ("asgi", ASGI), ("asgi", WSGI)]  # last: the bridge
IDS = ["sync", "thread", "asgi", "bridge"]


@pytest.mark.parametrize(("worker_class", "app"), SERVERS, ids=IDS)
def test_a_request_past_the_timeout_gets_504(start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "--request-timeout", "1")
    response = httpx.get(server.url + "/sleep?s=5", timeout=30)
    assert response.status_code == 504
    assert response.headers["connection"] == "close"
    assert "GET /sleep?s=5 has run for" in server.log()
    assert "over --request-timeout" in server.log()
    wait_for(lambda: httpx.get(server.url + "/", timeout=10).status_code == 200,
             message="the server serving on")


@pytest.mark.parametrize(("worker_class", "app"), SERVERS, ids=IDS)
def test_an_answer_begun_is_cut_at_the_timeout(start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "--request-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /start-then-sleep?s=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"begun" in raw and b"ended" not in raw
    assert not raw.endswith(b"0\r\n\r\n")  # (no last chunk: the client sees the cut)


def test_sync_replaces_its_worker_at_the_timeout(start_server):
    server = start_server(WSGI, "-k", "sync", "--request-timeout", "1")
    (first,) = server.wait_workers(1)
    assert httpx.get(server.url + "/sleep?s=5", timeout=30).status_code == 504
    wait_for(lambda: f"Worker {first} exited (replaced: request-timeout)" in server.log(),
             message="the worker replaced")
    assert httpx.get(server.url + "/pid", timeout=10).text != str(first)


@pytest.mark.parametrize(("worker_class", "app"), [("thread", WSGI), ("asgi", ASGI)],
                         ids=["thread", "asgi"])
def test_a_worker_with_a_thread_or_task_left_keeps_serving(start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "--request-timeout", "1")
    (worker,) = server.wait_workers(1)
    assert httpx.get(server.url + "/sleep?s=3", timeout=30).status_code == 504
    assert httpx.get(server.url + "/pid", timeout=10).text == str(worker)
    assert "replaced" not in server.log()


@pytest.mark.parametrize(("worker_class", "app"), [("thread", WSGI), ("asgi", WSGI)],
                         ids=["thread", "bridge"])
def test_a_worker_whose_threads_are_all_stuck_is_replaced(start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "--threads", "1", "--request-timeout", "1",
                          "--graceful-timeout", "2")
    (first,) = server.wait_workers(1)
    assert httpx.get(server.url + "/sleep?s=8", timeout=30).status_code == 504
    wait_for(lambda: "every" in server.log() and "stuck past --request-timeout" in server.log(),
             message="the stuck pool noticed")
    wait_for(lambda: (pids := server.booted_workers()) and first not in pids,
             timeout=60, message="a replacement serving")
    assert httpx.get(server.url + "/pid", timeout=10).text != str(first)


def test_a_call_waiting_on_a_client_that_does_not_read_is_not_taken_for_stuck(start_server):
    # (On the asgi class a WSGI call given up while it waits for the client to
    # read ends as soon as it hears so: its one thread is free again.)
    server = start_server(WSGI, "-k", "asgi", "--threads", "1", "--request-timeout", "1")
    (worker,) = server.wait_workers(1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /stream?n=3000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "over --request-timeout" in server.log(), message="the timeout")
        time.sleep(3 * HEARTBEAT_INTERVAL)  # (the ticks that would judge the pool stuck)
    assert httpx.get(server.url + "/pid", timeout=10).text == str(worker)
    assert "stuck" not in server.log()
