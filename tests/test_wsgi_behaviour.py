"""Black-box PEP 3333 behaviour through real sockets, for every worker class
that serves WSGI (each registered class joins automatically)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import psutil
import pytest

from tests.conftest import WSGI_CLASSES, Server, launch, raw_exchange, split_response, wait_for

APP = "tests.apps.basic:app"


@pytest.fixture(scope="module", params=WSGI_CLASSES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    srv = launch(APP, "-k", request.param, "-w", "1", workdir=tmp_path_factory.mktemp("srv"))
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture(scope="module")
def client(server: Server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def environ_of(client: httpx.Client, target: str = "/environ", **kwargs) -> dict:
    response = client.get(target, **kwargs)
    assert response.status_code == 200
    return response.json()


# --- the environ ---------------------------------------------------------------

def test_serves_a_wsgi_app(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "hello"
    assert response.headers["server"] == "hybrid"
    assert "date" in response.headers


def test_environ_has_request_line_parts(client, server):
    env = environ_of(client, "/environ/a%20b?x=1&y=%20z")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/environ/a b"
    assert env["QUERY_STRING"] == "x=1&y=%20z"
    assert env["RAW_URI"] == "/environ/a%20b?x=1&y=%20z"
    assert env["SCRIPT_NAME"] == ""
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_path_info_is_utf8_bytes_decoded_as_latin1(client):
    env = environ_of(client, "/environ/caf%C3%A9")
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9"


def test_environ_names_server_and_client(client, server):
    env = environ_of(client)
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False


def test_request_headers_become_http_variables(client):
    env = environ_of(client, headers={"X-Custom-Thing": "value one"})
    assert env["HTTP_X_CUSTOM_THING"] == "value one"


def test_repeated_header_fields_are_comma_joined(server):
    raw = raw_exchange(server.port, b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Many: a\r\n"
                                    b"X-Many: b\r\nConnection: close\r\n\r\n")
    status, _, body = split_response(raw)
    assert status == 200
    assert json.loads(body)["HTTP_X_MANY"] == "a,b"


def test_header_with_underscore_is_dropped(client):
    env = environ_of(client, headers={"X_Spoofed": "1", "X-Real": "2"})
    assert "HTTP_X_SPOOFED" not in env
    assert env["HTTP_X_REAL"] == "2"


def test_content_type_and_length_have_no_http_prefix(client):
    response = client.post("/environ", content=b"abc", headers={"Content-Type": "text/x-test"})
    env = response.json()
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_absolute_form_target_gives_path_and_query(server):
    raw = raw_exchange(server.port, b"GET http://example.com/environ/abs?q=1 HTTP/1.1\r\n"
                                    b"Host: example.com\r\nConnection: close\r\n\r\n")
    status, _, body = split_response(raw)
    env = json.loads(body)
    assert status == 200
    assert env["PATH_INFO"] == "/environ/abs"
    assert env["QUERY_STRING"] == "q=1"


# --- wsgi.input ----------------------------------------------------------------

BODY = b"first line\nsecond line\nthird"


@pytest.mark.parametrize("mode, expected", [
    ("read", BODY),
    ("readline", b"first line\n|second line\n|third"),
    ("lines", b"first line\n|second line\n|third"),
    ("readlines", b"first line\n|second line\n|third"),
    ("7", b"first l|ine\nsec|ond lin|e\nthird"),
])
def test_wsgi_input_returns_exactly_the_body(client, mode, expected):
    response = client.post(f"/echo?mode={mode}", content=BODY)
    assert response.status_code == 200
    assert response.content == expected


def test_large_body_arrives_whole(client):
    body = bytes(range(256)) * 4096  # 1 MiB
    response = client.post("/echo", content=body)
    assert response.content == body


def test_chunked_request_body_is_dechunked(server):
    raw = raw_exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                    b"Connection: close\r\n\r\n"
                                    b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert body == b"hello world"


def test_a_body_of_many_tiny_chunks_costs_the_worker_in_proportion(server, client):
    """100,000 one-byte chunks in one go: every read of wsgi.input is O(1), not a
    scan of what is still queued (that took a whole worker 17 s of CPU)."""
    chunks = 100_000
    worker = psutil.Process(int(client.get("/pid").text))
    before = worker.cpu_times()
    raw = raw_exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                    b"Connection: close\r\n\r\n" + b"1\r\na\r\n" * chunks + b"0\r\n\r\n",
                       timeout=60)
    after = worker.cpu_times()
    assert split_response(raw)[2] == b"a" * chunks
    busy = (after.user + after.system) - (before.user + before.system)
    assert busy < 5.0, f"{busy:.1f} s of CPU for a {chunks}-chunk body"


def test_an_app_that_wraps_a_failed_body_read_gets_the_clients_status_not_500(server):
    raw = raw_exchange(server.port, b"POST /read-and-wrap HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: 100\r\n\r\n" + b"x" * 10, half_close=True)
    assert split_response(raw)[0] == 400
    assert "Error handling request POST /read-and-wrap" not in server.log()


def test_truncated_body_is_never_handed_over_as_complete(server):
    raw = raw_exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                                    b"only ten b", half_close=True)
    assert split_response(raw)[0] == 400


def test_expect_100_continue_is_answered_when_the_app_reads(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    status, _, body = split_response(rest)
    assert status == 200
    assert body == b"hello"


# --- the response ----------------------------------------------------------------

def test_single_piece_response_gets_content_length(client):
    response = client.get("/")
    assert response.headers["content-length"] == "5"


def test_streamed_response_is_chunked_on_http11(client):
    response = client.get("/stream?n=3")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "piece 0\npiece 1\npiece 2\n"


def test_streamed_response_to_http10_is_delimited_by_close(server):
    raw = raw_exchange(server.port, b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert "transfer-encoding" not in headers
    assert body == b"piece 0\npiece 1\n"


def test_write_callable_output_comes_first(client):
    assert client.get("/write").text == "written and returned"


def test_app_content_length_is_kept(client):
    response = client.get("/content-length")
    assert response.headers["content-length"] == "5"
    assert response.content == b"12345"


@pytest.mark.parametrize("size", [0, 100_000, 3_000_001])
def test_file_wrapper_sends_the_whole_file(client, size):
    response = client.get(f"/file?size={size}")
    expected = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert response.status_code == 200
    assert response.content == expected


def test_head_response_has_headers_but_no_body(server):
    raw = raw_exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert headers["content-length"] == "5"
    assert body == b""


def test_head_of_streamed_response_has_no_chunked_framing(server):
    raw = raw_exchange(server.port, b"HEAD /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert body == b""


@pytest.mark.parametrize("code", [204, 304])
def test_bodiless_statuses_send_no_body(server, code):
    raw = raw_exchange(server.port, b"GET /status?code=%d HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n" % code)
    status, headers, body = split_response(raw)
    assert status == code
    assert body == b""
    assert "transfer-encoding" not in headers


def test_close_of_the_app_iterable_is_called(client):
    before = int(client.get("/closed-count").text)
    assert client.get("/closing").text == "ab"
    assert int(client.get("/closed-count").text) == before + 1


def test_start_response_with_exc_info_replaces_the_status(client):
    response = client.get("/exc-info")
    assert response.status_code == 503
    assert response.text == "replaced by exc_info"


def test_empty_first_piece_does_not_send_an_empty_chunk(client):
    assert client.get("/lazy-start").text == "after an empty piece"


def test_empty_piece_does_not_send_the_head(client):
    # So start_response(exc_info) after it may still replace the status (PEP 3333).
    response = client.get("/empty-then-error")
    assert response.status_code == 500
    assert response.text == "error page"


def test_sys_exit_in_the_app_is_a_500_and_the_worker_lives_on(client):
    pid = client.get("/pid").text
    assert client.get("/sys-exit").status_code == 500
    assert client.get("/pid").text == pid


def test_a_base_exception_from_the_app_is_a_500_and_every_thread_serves_on(client):
    pid = client.get("/pid").text
    for _ in range(8):  # more than any pool's threads
        assert client.get("/base-exception").status_code == 500
    assert client.get("/pid").text == pid


def test_a_file_wrapper_whose_first_read_fails_is_a_500(client):
    assert client.get("/file-fails").status_code == 500


def test_conflicting_content_lengths_from_the_app_are_a_500(client):
    assert client.get("/two-lengths").status_code == 500


def test_interim_status_as_final_answer_is_a_500(client):
    assert client.get("/status?code=103").status_code == 500


def test_a_status_of_zero_is_a_500(client):
    assert client.get("/status?code=000").status_code == 500


@pytest.mark.slow
def test_slow_reader_gets_the_whole_response(server):
    size = 20_000_000  # more than the socket buffers hold: the server must wait to send
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /file?size=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
        time.sleep(1.5)  # longer than any read timeout the server used for the head
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    assert received > size


def test_wsgi_errors_goes_to_the_error_log(client, server):
    client.get("/errors-stream")
    wait_for(lambda: "hello from wsgi.errors" in server.log(), timeout=5, message="the log line")


# --- failures --------------------------------------------------------------------

def test_app_exception_gives_500_and_the_worker_lives_on(client, server):
    pid = client.get("/pid").text
    response = client.get("/error")
    assert response.status_code == 500
    assert client.get("/pid").text == pid
    assert "the app failed on purpose" in server.log()


def test_exception_after_the_response_started_cuts_the_connection(server):
    raw = raw_exchange(server.port, b"GET /late-error HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert b"first piece" in body
    assert not body.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees it is cut


def test_response_splitting_header_is_refused_with_500(server):
    raw = raw_exchange(server.port, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 500
    assert b"evil" not in raw


def test_malformed_request_gets_400_and_close(server):
    raw = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    status, headers, _ = split_response(raw)
    assert status == 400
    assert headers["connection"] == "close"


def test_overlong_request_line_gets_414(server):
    raw = raw_exchange(server.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert split_response(raw)[0] == 414


def test_too_many_header_fields_get_431(server):
    fields = b"".join(b"X-%d: y\r\n" % i for i in range(150))
    raw = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert split_response(raw)[0] == 431


def test_server_keeps_serving_after_bad_requests(client, server):
    pid = client.get("/pid").text
    raw = raw_exchange(server.port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    assert split_response(raw)[0] == 400
    assert client.get("/pid").text == pid


# --- other apps and addresses ---------------------------------------------------

@pytest.fixture(scope="module")
def flask_server(tmp_path_factory):
    srv = launch("tests.apps.flask_app:app", workdir=tmp_path_factory.mktemp("flask"))
    yield srv
    assert srv.stop() == 0, srv.log()


def test_serves_a_flask_app(flask_server):
    with httpx.Client(base_url=flask_server.url, timeout=10) as http:
        assert http.get("/").text == "hello from flask"
        assert http.get("/items/7?q=x").json() == {"id": 7, "q": "x"}
        posted = http.post("/json", json={"a": [1, 2]})
        assert posted.json() == {"received": {"a": [1, 2]}, "path": "/json"}


def test_root_path_becomes_script_name(start_server):
    srv = start_server(APP, "--root-path", "/api")
    env = httpx.get(srv.url + "/api/environ/x", timeout=10).json()
    assert env["SCRIPT_NAME"] == "/api"
    assert env["PATH_INFO"] == "/environ/x"


def test_serves_on_a_unix_socket(tmp_path, start_server):
    path = tmp_path / "hybrid.sock"
    srv = start_server(APP, "--bind", f"unix:{path}", ready=False)
    wait_for(path.exists, message="the unix socket")
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://localhost", timeout=10) as http:
        assert wait_for(lambda: http.get("/").text == "hello", message="a response")
    assert srv.accepts()
