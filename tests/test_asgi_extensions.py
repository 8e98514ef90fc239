"""The ASGI extensions the asgi class serves, on HTTP/1.1 and on HTTP/2:
response trailers, `http.response.pathsend`, 103 Early Hints; and that a
scope names them (a WebSocket's names its own)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import read_until_closed
from tests.h2_client import H2Client

APP = "tests.apps.asgi_basic:app"
SOURCE = Path(__file__).parent / "apps" / "asgi_basic.py"


@pytest.fixture
def server(start_server):
    return start_server(APP, "-k", "asgi", "--http2-cleartext", "prior-knowledge")


def http11(server, path: str, version: str = "1.1") -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/{version}\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode())
        return read_until_closed(sock)


def h2_answer(server, path: str):
    with H2Client(server.port) as client:
        client.request(1, path)
        return client.answer(1)


# --- the scope ----------------------------------------------------------------------

@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_a_scope_names_the_extensions_served(server, http2):
    with httpx.Client(http1=not http2, http2=http2, timeout=10) as http:
        named = json.loads(http.get(server.url + "/extensions").text)
    assert named == ["http.response.early_hint", "http.response.pathsend",
                     "http.response.trailers"]


# --- trailers -----------------------------------------------------------------------

def test_trailers_follow_the_last_chunk_on_http_1_1(server):
    raw = http11(server, "/trailers")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\nx-checksum: abc123\r\n\r\n")
    assert b"body, then " in body and b"trailers" in body


def test_trailers_end_the_stream_on_http_2(server):
    answer = h2_answer(server, "/trailers")
    assert answer.status == 200
    assert answer.body == b"body, then trailers"
    assert answer.trailers == [(b"x-checksum", b"abc123")]


def test_trailers_are_dropped_where_http_1_0_has_no_room_for_them(server):
    raw = http11(server, "/trailers", version="1.0")
    assert raw.startswith(b"HTTP/1.1 200")
    assert raw.endswith(b"body, then trailers")
    assert b"x-checksum" not in raw


# --- pathsend -----------------------------------------------------------------------

@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_pathsend_sends_the_file(server, http2):
    with httpx.Client(http1=not http2, http2=http2, timeout=10) as http:
        response = http.get(server.url + "/pathsend")
    assert response.status_code == 200
    assert response.content == SOURCE.read_bytes()


# --- early hints --------------------------------------------------------------------

def test_early_hints_come_before_the_answer_on_http_1_1(server):
    raw = http11(server, "/early-hints")
    assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; "
                          b"as=style\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"hinted")


def test_early_hints_are_not_sent_to_an_http_1_0_client(server):
    raw = http11(server, "/early-hints", version="1.0")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"103" not in raw.partition(b"\r\n")[0]


def test_early_hints_come_before_the_answer_on_http_2(server):
    answer = h2_answer(server, "/early-hints")
    assert [dict(fields)[b":status"] for fields in answer.informational] == [b"103"]
    assert (b"link", b"</style.css>; rel=preload; as=style") in answer.informational[0]
    assert answer.status == 200
    assert answer.body == b"hinted"
