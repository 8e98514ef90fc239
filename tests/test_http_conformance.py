"""RFC 9110 / 9112 through real sockets, for every worker class: exact bytes
in, status and connection state out. A rejected request must never reach
the app, and the worker must go on serving.

What the core decides (which bytes are refused, and with which status) is
pinned by its own tests, tests/test_protocol.py above all, every case however
the bytes are split. Here each driver is checked once per status it answers,
and wherever its own code is at work: timeouts, reads spread over packets,
100-continue, an unread body, pipelining, a body that fails while the app
reads it, a half-close."""

from __future__ import annotations

import socket

import httpx
import psutil
import pytest

from tests.conftest import (
    APP_FOR_INTERFACE,
    app_for,
    launch,
    raw_exchange,
    read_until_closed,
    split_response,
)
from hybrid.workers import WORKER_CLASSES, load_class

HEADER_TIMEOUT = 1.5


# Every class with the app it serves natively, and the asgi class with the
# WSGI app (through the bridge).
SERVINGS = [(name, app_for(name)) for name in sorted(WORKER_CLASSES)]
SERVINGS.append(("asgi", APP_FOR_INTERFACE["wsgi"]))


@pytest.fixture(scope="module", params=SERVINGS, ids=[f"{k}-{a.split(':')[0].split('.')[-1]}"
                                                      for k, a in SERVINGS])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    worker_class, app = request.param
    srv = launch(app, "-k", worker_class, "-w", "1",
                 "--header-timeout", str(HEADER_TIMEOUT),
                 "--body-timeout", "1.5", "--limit-request-body", "100000",
                 workdir=tmp_path_factory.mktemp("conformance"))
    srv.worker_class = worker_class
    srv.bridged = worker_class == "asgi" and app == APP_FOR_INTERFACE["wsgi"]
    yield srv
    assert srv.stop() == 0, srv.log()


def exchange(server, data: bytes, **kwargs) -> tuple[int, dict[str, str], bytes]:
    return split_response(raw_exchange(server.port, data, **kwargs))


def hits(server) -> int:
    return int(httpx.get(server.url + "/hits", timeout=10).text)


def worker_pid(server) -> str:
    return httpx.get(server.url + "/pid", timeout=10).text


def refused(server, data: bytes) -> int:
    """Send `data`; check it was answered with an error, closed, and never reached the app."""
    before, pid = hits(server), worker_pid(server)
    status, headers, _ = exchange(server, data)
    assert status >= 400
    assert headers.get("connection") == "close"
    assert hits(server) == before, "a refused request reached the app"
    assert worker_pid(server) == pid, "the worker did not survive"
    return status


H = b"Host: example.com\r\n"


def post(*fields: bytes, body: bytes = b"", target: bytes = b"/hit", version: bytes = b"1.1") -> bytes:
    return b"POST " + target + b" HTTP/" + version + b"\r\n" + H + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


# --- framing, the header block and the request line -----------------------------------
# (The 400s of a bad framing come with the smuggling below.)

def test_an_unsupported_transfer_coding_gets_501(server):
    assert refused(server, post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n")) == 501


def test_a_malformed_head_gets_400(server):
    assert refused(server, b"GET /hit HTTP/1.1\r\nHost : x\r\n\r\n") == 400


def test_a_method_llhttp_does_not_know_reaches_the_app_by_its_name(server):
    status, _, body = exchange(server, b"BREW /method HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert (status, body) == (200, b"BREW")


def test_another_http_version_gets_505(server):
    assert refused(server, b"GET /hit HTTP/1.2\r\nHost: x\r\n\r\n") == 505


def test_absolute_form_is_served_with_its_path(server):
    status, _, body = exchange(server, b"GET http://example.com/path/abs?x=1 HTTP/1.1\r\n" + H +
                                       b"Connection: close\r\n\r\n")
    assert (status, body) == (200, b"/path/abs")


def test_http10_request_is_served(server):
    status, _, body = exchange(server, b"GET / HTTP/1.0\r\n\r\n")
    assert (status, body) == (200, b"hello")


# --- limits ---------------------------------------------------------------------------

def test_overlong_target_gets_414(server):
    assert refused(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n") == 414


def test_too_many_fields_get_431(server):
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    assert refused(server, b"GET /hit HTTP/1.1\r\n" + H + fields + b"\r\n") == 431


def test_header_block_spread_over_packets_is_bounded(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hit HTTP/1.1\r\n" + H)
        try:
            for i in range(80):
                sock.sendall(b"X-%d: %s\r\n" % (i, b"v" * 1000))
        except OSError:
            pass  # the server already answered and closed
        response = sock.recv(65536)
    assert split_response(response)[0] == 431


def test_body_over_the_limit_gets_413_before_the_app(server):
    assert refused(server, post(b"Content-Length: 100001", body=b"x" * 100001)) == 413


# --- timeouts -------------------------------------------------------------------------

@pytest.mark.slow
def test_dripping_header_lines_are_cut_off(server):
    """A client sending one header line every 0.3 s never gets to finish its head."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hit HTTP/1.1\r\n" + H)
        answer = b""
        for i in range(40):  # 12 s of dripping, far beyond --header-timeout
            try:
                sock.sendall(b"X-Drip-%d: v\r\n" % i)
            except OSError:
                break
            sock.settimeout(0.3)
            try:
                answer = sock.recv(65536)
            except socket.timeout:
                continue
            break
    assert split_response(answer)[0] == 408


@pytest.mark.slow
def test_client_stalling_mid_head_gets_408_and_close(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hit HTTP/1.1\r\nHo")
        answer = sock.recv(65536)
        assert split_response(answer)[0] == 408
        assert sock.recv(65536) == b""


@pytest.mark.slow
def test_stalled_body_fails_the_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post(b"Content-Length: 10", target=b"/echo", body=b"abc"))
        answer = sock.recv(65536)
    status = split_response(answer)[0]
    assert status == 408


def test_truncated_body_then_half_close_is_never_a_success(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 100", target=b"/echo", body=b"x" * 10),
                       half_close=True)
    assert not raw.startswith(b"HTTP/1.1 2")


# --- message semantics ------------------------------------------------------------------

def test_100_continue_is_not_sent_to_http10(server):
    data = post(b"Content-Length: 5", b"Expect: 100-continue", target=b"/echo", body=b"hello",
                version=b"1.0")
    raw = raw_exchange(server.port, data)
    assert b"100 Continue" not in raw
    assert split_response(raw)[2] == b"hello"


def test_100_continue_is_not_sent_when_the_app_ignores_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post(b"Content-Length: 5", b"Expect: 100-continue", target=b"/"))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_100_continue_is_never_sent_once_the_response_started(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post(b"Content-Length: 3", b"Expect: 100-continue", b"Connection: close",
                          target=b"/body-after-start"))
        raw = b""
        while b"started\n" not in raw:
            raw += sock.recv(65536)
        sock.sendall(b"abc")
        while chunk := sock.recv(65536):
            raw += chunk
    assert b"100 Continue" not in raw
    assert raw.endswith(b"abc\r\n0\r\n\r\n")


def gathers(server) -> bool:
    """The class waits for a small body before the app runs (--gather-body): the
    thread class's poller, and the bridge's loop."""
    return server.worker_class == "thread" or server.bridged


def test_unread_short_body_is_skipped_and_the_connection_kept(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        body = b"b" * 1000
        sock.sendall(post(b"Content-Length: 1000", target=b"/ignore-body",
                          body=body if gathers(server) else b""))
        first = b""
        while not first.endswith(b"ignored"):  # answered before any of the body came
            first += sock.recv(65536)
        sock.sendall((b"" if gathers(server) else body)
                     + b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        second = b""
        while chunk := sock.recv(65536):
            second += chunk
    if load_class(server.worker_class).keeps_alive:
        assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first
        assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"hello")
    else:
        assert b"connection: close" in first and second == b""


def test_a_malformed_request_after_a_skipped_body_gets_its_400(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        body = b"0123456789"
        sock.sendall(post(b"Content-Length: 10", target=b"/ignore-body",
                          body=body if gathers(server) else b""))
        raw = b""
        while not raw.endswith(b"ignored"):
            raw += sock.recv(65536)
        sock.sendall((b"" if gathers(server) else body) + b"G@T / HTTP/1.1\r\n" + H + b"\r\n")
        while chunk := sock.recv(65536):
            raw += chunk
    if load_class(server.worker_class).keeps_alive:
        assert raw.count(b"HTTP/1.1 200 ") == 1 and b"HTTP/1.1 400 " in raw
    else:
        assert raw.endswith(b"ignored")


def test_an_upgrade_answered_before_its_body_closes_the_connection(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sent = b"0123456789" if gathers(server) else b"01234"
        sock.sendall(post(b"Content-Length: 10", b"Connection: Upgrade", b"Upgrade: h2c",
                          target=b"/ignore-body", body=sent))
        first = b""
        while not first.endswith(b"ignored"):
            first += sock.recv(65536)
        sock.sendall(b"0123456789"[len(sent):]
                     + b"GET /path/next HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    if gathers(server):  # the body was whole before the app ran: nothing left unread
        assert rest.endswith(b"/path/next")
    else:  # an Upgrade answered before all its body came closes (persistence.may_persist)
        assert b"connection: close" in first and rest == b""


def test_answer_to_a_held_back_body_closes_and_says_so(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 10", b"Expect: 100-continue",
                                         target=b"/ignore-body"))
    status, headers, body = split_response(raw)
    assert (status, body, headers["connection"]) == (200, b"ignored", "close")
    assert b"100 Continue" not in raw


def test_answer_to_an_unread_chunked_upload_closes_and_says_so(server):
    raw = raw_exchange(server.port, post(b"Transfer-Encoding: chunked", target=b"/ignore-body",
                                         body=b"5\r\nhello\r\n"))
    status, headers, body = split_response(raw)
    if gathers(server):  # (the app is never called: the rest of the body never came)
        assert (status, headers["connection"]) == (408, "close")
    else:
        assert (status, body, headers["connection"]) == (200, b"ignored", "close")


def test_answer_to_a_large_unread_upload_says_close_and_reaches_the_client(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # More than is skipped (under --limit-request-body); the rest never comes.
        sock.sendall(post(b"Content-Length: 99999", target=b"/ignore-body"))
        sock.sendall(b"u" * 90000)
        raw = b""
        while chunk := sock.recv(65536):  # a reset here would be the RST of a hasty close
            raw += chunk
    status, headers, body = split_response(raw)
    if gathers(server):  # (the app is never called: the rest of the body never came)
        assert (status, headers["connection"]) == (408, "close")
    else:
        assert (status, body, headers["connection"]) == (200, b"ignored", "close")


def test_100_continue_goes_to_the_pipelined_request_that_expects_it(server):
    expecting = post(b"Content-Length: 5", b"Expect: 100-continue", b"Connection: close",
                     target=b"/echo")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post(b"Content-Length: 5", target=b"/echo", body=b"hello") + expecting)
        raw = b""
        while b"hello" not in raw:  # the first answer, whole
            raw += sock.recv(65536)
        first_end = raw.index(b"hello")
        assert b"100 Continue" not in raw[:first_end], "the first request got the second's 100"
        if not load_class(server.worker_class).keeps_alive:
            assert b"connection: close" in raw[:first_end]
            return
        while b"100 Continue" not in raw[first_end:]:
            raw += sock.recv(65536)
        sock.sendall(b"world")
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.count(b"HTTP/1.1 200 ") == 2 and raw.endswith(b"world")


def test_a_pipelined_expectation_does_not_close_the_request_before_it(server):
    data = (b"GET /path/first HTTP/1.1\r\n" + H + b"\r\n" +
            post(b"Content-Length: 5", b"Expect: 100-continue", b"Connection: close",
                 target=b"/echo"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        raw = b""
        while b"100 Continue" not in raw and not raw.endswith(b"/path/first"):
            raw += sock.recv(65536)
        if not load_class(server.worker_class).keeps_alive:
            assert b"connection: close" in raw
            return
        while b"100 Continue" not in raw:
            raw += sock.recv(65536)
        first = raw[:raw.index(b"HTTP/1.1 100")]
        assert b"connection: close" not in first
        sock.sendall(b"hello")
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.count(b"HTTP/1.1 200 ") == 2 and raw.endswith(b"hello")


def test_no_100_continue_when_the_body_came_without_waiting(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 5", b"Expect: 100-continue",
                                         b"Connection: close", target=b"/echo", body=b"hello"))
    assert b"100 Continue" not in raw and split_response(raw)[2] == b"hello"


def test_pipelined_requests(server):
    data = (b"GET /path/first HTTP/1.1\r\n" + H + b"\r\n"
            b"GET /path/second HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    raw = raw_exchange(server.port, data)
    if load_class(server.worker_class).keeps_alive:
        assert raw.count(b"HTTP/1.1 200 ") == 2
        assert raw.index(b"/path/first") < raw.index(b"/path/second")
    else:
        # One request per connection: the first is answered with close, the rest dropped.
        assert raw.count(b"HTTP/1.1 200 ") == 1
        assert b"/path/first" in raw and b"connection: close" in raw


# --- request smuggling --------------------------------------------------------------------

SMUGGLED = b"GET /hit HTTP/1.1\r\n" + H + b"\r\n"


def test_a_smuggling_attempt_is_refused_and_its_request_never_served(server):
    # CL.TE (the other smuggling framings: test_protocol.py's SMUGGLING).
    data = post(b"Content-Length: 6", b"Transfer-Encoding: chunked", target=b"/",
                body=b"0\r\n\r\n") + SMUGGLED
    before = hits(server)
    status, headers, _ = exchange(server, data)
    assert status == 400
    assert headers["connection"] == "close"
    assert hits(server) == before


def test_request_inside_a_chunked_body_is_only_a_body(server):
    before = hits(server)
    data = post(b"Transfer-Encoding: chunked", b"Connection: close", target=b"/echo",
                body=b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n")
    status, _, body = exchange(server, data)
    assert (status, body) == (200, SMUGGLED)
    assert hits(server) == before


# --- a body that fails while the app reads it -------------------------------------------
# The app behind /read-then-answer reads its body, takes a failed read (or an ASGI
# http.disconnect) for the end of it, and answers: whatever the path (streamed to an
# ASGI app, gathered by the thread class, read through the bridge), that answer must
# never reach the client.

APP_ANSWER = b"the app's answer"

# The body fails before any of its data (a bad size) or after all of it (a bad trailer):
# which error it is, test_protocol.py pins.
MALFORMED_BODIES = {
    "size zz": b"zz\r\nhello\r\n0\r\n\r\n",
    "Content-Length in the trailer": b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
}


@pytest.mark.parametrize("chunks", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_a_malformed_body_gets_400_never_the_apps_answer(server, chunks):
    raw = raw_exchange(server.port, post(b"Transfer-Encoding: chunked", target=b"/read-then-answer",
                                         body=chunks))
    status, headers, _ = split_response(raw)
    assert status == 400
    assert headers["connection"] == "close"
    assert APP_ANSWER not in raw


def test_a_malformed_body_sent_byte_by_byte_gets_400_never_the_apps_answer(server):
    data = post(b"Transfer-Encoding: chunked", target=b"/read-then-answer",
                body=b"5\r\nhello\r\nzz\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in data:
            sock.sendall(bytes([byte]))
        raw = read_until_closed(sock)
    assert split_response(raw)[0] == 400
    assert APP_ANSWER not in raw


def test_a_body_that_failed_before_the_app_ran_is_refused_even_if_the_app_ignores_it(server):
    # (The whole request in one piece: its body's error is parsed before the app runs.)
    raw = raw_exchange(server.port, post(b"Transfer-Encoding: chunked", target=b"/ignore-body",
                                         body=b"zz\r\nhello\r\n0\r\n\r\n"))
    assert split_response(raw)[0] == 400
    assert b"ignored" not in raw


def test_a_body_cut_short_by_a_half_close_gets_400_never_the_apps_answer(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 100", target=b"/read-then-answer",
                                         body=b"x" * 10), half_close=True)
    assert split_response(raw)[0] == 400
    assert APP_ANSWER not in raw


@pytest.mark.slow
def test_a_stalled_body_gets_408_never_the_apps_answer(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 100000", target=b"/read-then-answer",
                                         body=b"x" * 100))
    assert split_response(raw)[0] == 408
    assert APP_ANSWER not in raw


# --- a client that has finished sending ---------------------------------------------

def test_a_complete_request_then_a_half_close_is_answered(server):
    raw = raw_exchange(server.port, post(b"Content-Length: 5", target=b"/echo", body=b"hello"),
                       half_close=True)
    assert split_response(raw)[0::2] == (200, b"hello")


def test_a_slow_answer_after_a_half_close_is_still_sent(server):
    raw = raw_exchange(server.port, b"GET /sleep?s=0.3 HTTP/1.1\r\n" + H + b"\r\n", half_close=True)
    assert split_response(raw)[0::2] == (200, b"slept")


def test_pipelined_requests_then_a_half_close_are_all_answered(server):
    raw = raw_exchange(server.port, b"GET /sleep?s=0.2 HTTP/1.1\r\n" + H + b"\r\n"
                                    b"GET /method HTTP/1.1\r\n" + H + b"\r\n", half_close=True)
    if load_class(server.worker_class).keeps_alive:
        assert raw.count(b"HTTP/1.1 200 ") == 2
        assert raw.endswith(b"GET")
    else:  # one request per connection, answered with close
        assert raw.count(b"HTTP/1.1 200 ") == 1
        assert raw.endswith(b"slept")


def test_connections_that_come_and_go_leave_no_memory_behind(server):
    # Each connection's parser is released as it closes (llhttp's parser refers
    # back to ours: a cycle the compiled build's GC never freed, about 2 KB a
    # connection). Memory, not time: 3,000 connections would leave 6 MB behind.
    worker = psutil.Process(int(worker_pid(server)))

    def come_and_go(count: int) -> None:
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass

    come_and_go(300)  # (the allocator's arenas and the caches settle first)
    before = worker.memory_info().rss
    come_and_go(3000)
    assert worker.memory_info().rss - before < 2_000_000
