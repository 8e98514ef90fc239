"""WSGI apps on the `asgi` worker class, through `hybrid.bridge.WSGIBridge`:
real Flask and Django apps over real sockets, the environ they see, streaming
both ways with bounded memory, and each request's own context."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import socket
import time

import httpx
import psutil
import pytest
import websockets.sync.client

from tests.conftest import ROOT, raw_exchange, split_response, wait_for

FRAMEWORK_APPS = {"flask": "tests.apps.flask_app:app", "django": "tests.apps.django_app:application"}


@pytest.fixture(params=sorted(FRAMEWORK_APPS))
def framework(request: pytest.FixtureRequest, start_server):
    server = start_server(FRAMEWORK_APPS[request.param], "-k", "asgi")
    server.framework = request.param
    return server


def worker_rss(server) -> int:
    (pid,) = server.worker_pids()
    return psutil.Process(pid).memory_info().rss


# --- real frameworks -------------------------------------------------------------------

def test_a_framework_app_is_served_by_the_asgi_class(framework):
    response = httpx.get(framework.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.text == f"hello from {framework.framework}"
    assert "Using worker class: asgi" in framework.log()


def test_a_form_post_with_a_cookie_reaches_the_view_and_sets_one(framework):
    response = httpx.post(framework.url + "/form", data={"name": "Ada", "lang": "en"},
                          cookies={"session": "s3cret"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"fields": {"name": "Ada", "lang": "en"}, "cookie": "s3cret"}
    assert response.cookies["seen"] == "yes"


def test_a_multipart_upload_arrives_whole(framework):
    data = bytes(range(256)) * 4096  # 1 MiB
    response = httpx.post(framework.url + "/upload", files={"document": ("report.bin", data)},
                          timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["size"]) == ("report.bin", len(data))
    assert body["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_streamed_response_arrives_in_order(framework):
    response = httpx.get(framework.url + "/stream?n=500", timeout=10)
    assert response.status_code == 200
    assert response.text == "".join(f"line {i}\n" for i in range(500))


def test_a_file_response_is_sent_whole(framework):
    size = 3 * 1024 * 1024 + 17
    response = httpx.get(framework.url + f"/download?size={size}", timeout=30)
    assert response.status_code == 200
    assert response.content == bytes(range(256)) * (size // 256) + bytes(size % 256)


def test_a_view_that_raises_is_a_500_and_the_worker_serves_on(framework):
    assert httpx.get(framework.url + "/boom", timeout=10).status_code == 500
    assert httpx.get(framework.url + "/", timeout=10).status_code == 200
    wait_for(lambda: "the view failed on purpose" in framework.log(), message="the traceback")


# --- the same environ under every class ---------------------------------------------------

ENVIRON_REQUEST = (
    b"GET /api/environ/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\n"
    b"Host: example.com:8443\r\n"
    b"Accept: text/html\r\nAccept: application/json\r\n"
    b"Cookie: a=1\r\nCookie: b=2\r\n"
    b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


def environ_under(start_server, worker_class: str, request: bytes = ENVIRON_REQUEST) -> dict:
    server = start_server("tests.apps.basic:app", "-k", worker_class, "--root-path", "/api",
                          "--forwarded-allow-ips", "127.0.0.1")
    status, _, body = split_response(raw_exchange(server.port, request))
    assert status == 200
    environ = json.loads(body)
    assert environ["REMOTE_PORT"].isdigit()
    del environ["REMOTE_PORT"]  # a different connection each time
    return environ


@pytest.mark.parametrize("blocking_class", ["sync", "thread"])
def test_the_bridge_builds_the_environ_the_blocking_classes_build(start_server, blocking_class):
    bridged = environ_under(start_server, "asgi")
    blocking = environ_under(start_server, blocking_class)
    assert bridged["wsgi.multithread"] is True  # the bridge runs apps on threads
    if blocking_class == "sync":
        blocking["wsgi.multithread"] = True
    assert bridged == blocking
    # What the comparison covers, spelled out:
    assert (bridged["SCRIPT_NAME"], bridged["PATH_INFO"]) == ("/api", "/environ/caf\xc3\xa9 x")
    assert bridged["QUERY_STRING"] == "a=1&b=%20"
    assert bridged["HTTP_ACCEPT"] == "text/html,application/json"
    assert bridged["HTTP_COOKIE"] == "a=1; b=2"
    assert (bridged["REMOTE_ADDR"], bridged["wsgi.url_scheme"]) == ("203.0.113.9", "https")
    assert (bridged["SERVER_NAME"], bridged["SERVER_PORT"]) == ("example.com", "8443")
    assert (bridged["CONTENT_TYPE"], bridged["CONTENT_LENGTH"]) == ("text/plain", "0")
    assert bridged["wsgi.input_terminated"] is True


@pytest.mark.parametrize("target", [b"/api/environ/caf%FF", b"/environ/caf%FF", b"/environ/%C3%A9"])
def test_path_info_is_the_same_bytes_under_sync_and_asgi(start_server, target):
    request = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target
    bridged = environ_under(start_server, "asgi", request)
    blocking = environ_under(start_server, "sync", request)
    assert (bridged["SCRIPT_NAME"], bridged["PATH_INFO"]) == \
        (blocking["SCRIPT_NAME"], blocking["PATH_INFO"])


def test_a_bridged_error_answer_is_the_cores_plain_text_with_a_length(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    response = httpx.get(server.url + "/error", timeout=10)
    assert response.status_code == 500
    assert response.headers["content-length"] == str(len(response.content))
    assert response.text == "500 Internal Server Error\n"


# --- streaming both ways, memory bounded ------------------------------------------------

def test_a_large_upload_streams_through_in_bounded_memory(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    httpx.get(server.url + "/", timeout=10)
    before = worker_rss(server)
    size = 256 * 1024 * 1024
    piece = b"u" * 1024 * 1024

    def body():
        for _ in range(size // len(piece)):
            yield piece

    response = httpx.post(server.url + "/count", content=body(), timeout=120,
                          headers={"Content-Length": str(size)})
    assert response.status_code == 200
    assert response.text == str(size)
    assert worker_rss(server) - before < 10 * 1024 * 1024


def test_a_large_download_streams_out_in_bounded_memory(start_server):
    server = start_server("tests.apps.flask_app:app", "-k", "asgi")
    httpx.get(server.url + "/", timeout=10)
    before = worker_rss(server)
    received = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        while received < 256 * 1024 * 1024:
            chunk = sock.recv(1024 * 1024)
            assert chunk
            received += len(chunk)
            if received < 4 * 1024 * 1024:
                time.sleep(0.01)  # a slow reader at first: the app must wait for it
        assert worker_rss(server) - before < 10 * 1024 * 1024


def test_a_client_that_leaves_stops_an_endless_response_and_close_runs_once(start_server):
    server = start_server("tests.apps.flask_app:app", "-k", "asgi")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536)
    wait_for(lambda: httpx.get(server.url + "/endless-closed", timeout=10).text == "1",
             message="the endless generator to be closed")
    assert httpx.get(server.url + "/endless-closed", timeout=10).text == "1"


def test_write_and_exc_info_and_file_wrapper_work_through_the_bridge(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    assert httpx.get(server.url + "/write", timeout=10).text == "written and returned"
    replaced = httpx.get(server.url + "/exc-info", timeout=10)
    assert (replaced.status_code, replaced.text) == (503, "replaced by exc_info")
    assert len(httpx.get(server.url + "/file?size=300000", timeout=10).content) == 300000


def test_an_app_error_after_the_head_cuts_the_connection(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    raw = raw_exchange(server.port, b"GET /late-error HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert not body.endswith(b"0\r\n\r\n")  # never a complete chunked body
    assert httpx.get(server.url + "/", timeout=10).text == "hello"


# --- the pool -----------------------------------------------------------------------------

def test_requests_run_on_the_pools_threads(start_server):
    server = start_server("tests.apps.flask_app:app", "-k", "asgi", "--threads", "2")
    names = {httpx.get(server.url + "/thread", timeout=10).text for _ in range(20)}
    assert names and names <= {"hybrid-wsgi-0", "hybrid-wsgi-1"}


def test_a_full_pool_queues_requests_and_answers_them_all(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--threads", "2")
    with httpx.Client(timeout=30) as client:
        with concurrent.futures.ThreadPoolExecutor(8) as executor:
            answers = list(executor.map(lambda _: client.get(server.url + "/sleep?s=0.2").text,
                                        range(8)))
    assert answers == ["slept"] * 8


STALLED_UPLOADS = {
    "known length": b"Content-Length: 100000\r\n\r\n" + b"x" * 100,
    "chunked": b"Transfer-Encoding: chunked\r\n\r\n64\r\n" + b"x" * 50,
}


@pytest.mark.parametrize("upload", STALLED_UPLOADS.values(), ids=STALLED_UPLOADS.keys())
def test_stalled_uploads_as_many_as_threads_do_not_hold_up_other_requests(start_server, upload):
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--threads", "2",
                          "--body-timeout", "60")
    stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + upload)
        # Gathered on the loop, the stalled bodies hold no thread: this is answered
        # at once, not after --body-timeout.
        assert httpx.get(server.url + "/", timeout=10).text == "hello"
    finally:
        for sock in stalled:
            sock.close()


def test_a_gathered_body_reaches_the_app_whole(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    body = bytes(range(256)) * 1000
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 7000):  # pieces that arrive one by one
            piece = body[start:start + 7000]
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert split_response(raw)[0::2] == (200, body)


def test_limit_concurrency_answers_503_beyond_its_bound(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--threads", "1",
                          "--limit-concurrency", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as busy:
        busy.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the slow request to start")
        assert httpx.get(server.url + "/", timeout=10).status_code == 503
        assert b"slept" in busy.recv(65536)


def test_a_graceful_stop_lets_a_request_in_the_pool_finish(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the request to start")
        server.send(15)
        assert b"slept" in sock.recv(65536)
    assert server.proc.wait(30) == 0


def test_a_stop_past_the_graceful_timeout_names_the_request_still_running(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi", "--graceful-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /sleep?s=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the request to start")
        server.send(15)
        assert server.proc.wait(30) == 0
    assert "cutting what is still running: GET /sleep?s=60" in server.log()


# --- each request's own context ------------------------------------------------------------

def answers_on_one_connection(server, count: int, path: str = "/r") -> list[httpx.Response]:
    with httpx.Client(timeout=30) as client:
        return [client.get(f"{server.url}{path}") for _ in range(count)]


@pytest.mark.parametrize("app", ["tests.apps.context_app:app", "tests.apps.context_app:wsgi_app"])
def test_a_contextvar_set_by_one_request_is_not_seen_by_the_next(start_server, app):
    server = start_server(app, "-k", "asgi")
    assert {r.text for r in answers_on_one_connection(server, 50)} == {"unset"}


def test_a_pipelined_request_starts_in_its_own_context(start_server):
    server = start_server("tests.apps.context_app:app", "-k", "asgi")
    pipelined = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
    raw = raw_exchange(server.port, pipelined + b"GET /last HTTP/1.1\r\nHost: x\r\n"
                                                b"Connection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200") == 11
    assert raw.count(b"unset") == 11


def test_asgirefs_wsgi_wrapper_answers_every_request_on_one_connection(start_server):
    server = start_server("tests.apps.context_app:asgiref_flask", "-k", "asgi")
    assert [r.status_code for r in answers_on_one_connection(server, 300, "/")] == [200] * 300


# --- mounted in an ASGI app ------------------------------------------------------------------

def test_a_starlette_app_mounts_flask_through_the_bridge_beside_a_websocket(start_server):
    server = start_server("tests.apps.mounted_app:app", "-k", "asgi")
    assert httpx.get(server.url + "/status", timeout=10).text == "async ok"
    assert httpx.get(server.url + "/legacy/", timeout=10).text == "hello from flask"
    item = httpx.get(server.url + "/legacy/items/7?q=x", timeout=10).json()
    assert item == {"id": 7, "q": "x"}
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("hi")
        legacy = httpx.get(server.url + "/legacy/stream?n=3", timeout=10).text
        assert ws.recv(timeout=10) == "echo: hi"
    assert legacy == "line 0\nline 1\nline 2\n"


def test_a_websocket_to_a_bare_wsgi_app_is_refused(start_server):
    server = start_server("tests.apps.basic:app", "-k", "asgi")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_the_docs_mounting_example_serves_as_it_says(start_server, tmp_path):
    page = (ROOT / "docs" / "api.md").read_text()
    section = page[page.index("## `WSGIBridge`"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", 10)]
    (tmp_path / "main.py").write_text(code)
    server = start_server("main:app", "-k", "asgi")
    assert httpx.get(server.url + "/legacy/", timeout=10).text == "hello from flask"
    assert httpx.get(server.url + "/status", timeout=10).text == "async ok"
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
