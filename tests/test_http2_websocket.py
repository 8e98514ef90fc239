"""WebSockets over HTTP/2 (RFC 8441): an extended CONNECT opens a stream that
carries the WebSocket, served by the same cycle as over HTTP/1.1. The client
is tests/h2_client.py with wsproto framing the WebSocket inside the stream's
DATA frames."""

from __future__ import annotations

import pytest
from hyperframe.frame import DataFrame, RstStreamFrame
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from tests.h2_client import H2Client

APP = "tests.apps.asgi_basic:app"
ENABLE_CONNECT_PROTOCOL = 0x8


@pytest.fixture
def server(start_server):
    return start_server(APP, "-k", "asgi", "--http2-cleartext", "prior-knowledge")


def extended_connect(client: H2Client, stream_id: int, path: str, *,
                     version: str = "13", protocol: str = "websocket") -> None:
    fields = [(b":method", b"CONNECT"), (b":protocol", protocol.encode()),
              (b":scheme", b"http"), (b":path", path.encode()), (b":authority", b"localhost"),
              (b"sec-websocket-version", version.encode())]
    client.send(client.headers_frame(stream_id, fields, end_stream=False))


class Tunnelled:
    """The client side of a WebSocket on one stream."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.ws = Connection(ConnectionType.CLIENT)
        self.seen = 0  # body bytes of the stream fed to wsproto

    def send(self, event) -> None:
        self.client.send(DataFrame(self.stream_id, self.ws.send(event)))

    def events(self, wanted: int = 1) -> list:
        """Wait until `wanted` WebSocket events came; all of them."""
        got: list = []

        def arrived() -> bool:
            body = self.client.stream(self.stream_id).body
            if len(body) > self.seen:
                self.ws.receive_data(body[self.seen:])
                self.seen = len(body)
                got.extend(self.ws.events())
            return len(got) >= wanted

        self.client.wait_for(arrived, "WebSocket frames")
        return got


def test_the_server_allows_extended_connect(server):
    with H2Client(server.port) as client:
        assert client.server_settings.get(ENABLE_CONNECT_PROTOCOL) == 1


def test_a_websocket_over_http2_echoes_text_and_bytes(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/echo")
        client.wait_for(lambda: client.stream(1).headers, "the answer")
        assert client.stream(1).status == 200
        assert client.stream(1).field(b"sec-websocket-accept") is None  # (no key in h2)
        tunnel = Tunnelled(client, 1)
        tunnel.send(TextMessage(data="hello over h2"))
        tunnel.send(BytesMessage(data=b"\x00\x01bytes"))
        echoed = tunnel.events(2)
    assert [e.data for e in echoed] == ["hello over h2", b"\x00\x01bytes"]


def test_other_streams_are_served_beside_a_websocket(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/echo")
        client.wait_for(lambda: client.stream(1).headers, "the answer")
        client.request(3, "/")
        assert client.answer(3).status == 200
        tunnel = Tunnelled(client, 1)
        tunnel.send(TextMessage(data="still here"))
        assert tunnel.events()[0].data == "still here"


def test_a_close_from_the_client_is_answered_and_ends_the_stream(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/echo")
        client.wait_for(lambda: client.stream(1).headers, "the answer")
        tunnel = Tunnelled(client, 1)
        tunnel.send(CloseConnection(code=1000, reason="done"))
        (answer,) = tunnel.events()
        assert isinstance(answer, CloseConnection) and answer.code == 1000
        client.wait_for(lambda: client.stream(1).ended, "the stream's end")


def test_a_refused_handshake_is_a_403_on_its_stream(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/deny")
        assert client.answer(1).status == 403
        client.request(3, "/")
        assert client.answer(3).status == 200


def test_a_websocket_version_other_than_13_is_a_426(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/echo", version="8")
        answer = client.answer(1)
    assert answer.status == 426
    assert answer.field(b"sec-websocket-version") == b"13"


def test_a_client_reset_tells_the_app_it_left(server):
    with H2Client(server.port) as client:
        extended_connect(client, 1, "/ws/echo")
        client.wait_for(lambda: client.stream(1).headers, "the answer")
        client.send(RstStreamFrame(1, 0x8))
        client.request(3, "/")
        assert client.answer(3).status == 200  # (the connection lives on)
