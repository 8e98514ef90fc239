"""What only the `thread` class promises: keep-alive, many slow requests on a
few threads, slow clients that cost no thread, the connection bound, and a
heartbeat that tells busy from stuck."""

from __future__ import annotations

import re
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from tests.conftest import raw_exchange, read_response, read_until_closed, split_response, wait_for

APP = "tests.apps.basic:app"


def test_one_connection_carries_100_requests(start_server):
    server = start_server(APP, "-k", "thread")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for i in range(100):
            sock.sendall(b"GET /environ/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            status, headers, body = split_response(read_response(sock))
            assert status == 200
            assert b'"PATH_INFO": "/environ/%d"' % i in body
            assert headers.get("connection") != "close"


def test_200_concurrent_slow_requests_all_complete_on_8_threads(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "8")
    limits = httpx.Limits(max_connections=200)
    with httpx.Client(base_url=server.url, timeout=60, limits=limits) as http:
        with ThreadPoolExecutor(200) as pool:
            responses = list(pool.map(lambda _: http.get("/sleep?s=0.2"), range(200)))
    assert [r.status_code for r in responses] == [200] * 200


def test_every_thread_takes_a_call_when_calls_block(start_server):
    # Each call waits until 4 are inside the app at once: only 4 threads
    # serving at the same time answer them all ("met", not "alone").
    server = start_server(APP, "-k", "thread", "--threads", "4")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.get(server.url + "/meet?n=4", timeout=30).text,
                                range(4)))
    assert answers == ["met"] * 4


def test_calls_at_once_never_exceed_threads(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "3")
    limits = httpx.Limits(max_connections=12)
    with httpx.Client(base_url=server.url, timeout=30, limits=limits) as http:
        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda _: http.get("/counted-sleep?s=0.2").status_code,
                                     range(36)))
        assert statuses == [200] * 36
        assert http.get("/most-calls-at-once").text == "3"


def test_a_call_that_blocks_does_not_hold_up_requests_on_other_connections(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "2")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, server.url + "/sleep?s=5", timeout=30)
        wait_for(lambda: "sleep started" in server.log())
        assert httpx.get(server.url + "/", timeout=30).text == "hello"
        assert not slow.done()
        assert slow.result().text == "slept"


def test_slowloris_does_not_delay_other_clients(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "1", "--header-timeout", "30")
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never more
        # With one thread, a thread held by any slow client would block this one.
        assert httpx.get(server.url + "/", timeout=5).text == "hello"
    finally:
        for sock in slow:
            sock.close()


def test_idle_keep_alive_connection_is_closed(start_server):
    server = start_server(APP, "-k", "thread", "--keep-alive", "0.5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert split_response(read_response(sock))[0] == 200
        assert sock.recv(65536) == b""  # closed by the server once idle


@pytest.mark.parametrize(("worker_class", "app"), [
    ("thread", APP), ("asgi", "tests.apps.asgi_basic:app")])
def test_connection_bound_holds_and_every_connection_is_served(start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "-w", "1", "--worker-connections", "5")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    extra = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    try:
        for sock in extra:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.settimeout(0.5)
        # At the bound: the extra connections wait in the backlog, unanswered.
        for sock in extra:
            try:
                assert sock.recv(65536) == b"", "answered beyond --worker-connections"
            except socket.timeout:
                pass
        for sock in idle:
            sock.close()
        for sock in extra:
            sock.settimeout(10)
            assert split_response(read_response(sock))[0] == 200
    finally:
        for sock in extra:
            sock.close()
    assert server.accepts()


@pytest.mark.parametrize(("worker_class", "app"), [
    ("thread", APP), ("asgi", "tests.apps.asgi_basic:app")])
def test_at_the_connection_bound_a_new_client_takes_the_longest_idle_ones_place(
        start_server, worker_class, app):
    # (The asgi class shares the behaviour: tests/test_asgi_worker.py has only what differs.)
    server = start_server(app, "-k", worker_class, "-w", "1", "--worker-connections", "3",
                          "--keep-alive", "300")
    kept = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    try:
        for sock in kept:  # one request each, then idle: the first idles longest
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert split_response(read_response(sock))[0] == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as new:
            new.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert split_response(read_response(new))[0] == 200
        assert kept[0].recv(65536) == b""  # closed to make room
        for sock in kept[1:]:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert split_response(read_response(sock))[0] == 200
    finally:
        for sock in kept:
            sock.close()
    assert server.log().count("closing idle keep-alive connections to make room") == 1


def test_sync_with_threads_switches_to_the_thread_class(start_server):
    server = start_server(APP, "-k", "sync", "--threads", "4")
    server.wait_workers(1)
    assert "Using worker class: thread (--threads > 1 chose the thread class)" in server.log()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/").headers.get("connection") != "close"


def test_gthread_is_an_alias(start_server):
    server = start_server(APP, "-k", "gthread")
    server.wait_workers(1)
    assert "Using worker class: thread" in server.log()


def test_term_finishes_in_flight_requests_and_closes_idle_ones(start_server):
    server = start_server(APP, "-k", "thread")
    server.wait_workers(1)
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    result = {}

    def slow_request() -> None:
        result["response"] = httpx.get(server.url + "/sleep?s=2", timeout=30)

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_for(lambda: "sleep started" in server.log(), message="the request to start")
    assert server.stop(signal.SIGTERM) == 0
    thread.join()
    assert result["response"].text == "slept"
    assert idle.recv(65536) == b""
    idle.close()


def test_busy_threads_that_progress_keep_the_worker(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "2", "--timeout", "3")
    (pid,) = server.wait_workers(1)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        with ThreadPoolExecutor(2) as pool:
            for _ in range(4):  # both threads busy for about 6 s, in 1.5 s requests
                assert all(r.text == "slept" for r in pool.map(
                    lambda _: http.get("/sleep?s=1.5"), range(2)))
    assert server.worker_pids() == {pid}
    assert "WORKER TIMEOUT" not in server.log()


def test_worker_whose_threads_are_all_stuck_is_replaced(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "2", "--timeout", "2")
    (stuck,) = server.wait_workers(1)

    def hang() -> None:
        try:
            httpx.get(server.url + "/sleep?s=60", timeout=30)
        except httpx.HTTPError:
            pass

    hangers = [threading.Thread(target=hang) for _ in range(2)]
    for thread in hangers:
        thread.start()
    wait_for(lambda: stuck not in server.booted_workers() and server.booted_workers(),
             timeout=30, message="a replacement worker")
    assert "while serving GET /sleep?s=60" in server.log()
    for thread in hangers:
        thread.join()
    assert httpx.get(server.url + "/", timeout=10).text == "hello"


def test_accepting_resumes_after_the_connection_bound_under_load(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "8", "--worker-connections", "2")

    def fetch(_: int) -> int:
        with httpx.Client(timeout=20) as http:
            return http.get(server.url + "/", headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(fetch, range(300))) == {200}


class Trickle:
    """Clients that send a POST head, then their body a byte at a time."""

    def __init__(self, port: int, count: int, length: int = 100_000,
                 pause: float = 0.2) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=10)
                      for _ in range(count)]
        for sock in self.socks:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % length)
        self._stop = threading.Event()
        self._pause = pause
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(self._pause):
            for sock in self.socks:
                try:
                    sock.sendall(b"x")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def test_slow_uploads_hold_no_thread_and_a_request_beside_them_is_served(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "2", "--body-timeout", "5")
    slow = Trickle(server.port, 8)  # four times the threads
    try:
        for _ in range(3):
            assert httpx.get(server.url + "/", timeout=5).text == "hello"
        assert not re.search(r"\b408\b", server.log())  # (not a port such as 40881)
    finally:
        slow.close()


def test_a_gathered_body_reaches_the_app_whole(start_server):
    server = start_server(APP, "-k", "thread")
    payload = bytes(range(256)) * 1000
    assert httpx.post(server.url + "/echo", content=payload, timeout=10).content == payload
    chunked = (payload[i:i + 1000] for i in range(0, len(payload), 1000))  # (an iterator: chunked)
    assert httpx.post(server.url + "/echo", content=chunked, timeout=10).content == payload


def test_a_stalled_chunked_upload_holds_no_thread(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "1", "--body-timeout", "30")
    (pid,) = server.wait_workers(1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as stalled:
        stalled.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n3\r\nwo")  # ... and nothing more
        wait_for(lambda: len(psutil.Process(pid).net_connections()) >= 2, message="the accept")
        # Had the only thread taken the upload, this would wait out the --body-timeout.
        assert httpx.get(server.url + "/", timeout=10).text == "hello"


@pytest.mark.parametrize(("worker_class", "app"), [
    ("thread", APP), ("asgi", "tests.apps.asgi_basic:app")])
def test_keep_alive_0_closes_each_connection_after_its_response_as_gunicorns(
        start_server, worker_class, app):
    server = start_server(app, "-k", worker_class, "--keep-alive", "0")
    raw = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 ") == 1
    assert split_response(raw)[1]["connection"] == "close"


@pytest.mark.parametrize("worker_class", ["thread", "asgi"])  # (asgi: the bridge)
def test_silent_uploads_announcing_the_whole_budget_do_not_use_it_up(start_server, worker_class):
    # 70 bodies of 1 MiB announced, none sent: more than the 64 MiB gathered at
    # once, had the budget been held by announcement rather than by what came.
    server = start_server(APP, "-k", worker_class, "--threads", "1", "--body-timeout", "60")
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
              for _ in range(70)]
    try:
        for sock in silent:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        # Had one of them reached the only thread, this would wait out --body-timeout.
        assert httpx.get(server.url + "/", timeout=10).text == "hello"
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("framing, first_part", [
    (b"Content-Length: 3", b""),  # (over the bound: the app runs before any of it came)
    (b"Transfer-Encoding: chunked", b"3\r\nabc\r\n"),  # (the bound passed by what came)
])
def test_a_body_over_gather_body_is_read_by_the_app_as_it_comes(start_server, framing,
                                                                 first_part):
    server = start_server(APP, "-k", "thread", "--gather-body", "2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /body-after-start HTTP/1.1\r\nHost: x\r\n%s\r\n"
                     b"Connection: close\r\n\r\n%s" % (framing, first_part))
        raw = b""
        while b"started\n" not in raw:  # (the app answers before the rest of the body came)
            raw += sock.recv(65536)
    assert raw.startswith(b"HTTP/1.1 200")


def test_a_gathered_body_too_slow_to_come_gets_408(start_server):
    server = start_server(APP, "-k", "thread", "--body-timeout", "1")
    for framing, part in ((b"Content-Length: 10", b"abc"),
                          (b"Transfer-Encoding: chunked", b"5\r\nhello\r\n3\r\nab")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n%s" % (framing, part))
            answer = sock.recv(65536)
        assert split_response(answer)[0] == 408


def test_a_request_sent_whole_is_never_408_for_waiting_on_a_busy_thread(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "1", "--header-timeout", "1")
    (pid,) = server.wait_workers(1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as waiting, \
            ThreadPoolExecutor(1) as pool:
        wait_for(lambda: len(psutil.Process(pid).net_connections()) >= 2, message="the accept")
        busy = pool.submit(httpx.get, server.url + "/sleep?s=3", timeout=10)
        wait_for(lambda: "sleep started" in server.log(), message="the thread to be taken")
        # Sent whole while the only thread sleeps, past --header-timeout: read once it is free.
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert busy.result().text == "slept"
        status, _, body = split_response(read_until_closed(waiting))
    assert (status, body) == (200, b"hello")


# --- a plain socket is watched edge-triggered: no arrival may go unreported --------

def _bodies(sock: socket.socket, count: int) -> list[bytes]:
    """The bodies of the next `count` Content-Length-framed responses."""
    data, bodies = b"", []
    while len(bodies) < count:
        head, found, rest = data.partition(b"\r\n\r\n")
        length = int(split_response(head + found)[1]["content-length"]) if found else -1
        if 0 <= length <= len(rest):
            bodies.append(rest[:length])
            data = rest[length:]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(bodies)} of {count} responses"
        data += chunk
    return bodies


def test_requests_sent_while_the_app_runs_are_answered_in_order(start_server):
    server = start_server(APP, "-k", "thread", "--threads", "2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the call to begin")
        for i in range(3):  # each arrives while the other thread leads and polls
            sock.sendall(b"GET /environ/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        answers = _bodies(sock, 4)
    assert answers[0] == b"slept"
    for i, body in enumerate(answers[1:]):
        assert b'"PATH_INFO": "/environ/%d"' % i in body


def test_pipelined_requests_longer_than_one_read_are_all_answered(start_server):
    server = start_server(APP, "-k", "thread")
    padding = b"p" * 1000
    requests = b"".join(b"GET /environ/%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % (i, padding)
                        for i in range(300))  # ~310 KB: several reads' worth, sent at once
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock, \
            ThreadPoolExecutor(1) as pool:
        sending = pool.submit(sock.sendall, requests)
        bodies = _bodies(sock, 300)
        sending.result()
    for i, body in enumerate(bodies):
        assert b'"PATH_INFO": "/environ/%d"' % i in body


def test_a_body_longer_than_one_read_and_the_request_after_it_are_both_answered(start_server):
    server = start_server(APP, "-k", "thread")
    payload = b"b" * 300_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" % (len(payload), payload))
        echoed, after = _bodies(sock, 2)
    assert (len(echoed), after) == (len(payload), b"hello")

