"""No request lost when workers stop gracefully, in every class: HUP, TTOU
and TERM with clients looping, a connection whose next request is already
sent, and workers orphaned by an arbiter killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import threading

import httpx
import psutil
import pytest

from tests.conftest import Traffic, read_response, split_response, wait_for

APP = "tests.apps.basic:app"
CLASSES = ["sync", "thread", "asgi"]


@pytest.mark.parametrize("worker_class", CLASSES)
def test_hup_fails_no_request(start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "-w", "2")
    before = server.wait_workers(2)
    with Traffic(server) as traffic:
        traffic.more(message="traffic before the reload")
        server.send(signal.SIGHUP)
        after = wait_for(lambda: (pids := server.booted_workers()) and len(pids) == 2
                         and not pids & before and pids, timeout=30, message="new workers")
        traffic.more(message="traffic after the reload")
    assert traffic.failures == []
    assert {int(pid) for pid in traffic.answers[-10:]} <= after


@pytest.mark.parametrize("worker_class", CLASSES)
def test_ttin_and_ttou_fail_no_request(start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "-w", "2")
    server.wait_workers(2)
    with Traffic(server) as traffic:
        for _ in range(3):
            server.send(signal.SIGTTIN)
            server.wait_workers(3)
            traffic.more()
            server.send(signal.SIGTTOU)
            server.wait_workers(2)
            traffic.more()
    assert traffic.failures == []


@pytest.mark.parametrize("worker_class", ["thread", "asgi"])
def test_a_request_sent_on_a_kept_alive_connection_during_a_stop_is_answered(
        start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "--graceful-timeout", "10")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as kept, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as busy:
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert split_response(read_response(kept))[0] == 200
        busy.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the slow request")
        server.send(signal.SIGTERM)
        wait_for(lambda: "Received TERM" in server.log(), message="the stop to begin")
        kept.sendall(b"GET /path/next HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = split_response(read_response(kept))
        assert (status, body) == (200, b"/path/next")
        assert kept.recv(100) == b""  # then closed, cleanly
        assert split_response(read_response(busy))[0] == 200
    assert server.stop() == 0


@pytest.mark.parametrize("worker_class", ["thread", "asgi"])
def test_a_stop_ends_an_idle_kept_alive_connection_with_a_clean_close(start_server,
                                                                      worker_class):
    server = start_server(APP, "-k", worker_class)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as kept:
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert split_response(read_response(kept))[0] == 200
        server.send(signal.SIGTERM)
        assert kept.recv(100) == b""  # a FIN, not a reset
    assert server.stop() == 0


@pytest.mark.parametrize("worker_class", CLASSES)
def test_orphaned_workers_finish_their_requests_then_exit(start_server, worker_class):
    server = start_server(APP, "-k", worker_class)
    (worker,) = server.wait_workers(1)
    result: dict[str, httpx.Response] = {}
    slow = threading.Thread(target=lambda: result.setdefault(
        "response", httpx.get(server.url + "/sleep?s=3", timeout=30)))
    slow.start()
    try:
        wait_for(lambda: "sleep started" in server.log(), message="the slow request")
        os.kill(server.pid, signal.SIGKILL)
        slow.join()
        assert (result["response"].status_code, result["response"].text) == (200, "slept")
        wait_for(lambda: not psutil.pid_exists(worker)
                 or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE,
                 message="the orphaned worker to exit")
    finally:
        if psutil.pid_exists(worker):
            os.kill(worker, signal.SIGKILL)
