"""The arbiter's control endpoint (--control-bind): /livez, /readyz and
/metrics for every worker class, and the Kubernetes-aware stop
(--shutdown-delay)."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import APP_FOR_INTERFACE, free_port, raw_exchange, wait_for

# Every class with the app it serves natively, and asgi with a WSGI app (the bridge).
SERVINGS = [("sync", APP_FOR_INTERFACE["wsgi"]), ("thread", APP_FOR_INTERFACE["wsgi"]),
            ("asgi", APP_FOR_INTERFACE["asgi"]), ("asgi", APP_FOR_INTERFACE["wsgi"])]
IDS = ["sync", "thread", "asgi", "asgi-bridge"]


def controlled(start_server, app: str, *flags: str, ready: bool = True, **kwargs):
    port = free_port()
    server = start_server(app, "--control-bind", f"127.0.0.1:{port}", *flags, ready=ready,
                          **kwargs)
    server.control = f"http://127.0.0.1:{port}"
    return server


def probe(server, path: str) -> httpx.Response:
    return httpx.get(server.control + path, timeout=5)


def wait_ready(server) -> None:
    wait_for(lambda: _status(server, "/readyz") == 200, message="/readyz to answer 200")


def _status(server, path: str) -> int | None:
    try:
        return probe(server, path).status_code
    except httpx.TransportError:
        return None  # not listening yet


def request_counts(server) -> dict[tuple[str, str, str], float]:
    """hybrid_requests_total by (worker class, method, status class), both protocols'."""
    text = probe(server, "/metrics").text
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "hybrid_requests":
            for sample in family.samples:
                labels = sample.labels
                key = labels["worker_class"], labels["method"], labels["status"]
                counts[key] = counts.get(key, 0) + sample.value
    return counts


@pytest.fixture(params=SERVINGS, ids=IDS)
def serving(request):
    return request.param


# --- the probes --------------------------------------------------------------------------

def test_livez_and_readyz_answer_200_once_the_workers_serve(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class, "-w", "2")
    wait_ready(server)
    assert probe(server, "/livez").status_code == 200
    assert probe(server, "/readyz").text == "ready: 2 worker(s) serving\n"


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_readyz_is_503_while_the_app_still_imports(start_server, worker_class):
    server = controlled(start_server, "tests.apps.slow_import:app", "-k", worker_class,
                        ready=False, env={"SLOW_IMPORT": "3"})
    wait_for(lambda: _status(server, "/readyz") is not None, message="the control port")
    booting = probe(server, "/readyz")
    assert booting.status_code == 503
    assert booting.text == "0 of 1 worker(s) serving\n"
    assert probe(server, "/livez").status_code == 200  # loading is not hanging
    wait_ready(server)
    assert httpx.get(server.url + "/", timeout=10).text == "loaded at last"


def test_livez_fails_when_every_worker_is_stopped_past_the_timeout(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class, "--timeout", "2")
    wait_ready(server)
    (pid,) = server.worker_pids()
    os.kill(pid, signal.SIGSTOP)
    seen: list[httpx.Response] = []

    def unhealthy() -> bool:
        seen.append(probe(server, "/livez"))
        return seen[-1].status_code == 503

    try:
        wait_for(unhealthy, message="/livez to answer 503")
        assert seen[-1].text == "no worker has beaten within --timeout (2 s)\n"
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    wait_ready(server)  # the arbiter replaced it


def test_the_control_port_answers_while_every_worker_is_busy(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"], "-k", "sync")
    wait_ready(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as busy:
        busy.sendall(b"GET /sleep?s=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the slow request")
        assert probe(server, "/livez").status_code == 200
        assert probe(server, "/readyz").status_code == 200
        assert probe(server, "/metrics").status_code == 200
        assert b"slept" in busy.recv(65536)


def test_other_paths_on_the_control_port_are_404(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"])
    wait_ready(server)
    assert probe(server, "/").status_code == 404
    assert probe(server, "/livez/extra").status_code == 404


def test_a_slow_client_on_the_control_port_does_not_stall_the_others(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"])
    wait_ready(server)
    port = int(server.control.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /livez HTTP/1.1\r\nHo")  # and nothing more
        assert probe(server, "/livez").status_code == 200
        assert httpx.get(server.url + "/", timeout=10).status_code == 200


def test_a_malformed_request_on_the_control_port_is_a_400(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"])
    wait_ready(server)
    port = int(server.control.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nBad Header\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    assert probe(server, "/livez").status_code == 200


# --- metrics -----------------------------------------------------------------------------

def test_metrics_count_exactly_the_requests_sent(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class)
    wait_ready(server)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(25):
            assert client.get("/").status_code == 200
        for _ in range(7):
            assert client.get("/no-such-route").status_code == 404
        for _ in range(3):
            client.post("/echo", content=b"hello")
    counts = request_counts(server)
    assert counts == {(worker_class, "GET", "2xx"): 25, (worker_class, "GET", "4xx"): 7,
                      (worker_class, "POST", "2xx"): 3}


def test_counts_survive_a_worker_that_is_replaced(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class)
    wait_ready(server)
    for _ in range(10):
        httpx.get(server.url + "/", timeout=10)
    # (A worker counts a request once its answer is out: the client may see the
    # answer a moment before the count, and the kill must not fall in between.)
    wait_for(lambda: request_counts(server) == {(worker_class, "GET", "2xx"): 10},
             message="the ten requests counted")
    (first,) = server.worker_pids()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: server.worker_pids() not in (set(), {first}), message="a new worker")
    wait_ready(server)
    for _ in range(5):
        httpx.get(server.url + "/", timeout=10)
    assert request_counts(server) == {(worker_class, "GET", "2xx"): 15}
    families = {f.name: f for f in text_string_to_metric_families(probe(server, "/metrics").text)}
    restarts = {s.labels["reason"]: s.value for s in families["hybrid_worker_restarts"].samples}
    assert restarts["crash"] == 1


def test_metrics_describe_the_workers_and_the_build(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"], "-k", "thread", "-w", "2")
    wait_ready(server)
    httpx.get(server.url + "/", timeout=10)
    families = {f.name: f for f in text_string_to_metric_families(probe(server, "/metrics").text)}
    pids = {int(s.labels["pid"]) for s in families["hybrid_worker_resident_memory_bytes"].samples}
    assert pids == server.worker_pids()
    assert all(s.value > 0 for s in families["hybrid_worker_resident_memory_bytes"].samples)
    (build,) = families["hybrid_build_info"].samples
    assert build.value == 1 and build.labels["version"]
    histogram = {s.labels["le"]: s.value for s in families["hybrid_request_duration_seconds"].samples
                 if s.name.endswith("_bucket")}
    assert histogram["+Inf"] == 1
    assert families["hybrid_arbiter_uptime_seconds"].samples[0].value > 0


# --- the stop an orchestrator wants ----------------------------------------------------

def test_term_with_a_shutdown_delay_turns_readyz_503_and_keeps_serving(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class, "--shutdown-delay", "2")
    wait_ready(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET /sleep?s=1.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the slow request")
        server.send(signal.SIGTERM)
        wait_for(lambda: _status(server, "/readyz") == 503, message="/readyz to answer 503")
        assert probe(server, "/readyz").text.startswith("shutting down")
        assert httpx.get(server.url + "/", timeout=10).status_code == 200  # still served
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"slept" in answer
    assert server.proc.wait(30) == 0
    assert "--shutdown-delay is over: stopping gracefully" in server.log()


def test_a_second_term_during_the_shutdown_delay_stops_at_once(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"], "--shutdown-delay", "60")
    wait_ready(server)
    server.send(signal.SIGTERM)
    wait_for(lambda: _status(server, "/readyz") == 503, message="/readyz to answer 503")
    server.send(signal.SIGTERM)
    assert server.proc.wait(30) == 0


# --- access logs machines can read -----------------------------------------------------

def json_log_lines(server) -> list[dict]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.parametrize("serving", SERVINGS, ids=IDS)
def test_json_access_lines_are_the_same_under_every_class(start_server, serving):
    worker_class, app = serving
    server = start_server(app, "-k", worker_class, "--access-logfile", "-",
                          "--access-logformat", "json")
    httpx.get(server.url + "/path/a%20b?x=1&y=%22", timeout=10,
              headers={"User-Agent": 'evil" 200 "x', "Referer": "https://example.com/",
                       "X-Request-ID": "req-42"})
    wait_for(lambda: json_log_lines(server), message="the access log line")
    (line,) = json_log_lines(server)
    assert set(line) == {"time", "method", "protocol", "path", "query", "status", "bytes",
                         "duration", "client", "user_agent", "referer", "request_id", "pid"}
    assert datetime.datetime.fromisoformat(line["time"]).tzinfo is not None
    assert isinstance(line["duration"], float)
    assert line["pid"] in server.worker_pids()
    expected_bytes = len("/path/a b")
    assert {k: line[k] for k in ("method", "protocol", "path", "query", "status", "bytes",
                                 "client", "user_agent", "referer", "request_id")} == {
        "method": "GET", "protocol": "HTTP/1.1", "path": "/path/a%20b", "query": "x=1&y=%22", "status": 200,
        "bytes": expected_bytes, "client": "127.0.0.1", "user_agent": 'evil" 200 "x',
        "referer": "https://example.com/", "request_id": "req-42"}


@pytest.mark.parametrize("worker_class", ["sync", "asgi"])
def test_an_insane_request_id_is_replaced_by_one_the_app_sees(start_server, worker_class):
    server = start_server(APP_FOR_INTERFACE["wsgi"], "-k", worker_class, "--access-logfile",
                          "-", "--access-logformat", "json")
    environ = httpx.get(server.url + "/environ", timeout=10,
                        headers={"X-Request-ID": "bad id with spaces"}).json()
    wait_for(lambda: json_log_lines(server), message="the access log line")
    (line,) = json_log_lines(server)
    assert line["request_id"] != "bad id with spaces"
    assert len(line["request_id"]) == 32
    assert environ["HTTP_X_REQUEST_ID"] == line["request_id"]


def test_text_access_lines_escape_what_the_client_sent(start_server):
    server = start_server(APP_FOR_INTERFACE["wsgi"], "--access-logfile", "-",
                          "--access-logformat", '%(h)s "%(r)s" %(s)s "%(a)s"')
    raw = (b'GET /q?a="b" HTTP/1.1\r\nHost: x\r\nUser-Agent: x" 200 "\xff\\\r\n'
           b"Connection: close\r\n\r\n")
    raw_exchange(server.port, raw)
    wait_for(lambda: "GET /q" in server.log(), message="the access log line")
    (line,) = [text for text in server.log().splitlines() if "GET /q" in text]
    assert line == '127.0.0.1 "GET /q?a=\\"b\\" HTTP/1.1" 404 "x\\" 200 \\"\\xff\\\\"'


def test_the_control_port_answers_throughout_a_graceful_stop(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"], "-k", "thread")
    wait_ready(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        wait_for(lambda: "sleep started" in server.log(), message="the slow request")
        server.send(signal.SIGTERM)
        wait_for(lambda: _status(server, "/readyz") == 503, message="/readyz to answer 503")
        assert probe(server, "/readyz").text == "stopping\n"
        assert b"slept" in slow.recv(65536)
    assert server.proc.wait(30) == 0


def test_idle_connections_on_the_control_port_cannot_crowd_out_a_probe(start_server):
    server = controlled(start_server, APP_FOR_INTERFACE["wsgi"])
    wait_ready(server)
    port = int(server.control.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(64)]
    try:
        assert probe(server, "/livez").status_code == 200
        # The probe took the place of the oldest idle connection, not of one that
        # timed out: the newest is still open.
        idle[-1].setblocking(False)
        with pytest.raises(BlockingIOError):
            idle[-1].recv(1)
    finally:
        for sock in idle:
            sock.close()


def test_requests_the_server_refuses_itself_are_counted(start_server, serving):
    worker_class, app = serving
    server = controlled(start_server, app, "-k", worker_class)
    wait_ready(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    assert request_counts(server) == {(worker_class, "refused", "4xx"): 1}


def test_a_forged_client_address_never_reaches_a_text_access_line(start_server):
    server = start_server(APP_FOR_INTERFACE["wsgi"], "--access-logfile", "-",
                          "--forwarded-allow-ips", "*", "--access-logformat", '%(h)s "%(r)s"')
    httpx.get(server.url + "/", timeout=10,
              headers={"X-Forwarded-For": '1.2.3.4" 200 "forged\x85x'.encode("latin-1")})
    wait_for(lambda: '"GET / HTTP/1.1"' in server.log(), message="the access log line")
    (line,) = [text for text in server.log().split("\n") if "GET / HTTP/1.1" in text]
    assert line == '127.0.0.1 "GET / HTTP/1.1"'  # (no address: the peer's is logged)


def test_several_request_ids_become_one_new_one(start_server):
    server = start_server(APP_FOR_INTERFACE["wsgi"], "--access-logfile", "-",
                          "--access-logformat", "json")
    raw = raw_exchange(server.port, b"GET /environ HTTP/1.1\r\nHost: x\r\n"
                                    b"X-Request-ID: good\r\nX-Request-ID: other\r\n"
                                    b"Connection: close\r\n\r\n")
    environ = json.loads(raw.partition(b"\r\n\r\n")[2])
    wait_for(lambda: json_log_lines(server), message="the access log line")
    (line,) = json_log_lines(server)
    assert line["request_id"] == environ["HTTP_X_REQUEST_ID"]
    assert len(line["request_id"]) == 32
