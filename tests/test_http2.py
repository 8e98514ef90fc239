"""HTTP/2 on the asgi class, as real clients use it: httpx over TLS (ALPN)
and over cleartext by prior knowledge, curl's `Upgrade: h2c`, nghttp; many
streams on one connection; a WSGI app through the bridge; the limits per
stream; flow control with large bodies; the access log; a graceful stop.

RFC 9113's requirements one by one are in test_http2_conformance.py, the
flood budgets in test_http2_floods.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import threading

import httpx
import psutil
import pytest
from hyperframe.frame import SettingsFrame

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Traffic, wait_for
from tests.h2_client import H2Client, request_fields
from tests.test_control import controlled, json_log_lines, probe
from tests.test_tls import Certificates
from tests.test_upgrade import stop_pid

ASGI_APP = "tests.apps.asgi_basic:app"
WSGI_APP = "tests.apps.basic:app"
H2C = ("-k", "asgi", "--http2-cleartext", "prior-knowledge")


def h2c_client(**kwargs) -> httpx.Client:
    """An httpx client that speaks HTTP/2 by prior knowledge to http:// URLs."""
    return httpx.Client(http1=False, http2=True, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


# --- how a connection comes to HTTP/2 ----------------------------------------------

def test_a_request_by_prior_knowledge_is_served_over_http2(start_server):
    server = start_server(ASGI_APP, *H2C)
    with h2c_client() as http:
        response = http.get(server.url + "/scope")
    assert response.http_version == "HTTP/2"
    scope = response.json()
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "http"
    assert ["host", f"127.0.0.1:{server.port}"] in scope["headers"]


def test_alpn_chooses_h2_over_tls_by_default(start_server, certs):
    server = start_server(ASGI_APP, "-k", "asgi", *certs.flags())
    with httpx.Client(http2=True, verify=certs.client_context(), timeout=30) as http:
        response = http.get(f"https://localhost:{server.port}/scope")
    assert response.http_version == "HTTP/2"
    scope = response.json()
    assert (scope["http_version"], scope["scheme"]) == ("2", "https")
    assert "tls" in scope["extensions"]


def test_alpn_still_gives_http_1_1_to_a_client_that_asks_only_for_it(start_server, certs):
    server = start_server(ASGI_APP, "-k", "asgi", *certs.flags())
    with httpx.Client(verify=certs.client_context(), timeout=30) as http:
        response = http.get(f"https://localhost:{server.port}/scope")
    assert response.http_version == "HTTP/1.1"


def test_http_protocols_h1_turns_http2_off_over_tls(start_server, certs):
    server = start_server(ASGI_APP, "-k", "asgi", "--http-protocols", "h1", *certs.flags())
    with httpx.Client(http2=True, verify=certs.client_context(), timeout=30) as http:
        response = http.get(f"https://localhost:{server.port}/")
    assert response.http_version == "HTTP/1.1"


def test_cleartext_http2_is_off_by_default(start_server):
    server = start_server(ASGI_APP, "-k", "asgi")
    with pytest.raises(httpx.HTTPError):
        with h2c_client() as http:
            http.get(server.url + "/")
    assert httpx.get(server.url + "/").status_code == 200  # HTTP/1.1 as ever


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_upgrades_to_h2c_when_upgrade_is_allowed(start_server):
    server = start_server(ASGI_APP, "-k", "asgi", "--http2-cleartext", "upgrade")
    result = subprocess.run(["curl", "-s", "-i", "--http2", server.url + "/scope"],
                            capture_output=True, timeout=30, check=True)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert body.startswith(b"HTTP/2 200")
    scope = json.loads(body.partition(b"\r\n\r\n")[2])
    assert scope["http_version"] == "2"
    assert not any(name in ("upgrade", "http2-settings", "connection")
                   for name, _ in scope["headers"])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_an_upgrade_to_h2c_is_ignored_when_only_prior_knowledge_is_allowed(start_server):
    server = start_server(ASGI_APP, *H2C)
    result = subprocess.run(["curl", "-s", "-i", "--http2", server.url + "/"],
                            capture_output=True, timeout=30, check=True)
    assert result.stdout.startswith(b"HTTP/1.1 200")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_by_prior_knowledge_posts_a_body(start_server):
    server = start_server(ASGI_APP, *H2C)
    result = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--data-binary",
                             "hello body", server.url + "/echo"],
                            capture_output=True, timeout=30, check=True)
    assert result.stdout == b"hello body"


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp is not installed")
def test_nghttp_is_served(start_server):
    server = start_server(ASGI_APP, *H2C)
    result = subprocess.run(["nghttp", "-n", "-s", server.url + "/"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "200" in result.stdout


# --- streams are requests ----------------------------------------------------------

def test_a_hundred_concurrent_streams_share_one_connection(start_server):
    server = start_server(ASGI_APP, *H2C)

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as http:
            return await asyncio.gather(*(http.get(f"{server.url}/sleep?s=0.5")
                                          for _ in range(100)))

    responses = asyncio.run(many())
    assert [r.status_code for r in responses] == [200] * 100
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert server.log().count("sleep started") == 100


def test_a_wsgi_app_on_the_bridge_is_served_over_http2(start_server):
    server = start_server(WSGI_APP, *H2C)
    with h2c_client() as http:
        environ = http.get(server.url + "/environ").json()
        echoed = http.post(server.url + "/echo", content=b"through the bridge")
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert echoed.content == b"through the bridge"


def test_the_access_log_names_http_2_0(start_server):
    server = start_server(ASGI_APP, *H2C, "--access-logfile", "-")
    with h2c_client() as http:
        http.get(server.url + "/path/logged")
    wait_for(lambda: "/path/logged" in server.log(), message="the access line")
    line = next(line for line in server.log().splitlines() if "/path/logged" in line)
    assert '"GET /path/logged HTTP/2.0" 200' in line


def test_the_json_access_log_names_the_protocol(start_server):
    server = start_server(ASGI_APP, *H2C, "--access-logfile", "-", "--access-logformat", "json")
    with h2c_client() as http:
        http.get(server.url + "/path/json")
    wait_for(lambda: json_log_lines(server), message="the JSON access line")
    (line,) = json_log_lines(server)
    assert (line["protocol"], line["path"]) == ("HTTP/2.0", "/path/json")


def test_metrics_count_each_protocol_under_its_own_label(start_server):
    server = controlled(start_server, ASGI_APP, *H2C)
    with h2c_client() as http:
        http.get(server.url + "/")
        http.get(server.url + "/")
    httpx.get(server.url + "/")

    def by_protocol() -> dict[str, float]:
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(probe(server, "/metrics").text):
            if family.name == "hybrid_requests":
                for sample in family.samples:
                    protocol = sample.labels["protocol"]
                    counts[protocol] = counts.get(protocol, 0) + sample.value
        return counts

    wait_for(lambda: by_protocol() == {"HTTP/2": 2, "HTTP/1.x": 1},
             message="the three requests in /metrics")


def test_a_head_request_gets_no_body(start_server):
    server = start_server(ASGI_APP, *H2C)
    with h2c_client() as http:
        response = http.head(server.url + "/download?size=1000")
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert response.content == b""


def test_an_app_that_raises_gets_a_500_and_the_connection_goes_on(start_server):
    server = start_server(ASGI_APP, *H2C)
    with h2c_client() as http:
        assert http.get(server.url + "/error").status_code == 500
        assert http.get(server.url + "/").status_code == 200


# --- the limits, per stream --------------------------------------------------------

def test_a_body_over_the_limit_is_a_413_on_its_stream_alone(start_server):
    server = start_server(ASGI_APP, *H2C, "--limit-request-body", "1000")
    with h2c_client() as http:
        assert http.post(server.url + "/echo", content=b"x" * 2000).status_code == 413
        assert http.post(server.url + "/echo", content=b"x" * 10).content == b"x" * 10


def test_a_chunk_of_a_streamed_body_over_the_limit_is_a_413(start_server):
    server = start_server(ASGI_APP, *H2C, "--limit-request-body", "1000")

    def pieces():
        yield b"x" * 800
        yield b"x" * 800

    with h2c_client() as http:
        assert http.post(server.url + "/upload", content=pieces()).status_code == 413


def test_too_many_header_fields_is_a_431(start_server):
    server = start_server(ASGI_APP, *H2C, "--limit-request-fields", "10")
    headers = {f"x-field-{n}": "v" for n in range(20)}
    with h2c_client() as http:
        assert http.get(server.url + "/", headers=headers).status_code == 431
        assert http.get(server.url + "/").status_code == 200


def test_a_long_path_is_a_414(start_server):
    server = start_server(ASGI_APP, *H2C, "--limit-request-line", "100")
    with h2c_client() as http:
        assert http.get(server.url + "/path/" + "a" * 200).status_code == 414


def test_limit_concurrency_counts_streams_as_requests(start_server):
    server = start_server(ASGI_APP, *H2C, "--limit-concurrency", "2")

    async def five() -> list[int]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as http:
            responses = await asyncio.gather(*(http.get(f"{server.url}/sleep?s=1")
                                               for _ in range(5)))
        return sorted(r.status_code for r in responses)

    assert asyncio.run(five()) == [200, 200, 503, 503, 503]


# --- flow control with large bodies ------------------------------------------------

def worker_rss(server) -> int:
    (pid,) = server.worker_pids()
    return psutil.Process(pid).memory_info().rss


def test_a_256_mib_upload_is_read_with_bounded_memory(start_server):
    server = start_server(ASGI_APP, *H2C)
    size = 256 * 1024 * 1024
    piece = b"u" * (1024 * 1024)
    with h2c_client() as http:
        http.get(server.url + "/")
        before = worker_rss(server)
        response = http.post(server.url + "/upload", content=(piece for _ in range(256)))
        after = worker_rss(server)
    assert response.text == str(size)
    assert after - before < 64 * 1024 * 1024


def test_a_256_mib_download_is_sent_with_bounded_memory(start_server):
    server = start_server(ASGI_APP, *H2C)
    size = 256 * 1024 * 1024
    with h2c_client() as http:
        http.get(server.url + "/")
        before = worker_rss(server)
        received = 0
        with http.stream("GET", f"{server.url}/download?size={size}") as response:
            for chunk in response.iter_bytes():
                received += len(chunk)
        after = worker_rss(server)
    assert received == size
    assert after - before < 64 * 1024 * 1024


def test_a_client_that_stops_reading_holds_the_app_at_its_window(start_server):
    """The app's send() waits for the client's window: a download the client does
    not read leaves the worker's memory where it was."""
    server = start_server(ASGI_APP, *H2C)
    with h2c_client() as http:
        http.get(server.url + "/")
        before = worker_rss(server)
        with http.stream("GET", f"{server.url}/download?size={256 * 1024 * 1024}") as response:
            next(response.iter_raw(1024))
            threading.Event().wait(2)  # (reading nothing more meanwhile)
            after = worker_rss(server)
    assert after - before < 32 * 1024 * 1024


# --- stopping ------------------------------------------------------------------------

def test_a_stream_in_flight_is_answered_through_a_graceful_stop(start_server):
    server = start_server(ASGI_APP, *H2C)
    results: list[httpx.Response] = []
    with h2c_client() as http:
        http.get(server.url + "/")
        thread = threading.Thread(target=lambda: results.append(
            http.get(server.url + "/sleep?s=2")))
        thread.start()
        wait_for(lambda: "sleep started" in server.log(), message="the request to start")
        server.send(signal.SIGTERM)
        thread.join(30)
    assert [r.status_code for r in results] == [200]
    assert server.proc.wait(30) == 0


def test_hup_fails_no_http2_request(start_server):
    server = start_server(ASGI_APP, *H2C, "-w", "2")
    before = server.wait_workers(2)
    with Traffic(server, http2=True) as traffic:
        traffic.more(message="traffic before the reload")
        server.send(signal.SIGHUP)
        after = wait_for(lambda: (pids := server.booted_workers()) and len(pids) == 2
                         and not pids & before and pids, timeout=30, message="new workers")
        traffic.more(message="traffic after the reload")
    assert traffic.failures == []
    assert {int(pid) for pid in traffic.answers[-10:]} <= after


def test_max_requests_replaces_workers_without_failing_an_http2_request(start_server):
    server = start_server(ASGI_APP, *H2C, "-w", "2", "--max-requests", "50")
    first = server.wait_workers(2)
    with Traffic(server, http2=True) as traffic:
        wait_for(lambda: (booted := server.booted_workers()) and not booted & first,
                 timeout=60, message="both first workers replaced")
        traffic.more()
    assert traffic.failures == []
    for pid in first:  # (said once the arbiter has reaped it)
        wait_for(lambda: f"Worker {pid} exited (replaced: max-requests)" in server.log(),
                 message=f"worker {pid}'s replacement to be logged")


def test_a_shutdown_delay_keeps_serving_http2_then_stops_cleanly(start_server):
    server = start_server(ASGI_APP, *H2C, "--shutdown-delay", "1")
    with Traffic(server, http2=True) as traffic:
        traffic.more(message="traffic before the stop")
        server.send(signal.SIGTERM)
        traffic.more(message="traffic during the shutdown delay")
        assert server.proc.wait(30) == 0
    # Once the server has gone, new connections are refused; nothing else fails.
    assert [f for f in traffic.failures if "ConnectError" not in f] == []


def test_usr2_upgrades_without_failing_an_http2_request(start_server, tmp_path):
    pidfile = tmp_path / "hybrid.pid"
    server = start_server(ASGI_APP, *H2C, "-w", "2", "--pid", str(pidfile))
    server.wait_workers(2)
    new_arbiter = 0
    try:
        with Traffic(server, http2=True) as traffic:
            traffic.more(message="traffic before the upgrade")
            server.send(signal.SIGUSR2)
            assert server.proc.wait(60) == 0  # the old arbiter handed over, then stopped
            new_arbiter = int(pidfile.read_text())
            traffic.more(message="traffic after the upgrade")
    finally:
        if not new_arbiter and pidfile.exists():
            new_arbiter = int(pidfile.read_text())
        if new_arbiter and new_arbiter != server.pid:
            stop_pid(new_arbiter)
    assert traffic.failures == []


# --- the timeouts, per stream --------------------------------------------------------

def test_request_timeout_answers_the_stream_504_and_the_connection_goes_on(start_server):
    server = start_server(ASGI_APP, *H2C, "--request-timeout", "1")
    with H2Client(server.port) as client:
        client.request(1, "/sleep?s=5")
        client.request(3, "/")
        assert client.answer(3).status == 200
        assert client.answer(1).status == 504
        client.request(5, "/")
        assert client.answer(5).status == 200


def test_a_stalled_request_body_is_a_408_on_its_stream(start_server):
    server = start_server(ASGI_APP, *H2C, "--body-timeout", "1")
    with H2Client(server.port) as client:
        client.request(1, "/echo", "POST", end_stream=False)
        client.send(client.data(1, b"some of it"))
        assert client.answer(1).status == 408
        client.request(3, "/")
        assert client.answer(3).status == 200


def test_a_header_block_that_stalls_closes_the_connection_after_the_header_timeout(
        start_server):
    server = start_server(ASGI_APP, *H2C, "--header-timeout", "1", "--keep-alive", "30")
    with H2Client(server.port) as client:
        client.send(client.headers_frame(1, request_fields("/"), end_headers=False))
        assert client.read_until_closed(timeout=10)
    assert client.goaway is not None and client.goaway.error_code == 0x1  # PROTOCOL_ERROR


# --- what a review found -----------------------------------------------------------

def test_bodies_the_app_never_read_give_the_connection_window_back(start_server):
    """120 uploads of 64 KiB answered without being read: more than the
    connection's window (100 streams' worth), so an upload after them passes
    only if the unread bytes were credited back."""
    server = start_server(ASGI_APP, *H2C)
    piece = b"i" * 65536
    with h2c_client() as http:
        for _ in range(120):
            assert http.post(server.url + "/ignore-body", content=piece).status_code == 200
        assert http.post(server.url + "/upload", content=piece * 4).text == str(4 * 65536)


def test_an_answer_still_draining_to_a_slow_reader_is_not_cut_by_keep_alive(start_server):
    server = start_server(ASGI_APP, *H2C, "--keep-alive", "1")
    size = 2 * 1024 * 1024
    received = 0
    with h2c_client() as http:
        with http.stream("GET", f"{server.url}/one?size={size}") as response:
            for chunk in response.iter_raw(65536):
                received += len(chunk)
                threading.Event().wait(0.1)  # (about 3 s in all: past --keep-alive)
    assert received == size


def test_streams_answered_whose_bodies_still_come_count_toward_the_stream_limit(start_server):
    server = start_server(ASGI_APP, *H2C, "--http2-max-concurrent-streams", "10")
    with H2Client(server.port) as client:
        for stream_id in range(1, 2 * 12, 2):  # 12 uploads left open, each answered
            client.request(stream_id, "/ignore-body", "POST", end_stream=False)
        answers = [client.answer(stream_id) for stream_id in range(1, 2 * 12, 2)]
    assert [a.status for a in answers[:10]] == [200] * 10
    assert [a.reset for a in answers[10:]] == [0x7, 0x7]  # REFUSED_STREAM


def test_an_h2c_preface_split_across_reads_is_served(start_server):
    server = start_server(ASGI_APP, *H2C)
    with H2Client(server.port, preface=b"", handshake=False) as client:
        client.send_raw(b"PR")
        threading.Event().wait(0.2)
        client.send_raw(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
        client.request(1, "/")
        assert client.answer(1).status == 200


def test_a_connection_that_turns_http2_during_a_stop_is_closed_with_it(start_server):
    server = start_server(ASGI_APP, *H2C, "--graceful-timeout", "60")
    server.wait_workers(1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as opened:
        opened.sendall(b"PRI * HTTP/2.0")  # (accepted, and waiting for the rest)
        threading.Event().wait(0.3)
        server.send(signal.SIGTERM)
        threading.Event().wait(0.3)  # (the worker begins its stop; the connection's grace runs)
        opened.sendall(b"\r\n\r\nSM\r\n\r\n")
        client = H2Client(server.port, sock=opened, preface=SettingsFrame(0).serialize())
        client.request(1, "/")
        assert client.answer(1).status == 200
        assert client.read_until_closed(timeout=15)
    assert server.proc.wait(15) == 0  # (not at the end of --graceful-timeout)


def test_trailers_http_cannot_carry_are_not_sent(start_server):
    server = start_server("tests.apps.h2_app:app", *H2C)
    with H2Client(server.port) as client:
        client.request(1, "/h2/bad-trailers")
        answer = client.answer(1)
    assert answer.trailers == []
    assert answer.reset == 0x2  # INTERNAL_ERROR: an answer begun cannot be mended
