"""WebSockets on the asgi class, driven by the `websockets` client."""

from __future__ import annotations

import contextlib
import socket

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from tests.conftest import launch, raw_exchange, split_response, wait_for

APP = "tests.apps.asgi_basic:app"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = launch(APP, "-k", "asgi", "-w", "1", "--ws-max-size", "65536",
                 workdir=tmp_path_factory.mktemp("ws"))
    yield srv
    assert srv.stop() == 0, srv.log()


def ws_url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def test_text_and_bytes_are_echoed(server):
    with connect(ws_url(server, "/ws/echo")) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv() == b"\x00\x01binary"


def test_fragmented_message_is_reassembled(server):
    with connect(ws_url(server, "/ws/echo")) as ws:
        ws.send(iter(["frag", "men", "ted"]))
        assert ws.recv() == "fragmented"


def test_app_chooses_the_subprotocol_and_adds_headers(server):
    with connect(ws_url(server, "/ws/echo"), subprotocols=["other", "chat"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers["x-accepted-by"] == "hybrid-tests"


def test_permessage_deflate_is_negotiated(server):
    with connect(ws_url(server, "/ws/echo"), compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")
        ws.send("compress me " * 100)
        assert ws.recv() == "compress me " * 100


RANDOMISH = "".join(chr(65 + (i * 7919) % 26) for i in range(20000))  # repeats 26 KiB back


def _answer_to(factory: ClientPerMessageDeflateFactory, server) -> str:
    """The server's answer to the offer `factory` makes; the echo of a message
    compressed with the client's window is checked on the way."""
    with connect(ws_url(server, "/ws/echo"), compression=None, extensions=[factory]) as ws:
        ws.send(RANDOMISH * 2)  # a match 20,000 bytes back: only a full window finds it
        assert ws.recv() == RANDOMISH * 2
        return ws.response.headers["sec-websocket-extensions"]


def test_the_server_answers_its_own_12_bit_window_to_every_client(server):
    # Browsers offer client_max_window_bits; the client's window then shrinks too.
    answered = _answer_to(ClientPerMessageDeflateFactory(client_max_window_bits=True), server)
    assert answered == ("permessage-deflate; client_max_window_bits=12; "
                        "server_max_window_bits=12")


def test_a_client_that_cannot_shrink_its_window_keeps_its_full_one(server):
    answered = _answer_to(ClientPerMessageDeflateFactory(client_max_window_bits=None), server)
    assert answered == "permessage-deflate; server_max_window_bits=12"


def test_a_client_asking_for_a_smaller_server_window_gets_it(server):
    answered = _answer_to(ClientPerMessageDeflateFactory(client_max_window_bits=None,
                                                         server_max_window_bits=10), server)
    assert answered == "permessage-deflate; server_max_window_bits=10"


def test_a_compressed_websocket_costs_the_worker_far_less_than_zlibs_defaults(server):
    # zlib's defaults (15-bit window, memory level 8) measured 112 KiB a socket
    # once each had sent a compressed message; 12 and 5 measured 53 KiB.
    (pid,) = server.worker_pids()
    worker = psutil.Process(pid)
    with contextlib.ExitStack() as sockets:
        sockets.enter_context(connect(ws_url(server, "/ws/echo"), compression="deflate"))
        before = worker.memory_info().rss
        for _ in range(300):
            ws = sockets.enter_context(connect(ws_url(server, "/ws/echo"), compression="deflate"))
            ws.send("hello hybrid " * 50)
            assert ws.recv() == "hello hybrid " * 50
        per_socket = (worker.memory_info().rss - before) / 300
    assert per_socket < 80 * 1024


def test_close_before_accept_is_403(server):
    with pytest.raises(InvalidStatus) as failure:
        connect(ws_url(server, "/ws/deny"))
    assert failure.value.response.status_code == 403


def test_denial_response_extension(server):
    with pytest.raises(InvalidStatus) as failure:
        connect(ws_url(server, "/ws/denial"))
    assert failure.value.response.status_code == 401
    assert failure.value.response.body == b"no entry"


def test_denial_with_an_interim_status_is_500(server):
    raw = raw_exchange(server.port, b"GET /ws/deny-interim HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                                    b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert split_response(raw)[0] == 500


def test_app_exception_before_accept_is_500(server):
    with pytest.raises(InvalidStatus) as failure:
        connect(ws_url(server, "/ws/error"))
    assert failure.value.response.status_code == 500


def test_app_close_code_and_reason_reach_the_client(server):
    with connect(ws_url(server, "/ws/echo")) as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd.code == 4000
    assert closed.value.rcvd.reason == "bye"


def test_send_after_the_apps_own_close_is_dropped_while_the_close_completes(server):
    with connect(ws_url(server, "/ws/close-then-send")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd.code == 1000
    wait_for(lambda: "send after close was dropped" in server.log(), message="the app to go on")


def test_client_close_code_reaches_the_app(server):
    with connect(ws_url(server, "/ws/echo")) as ws:
        ws.close(code=4321)
    wait_for(lambda: httpx.get(server.url + "/ws-last-close-code", timeout=5).text == "4321",
             message="the app to see the close code")


def test_ping_is_answered(server):
    with connect(ws_url(server, "/ws/echo")) as ws:
        assert ws.ping(b"are you there").wait(5)


def test_oversized_message_closes_with_1009(server):
    with connect(ws_url(server, "/ws/echo"), max_size=None) as ws:
        ws.send(b"x" * 70000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd.code == 1009


def test_invalid_utf8_closes_with_1007(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        # A masked text frame carrying the invalid UTF-8 byte 0xff.
        mask = b"\x01\x02\x03\x04"
        sock.sendall(b"\x81\x81" + mask + bytes([0xFF ^ mask[0]]))
        frame = sock.recv(4096)
    assert frame[0] == 0x88  # a close frame
    assert int.from_bytes(frame[2:4], "big") == 1007


@pytest.mark.parametrize("version, key, status", [
    (b"8", b"dGhlIHNhbXBsZSBub25jZQ==", 426),
    (b"13", b"not-base64!", 400),
    (b"13", b"c2hvcnQ=", 400),
])
def test_bad_handshakes_are_refused(server, version, key, status):
    raw = raw_exchange(server.port, b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                                    b"\r\nSec-WebSocket-Version: " + version + b"\r\n\r\n")
    assert split_response(raw)[0] == status


def test_an_unsupported_version_is_told_the_supported_one(server):
    raw = raw_exchange(server.port, b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                                    b"\r\nSec-WebSocket-Version: 8\r\n\r\n")
    status, headers, _ = split_response(raw)
    assert (status, headers["sec-websocket-version"]) == (426, "13")


def test_send_raises_an_oserror_once_the_client_has_gone(server):
    with connect(ws_url(server, "/ws/send-until-gone")) as ws:
        assert ws.recv() == "tick"
    wait_for(lambda: httpx.get(server.url + "/raised?kind=websocket", timeout=5).text
             == "ClientDisconnected", message="the app's send() to raise")


def test_shutdown_closes_open_websockets_with_1001(start_server):
    srv = start_server(APP, "-k", "asgi")
    with connect(ws_url(srv, "/ws/echo")) as ws:
        ws.send("ping")
        assert ws.recv() == "ping"
        srv.send(__import__("signal").SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1001
    assert srv.stop() == 0
