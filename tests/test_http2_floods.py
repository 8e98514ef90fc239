"""The known HTTP/2 attacks, each sent with hostile frames against one asgi
worker: each is bounded by a per-connection budget (hybrid/protocol/flood.py)
that ends the connection with GOAWAY (ENHANCE_YOUR_CALM), or, for too many
streams, by refusing the extra stream alone; and the worker goes on serving
new connections.

The frames go in large batches (one write of thousands of frames), so that a
budget's burst is spent at once, far faster than its refill."""

from __future__ import annotations

import psutil
import pytest
from hyperframe.frame import DataFrame, PingFrame, RstStreamFrame, SettingsFrame, \
    WindowUpdateFrame

from tests.conftest import launch
from tests.h2_client import (
    CANCEL,
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    PRIORITY,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    H2Client,
    raw_frame,
    request_fields,
)

APP = "tests.apps.h2_app:app"
MAX_STREAMS = 100  # --http2-max-concurrent-streams' default
RESET_BURST = max(200, 2 * MAX_STREAMS)  # the reset budget's burst (flood.py)
MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = launch(APP, "-k", "asgi", "-w", "1", "--http2-cleartext", "prior-knowledge",
                 workdir=tmp_path_factory.mktemp("h2-floods"))
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def connect(server):
    """connect(): a new HTTP/2 connection to the server, past the SETTINGS."""
    clients: list[H2Client] = []

    def open_connection(settings: dict[int, int] | None = None) -> H2Client:
        client = H2Client(server.port, settings)
        clients.append(client)
        return client

    yield open_connection
    for client in clients:
        client.close()


def serves_a_new_connection(server) -> bool:
    with H2Client(server.port) as client:
        client.request(1)
        answer = client.answer(1)
        return (answer.status, answer.body) == (200, b"hello")


def calmed_down(client: H2Client, barrier: bool = True) -> bool:
    """Whether the connection ended with GOAWAY ENHANCE_YOUR_CALM."""
    return client.connection_error(barrier=barrier) == ENHANCE_YOUR_CALM


def in_rounds(client: H2Client, make_round, rounds: int = 40) -> None:
    """Send `make_round(first_stream_id)`'s frames, round after round, each
    round taken (a PING answered) before the next, until the server goes away."""
    stream_id = 1
    for number in range(rounds):
        frames, stream_id = make_round(stream_id)
        payload = b"round%03d" % number
        client.send(*frames, PingFrame(0, payload))
        client.wait_for(lambda: payload in client.ping_acks or client.goaway or client.closed,
                        f"round {number} to be taken")
        if client.goaway or client.closed:
            return


def server_resets(client: H2Client) -> int:
    return sum(1 for answer in client.streams.values() if answer.reset is not None)


def test_rapid_reset_ends_in_enhance_your_calm(server, connect):
    client = connect()
    frames = []
    for stream_id in range(1, 2 * 4000, 2):  # 4,000 streams opened and reset at once
        frames += [client.headers_frame(stream_id, request_fields()),
                   RstStreamFrame(stream_id, CANCEL)]
    client.send(*frames)
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def malformed_rounds(client: H2Client, extra: list[tuple[bytes, bytes]]):
    def make_round(first: int):
        ids = range(first, first + 2 * (MAX_STREAMS // 2), 2)
        return [client.headers_frame(i, request_fields() + extra) for i in ids], ids[-1] + 2
    return make_round


def test_made_you_reset_by_malformed_requests_ends_in_enhance_your_calm(server, connect):
    client = connect()
    in_rounds(client, malformed_rounds(client, [(b"X-Uppercase", b"1")]))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_made_you_reset_by_requests_the_core_refuses_ends_in_enhance_your_calm(server, connect):
    client = connect()
    in_rounds(client, malformed_rounds(client, [(b"host", b"not-the-authority")]))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_a_spent_budget_is_logged_in_one_line(server, connect):
    logged_before = len(server.log())
    client = connect()
    in_rounds(client, malformed_rounds(client, [(b"host", b"not-the-authority")]))
    assert calmed_down(client)
    lines = server.log()[logged_before:].splitlines()
    assert len([line for line in lines if "HTTP/2 connection from" in line]) == 1, lines


def test_made_you_reset_by_zero_window_updates_ends_the_connection(server, connect):
    """The engine takes a zero increment on a stream for a connection error (RFC
    9113 section 5.4 allows it): the lever breaks at once, or the budget ends it."""
    client = connect()

    def make_round(first: int):
        frames = []
        for stream_id in range(first, first + MAX_STREAMS, 2):
            frames += [client.headers_frame(stream_id, request_fields("/long-poll"),
                                            end_stream=False),
                       WindowUpdateFrame(stream_id, 0)]
        return frames, first + MAX_STREAMS

    in_rounds(client, make_round)
    assert client.connection_error() in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM)
    assert server_resets(client) <= RESET_BURST
    assert serves_a_new_connection(server)


def test_made_you_reset_by_data_past_the_window_ends_the_connection(server, connect):
    """DATA past a stream's window is a connection error to the engine (section
    6.9.1 allows it): the lever breaks at once, or the budget ends it."""
    client = connect()
    window = client.server_settings.get(INITIAL_WINDOW_SIZE, 65535)

    def make_round(first: int):
        frames = []
        for stream_id in range(first, first + 20, 2):
            frames.append(client.headers_frame(stream_id, request_fields("/sleep?s=1"),
                                               end_stream=False))
            frames += [client.data(stream_id, b"x" * 16384) for _ in range(window // 16384 + 1)]
        return frames, first + 20

    in_rounds(client, make_round)
    assert client.connection_error() in (FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM)
    assert server_resets(client) <= RESET_BURST
    assert serves_a_new_connection(server)


def test_continuation_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    endless = [raw_frame(CONTINUATION, b"", 0, 1) for _ in range(10_000)]
    client.send(client.headers_frame(1, request_fields(), end_headers=False), *endless)
    assert calmed_down(client, barrier=False)  # (a PING would break the header block)
    assert serves_a_new_connection(server)


def test_a_header_block_over_the_limit_across_continuations_ends_in_enhance_your_calm(
        server, connect):
    client = connect()
    block = client.block(request_fields() + [(b"x-part-%d" % i, b"v" * 4000) for i in range(50)])
    pieces = [block[start:start + 16384] for start in range(0, len(block), 16384)]
    last = len(pieces) - 1
    client.send(raw_frame(HEADERS, pieces[0], END_STREAM, 1), *(
        raw_frame(CONTINUATION, piece, END_HEADERS if number == last else 0, 1)
        for number, piece in enumerate(pieces[1:], 1)))
    assert calmed_down(client, barrier=False)
    assert serves_a_new_connection(server)


def test_settings_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    client.send(*(SettingsFrame(0) for _ in range(5000)))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_ping_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    client.send(*(PingFrame(0, b"%08d" % number) for number in range(5000)))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_priority_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    weight_16 = b"\x00\x00\x00\x00\x0f"
    client.send(*(raw_frame(PRIORITY, weight_16, 0, 1 + 2 * (number % 500))
                  for number in range(10_000)))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_window_update_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    client.send(*(WindowUpdateFrame(0, 1) for _ in range(10_000)))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_empty_data_flood_ends_in_enhance_your_calm(server, connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields("/long-poll"), end_stream=False),
                *(DataFrame(1, b"") for _ in range(5000)))
    assert calmed_down(client)
    assert serves_a_new_connection(server)


def test_too_many_streams_refuses_the_extra_stream_and_keeps_the_connection(server, connect):
    client = connect()
    held = range(1, 2 * MAX_STREAMS, 2)
    client.send(*(client.headers_frame(stream_id, request_fields("/long-poll"))
                  for stream_id in held))
    extra = 2 * MAX_STREAMS + 1
    client.request(extra)
    assert client.answer(extra).reset == REFUSED_STREAM
    client.ping()
    assert client.goaway is None
    assert serves_a_new_connection(server)


def send_hpack_bomb(client: H2Client) -> None:
    """A header block of 16,000 one-byte references to a 4,000-byte entry of the
    dynamic table: 64 MB decoded, from 16 kB sent."""
    client.request(1, extra=[("x-bomb", "v" * 4000)])  # (the entry goes in the table)
    client.answer(1)
    block = client.block(request_fields()) + b"\xbe" * 16_000  # (62: the newest entry)
    client.send(raw_frame(HEADERS, block, END_HEADERS | END_STREAM, 3))


def worker_rss(server) -> int:
    (pid,) = server.worker_pids()
    return psutil.Process(pid).memory_info().rss


def test_hpack_bomb_is_refused_without_the_worker_growing(server, connect):
    before = worker_rss(server)
    for _ in range(10):
        client = connect()
        send_hpack_bomb(client)
        client.wait_for(lambda: client.stream(3).done or client.goaway or client.closed,
                        "the bomb's fate")
        assert client.stream(3).status != 200
    assert worker_rss(server) - before < 32 * MiB
    assert serves_a_new_connection(server)


def test_hpack_bomb_ends_in_enhance_your_calm(server, connect):
    client = connect()
    send_hpack_bomb(client)
    assert calmed_down(client)
    assert serves_a_new_connection(server)
