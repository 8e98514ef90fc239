"""The `asgi` class: ASGI 3 HTTP through real sockets, lifespan, flow control,
failures, and the loop-driven heartbeat."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from tests.conftest import (
    launch,
    raw_exchange,
    run_hybrid,
    split_response,
    wait_for,
)

APP = "tests.apps.asgi_basic:app"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = launch(APP, "-k", "asgi", "-w", "1", workdir=tmp_path_factory.mktemp("asgi"))
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def test_scope_describes_the_request(client, server):
    response = client.get("/scope/caf%C3%A9?x=1&y=%20", headers={"X-One": "1", "X-Two": "2"})
    scope = response.json()
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/caf\u00e9"
    assert scope["raw_path"] == "/scope/caf%C3%A9"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["root_path"] == ""
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1"
    names = [name for name, _ in scope["headers"]]
    assert names.index("x-one") < names.index("x-two")
    assert all(name == name.lower() for name in names)


def test_lifespan_state_reaches_every_request(client):
    assert client.get("/scope").json()["state"] == {"started": True}


def test_keep_alive_carries_many_requests(client):
    for _ in range(50):
        assert client.get("/").text == "hello"


def test_streamed_response_is_chunked(client):
    response = client.get("/stream?n=3")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "piece 0\npiece 1\npiece 2\n"


def test_request_body_arrives_in_pieces(client):
    body = b"z" * (3 * 1024 * 1024)
    assert client.post("/upload", content=body).text == str(len(body))


def test_echo_of_a_chunked_upload(client):
    response = client.post("/echo", content=iter([b"abc", b"def"]))
    assert response.content == b"abcdef"


def test_exception_before_the_response_is_a_500_and_the_worker_lives_on(client, server):
    pid = client.get("/pid").text
    assert client.get("/error").status_code == 500
    assert client.get("/pid").text == pid
    assert "the app failed on purpose" in server.log()


def test_exception_after_the_response_started_cuts_the_connection(server):
    raw = raw_exchange(server.port, b"GET /late-error HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = split_response(raw)
    assert status == 200 and b"first piece" in body
    assert not body.endswith(b"0\r\n\r\n")


def test_returning_without_a_response_is_a_500(client):
    assert client.get("/no-response").status_code == 500


def test_messages_out_of_order_are_a_500(client, server):
    assert client.get("/bad-order").status_code == 500
    assert "expected 'http.response.start'" in server.log()


def leave_mid_stream(client, server, path: str) -> None:
    """Start a streamed response from `path`, hang up, and wait for the app to see it."""
    before = int(client.get("/disconnects").text)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"streaming" in sock.recv(65536)
    wait_for(lambda: int(client.get("/disconnects").text) == before + 1,
             message="the app to see http.disconnect")


def test_client_disconnect_reaches_the_app(client, server):
    leave_mid_stream(client, server, "/until-disconnect")


def test_an_app_that_raises_once_its_client_left_is_not_logged_as_an_app_error(client, server):
    leave_mid_stream(client, server, "/raise-after-disconnect")
    assert "GET /raise-after-disconnect" not in server.log()


def test_head_response_has_no_body(server):
    raw = raw_exchange(server.port, b"HEAD /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200 and body == b""


# --- flow control -------------------------------------------------------------------

def _worker_rss(server) -> int:
    (pid,) = server.worker_pids()
    return psutil.Process(pid).memory_info().rss


def _peak_rss_during(server, action) -> int:
    peak = [_worker_rss(server)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(_worker_rss(server))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return max(peak)


STREAMED = 1024 * 1024 * 1024  # 1 GiB in 64 KiB pieces


@pytest.mark.slow
def test_streamed_download_keeps_worker_memory_flat(client, server):
    before = _worker_rss(server)

    def download() -> None:
        received = 0
        with client.stream("GET", f"/download?size={STREAMED}") as response:
            for chunk in response.iter_raw(65536):
                received += len(chunk)
        assert received == STREAMED

    assert _peak_rss_during(server, download) - before < 8 * 1024 * 1024


@pytest.mark.slow
def test_streamed_upload_keeps_worker_memory_flat(client, server):
    before = _worker_rss(server)
    piece = b"u" * 65536

    def upload() -> None:
        pieces = (piece for _ in range(STREAMED // len(piece)))
        assert client.post("/upload", content=pieces, timeout=120).text == str(STREAMED)

    assert _peak_rss_during(server, upload) - before < 8 * 1024 * 1024


@pytest.mark.slow
def test_pipelined_answers_to_a_client_that_does_not_read_are_not_buffered(server):
    # 200 pipelined requests for 1 MiB each, in one write, and nothing read
    # for a while: the worker holds about one answer, not 200 MiB; then every
    # answer arrives, in order.
    count, size = 200, 1024 * 1024
    request = b"GET /one?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size
    before = _worker_rss(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(request * count)
        peak = _peak_rss_during(server, lambda: time.sleep(2))
        answers = _read_answers(sock, count, size)
    assert peak - before < 24 * 1024 * 1024
    assert answers == count


def _read_answers(sock: socket.socket, count: int, size: int) -> int:
    """Read `count` answers of `size` bytes each; how many were whole 200s."""
    pending, whole = b"", 0
    for _ in range(count):
        while b"\r\n\r\n" not in pending:
            pending += sock.recv(1 << 20)
        head, _, pending = pending.partition(b"\r\n\r\n")
        while len(pending) < size:
            pending += sock.recv(1 << 20)
        body, pending = pending[:size], pending[size:]
        whole += head.startswith(b"HTTP/1.1 200") and body == b"x" * size
    return whole


# --- settings and lifecycle -----------------------------------------------------------

def test_limit_concurrency_answers_503_beyond_it(start_server):
    srv = start_server(APP, "-k", "asgi", "--limit-concurrency", "1")
    slow = threading.Thread(target=lambda: httpx.get(srv.url + "/sleep?s=2", timeout=10))
    slow.start()
    wait_for(lambda: "sleep started" in srv.log(), message="the slow request")
    assert httpx.get(srv.url + "/", timeout=10).status_code == 503
    slow.join()
    assert httpx.get(srv.url + "/", timeout=10).status_code == 200


def test_asyncio_loop_serves_too(start_server):
    srv = start_server(APP, "-k", "asgi", "--loop", "asyncio")
    assert httpx.get(srv.url + "/", timeout=10).text == "hello"


def test_blocked_loop_gets_the_worker_replaced(start_server):
    srv = start_server(APP, "-k", "asgi", "--timeout", "2")
    (blocked,) = srv.wait_workers(1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(srv.url + "/block?s=30", timeout=20)
    wait_for(lambda: blocked not in srv.booted_workers() and srv.booted_workers(),
             message="a replacement worker")
    assert f"WORKER TIMEOUT: worker {blocked}" in srv.log()
    assert "while serving GET /block?s=30" in srv.log()
    assert httpx.get(srv.url + "/", timeout=10).text == "hello"


def test_term_finishes_in_flight_requests_and_runs_lifespan_shutdown(start_server):
    srv = start_server(APP, "-k", "asgi")
    srv.wait_workers(1)
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(response=httpx.get(srv.url + "/sleep?s=2", timeout=30)))
    thread.start()
    wait_for(lambda: "sleep started" in srv.log(), message="the request to start")
    assert srv.stop(signal.SIGTERM) == 0
    thread.join()
    assert result["response"].text == "slept"
    assert "lifespan shutdown ran" in srv.log()


def test_failed_lifespan_startup_stops_the_server_with_the_reason():
    result = run_hybrid("run", APP, "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0",
                        env={"ASGI_LIFESPAN": "fail"})
    assert result.returncode == 3
    assert result.stderr.count("database unreachable") == 1


def test_a_startup_that_raises_after_taking_its_message_stops_the_server_under_auto():
    result = run_hybrid("run", APP, "-k", "asgi", "-b", "127.0.0.1:0",
                        env={"ASGI_LIFESPAN": "raise-in-startup"})
    assert result.returncode == 3
    assert result.stderr.count(
        "ASGI lifespan startup raised RuntimeError: the cache would not warm up") == 1
    assert "not supported" not in result.stderr


@pytest.mark.parametrize("flags", [[], ["--preload"]])
def test_a_startup_longer_than_the_timeout_is_named_as_such(flags):
    result = run_hybrid("run", APP, "-k", "asgi", "-t", "2", "-b", "127.0.0.1:0", *flags,
                        env={"ASGI_LIFESPAN": "slow"})
    assert result.returncode == 3
    assert result.stderr.count("Booting worker") == 1
    assert ("Worker failed to boot: the app took longer than --timeout (2 s) to start (its ASGI "
            "lifespan startup?)") in result.stderr
    assert "to load the app" not in result.stderr


def test_lifespan_auto_serves_an_app_without_lifespan(start_server):
    srv = start_server(APP, "-k", "asgi", env={"ASGI_LIFESPAN": "raise"})
    assert httpx.get(srv.url + "/", timeout=10).text == "hello"
    assert json.loads(httpx.get(srv.url + "/scope", timeout=10).text)["state"] == {}


def test_lifespan_on_refuses_an_app_without_lifespan():
    result = run_hybrid("run", APP, "-k", "asgi", "--lifespan", "on", "-b", "127.0.0.1:0",
                        env={"ASGI_LIFESPAN": "raise"})
    assert result.returncode == 3
    assert "this app does not do lifespan" in result.stderr


def test_lifespan_off_never_calls_it(start_server):
    srv = start_server(APP, "-k", "asgi", "--lifespan", "off", env={"ASGI_LIFESPAN": "fail"})
    assert json.loads(httpx.get(srv.url + "/scope", timeout=10).text)["state"] == {}


def test_a_failed_starlette_startup_names_the_cause_and_shows_the_apps_traceback():
    result = run_hybrid("run", "tests.apps.starlette_app:app", "-b", "127.0.0.1:0",
                        env={"STARLETTE_STARTUP": "fail"})
    assert result.returncode == 3
    app_file = os.path.join(os.path.dirname(__file__), "apps", "starlette_app.py")
    assert ("Worker failed to boot: ASGI lifespan startup failed: ConnectionError: the database "
            f"is unreachable ({app_file}, line 30)\nTraceback (most recent call last):\n"
            ) in result.stderr
    assert result.stderr.count("Traceback") == 1
    assert f'File "{app_file}", line 30, in lifespan' in result.stderr


def test_serves_a_starlette_app(start_server):
    srv = start_server("tests.apps.starlette_app:app", "-k", "asgi")
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        assert http.get("/").json() == {"hello": "starlette", "started": True}
        assert http.post("/items", json={"name": "x"}).json() == {"created": {"name": "x"}}
    with connect(f"ws://127.0.0.1:{srv.port}/shout") as ws:
        ws.send("hello")
        assert ws.recv() == "HELLO"


def test_a_bad_body_is_answered_by_the_server_not_by_the_apps_error_handler(server):
    raw = raw_exchange(server.port, b"POST /echo-or-sorry HTTP/1.1\r\nHost: x\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n")
    status, headers, body = split_response(raw)
    assert status == 400 and headers["connection"] == "close"
    assert b"sorry" not in body


def test_a_half_close_after_the_head_was_given_but_not_sent_is_still_answered(server):
    raw = raw_exchange(server.port, b"GET /head-then-sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n",
                       half_close=True)
    assert split_response(raw)[0::2] == (200, b"5\r\nended\r\n0\r\n\r\n")


def test_a_client_that_closes_before_its_answer_is_told_to_an_app_that_waits(start_server):
    srv = start_server(APP, "-k", "asgi", "--keep-alive", "1")
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET /long-poll HTTP/1.1\r\nHost: x\r\n\r\n")
        # (A FIN is all the server sees: after --keep-alive with nothing written,
        # the app waiting for its client to leave hears that it has.)
        wait_for(lambda: http.get("/disconnects").text == "1",
                 message="the long poll to hear of its client leaving")


def test_after_a_bad_body_the_apps_send_raises_client_disconnected(client, server):
    raw_exchange(server.port, b"POST /read-then-answer HTTP/1.1\r\nHost: x\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    wait_for(lambda: client.get("/send-error").text != "none", message="the app's send()")
    assert client.get("/send-error").text == "ClientDisconnected"


def test_upgrade_answered_as_http_leaves_the_connection_http(server):
    raw = raw_exchange(server.port, b"GET /path/one HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
                                    b"Connection: Upgrade\r\n\r\n"
                                    b"GET /path/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 ") == 2
    assert raw.index(b"/path/one") < raw.index(b"/path/two")


# --- answers that do not wait for the body, and clients that leave ----------------------

def test_lingering_close_saves_the_answer_from_a_reset_and_ends_on_its_own(start_server):
    srv = start_server(APP, "-k", "asgi", "--graceful-timeout", "20")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
        sock.sendall(b"u" * (1 << 20))  # unread when the server closes: a hasty close resets
        raw = b""
        while chunk := sock.recv(65536):  # the answer, then our end of the lingering close
            raw += chunk
        assert raw.endswith(b"ignored")
        # The client keeps its socket open: the linger must still end on its own.
        assert srv.stop(signal.SIGTERM, timeout=15) == 0
    assert "did not stop in time" not in srv.log()


def test_an_interim_status_as_the_answer_is_a_500(client):
    assert client.get("/early-hint").status_code == 500


def test_send_raises_an_oserror_once_the_client_has_gone(client, server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /send-until-gone HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"tick" in sock.recv(65536)
    wait_for(lambda: client.get("/raised?kind=http").text == "ClientDisconnected",
             message="the app's send() to raise")


def test_an_abandoned_upload_is_not_logged_as_an_app_error(client, server):
    before = int(client.get("/disconnects").text)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
    wait_for(lambda: int(client.get("/disconnects").text) == before + 1,
             message="the app to see http.disconnect")
    log = server.log()
    assert "Exception in ASGI application (POST /upload)" not in log
    assert "returned without a response (POST /upload)" not in log


def test_limit_concurrency_counts_requests_started_in_the_same_turn(start_server):
    srv = start_server(APP, "-k", "asgi", "--limit-concurrency", "1")
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(4)]
    try:
        for sock in socks:  # accepted and served once, so that later reads come together
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).endswith(b"hello")
        blocker = threading.Thread(target=lambda: httpx.get(srv.url + "/block?s=1", timeout=10))
        blocker.start()
        wait_for(lambda: "blocking the loop" in srv.log(), message="the loop to block")
        for sock in socks:  # all four arrive while the loop is blocked
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses = sorted(int(sock.recv(65536).split(b" ")[1]) for sock in socks)
        blocker.join()
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [200, 503, 503, 503]
