"""HTTP/2 conformance (RFC 9113, and HPACK's RFC 7541) through real sockets: our
own suite, h2spec not being packaged here. Each test is named after the
section whose requirement it checks, with hostile frames sent exactly as
written (tests/h2_client.py), over h2c by prior knowledge to one asgi worker.

Where the RFC lets an endpoint choose (a stream error may be escalated to a
connection error, RFC 9113 section 5.4; a malformed request may get an error
response instead of a reset, section 8.1.1), the test takes either; where
this server promises more (a refused stream keeps its connection), the test
says so."""

from __future__ import annotations

import json
import struct

import pytest
from hpack import Encoder
from hyperframe.frame import (
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.conftest import launch, raw_exchange, wait_for
from tests.h2_client import (
    ACK,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_WINDOW,
    PING,
    PREFACE,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    H2Client,
    StreamAnswer,
    raw_frame,
    request_fields,
)

APP = "tests.apps.h2_app:app"
MAX_STREAMS = 8
# Long enough that a connection the server closes in a test was closed on purpose.
IDLE_TIMEOUT = "60"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = launch(APP, "-k", "asgi", "-w", "1", "--http2-cleartext", "prior-knowledge",
                 "--http2-max-concurrent-streams", str(MAX_STREAMS),
                 "--header-timeout", IDLE_TIMEOUT, "--keep-alive", IDLE_TIMEOUT,
                 workdir=tmp_path_factory.mktemp("h2"))
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def connect(server):
    """connect(settings, ...): a new HTTP/2 connection to the server, past the
    exchange of SETTINGS."""
    clients: list[H2Client] = []

    def open_connection(settings: dict[int, int] | None = None, **options) -> H2Client:
        client = H2Client(server.port, settings, **options)
        clients.append(client)
        return client

    yield open_connection
    for client in clients:
        client.close()


def still_serves(client: H2Client, stream_id: int) -> None:
    """The connection goes on: a new request on it is answered."""
    client.request(stream_id)
    answer = client.answer(stream_id)
    assert (answer.status, answer.body) == (200, b"hello")
    assert client.goaway is None


def stream_error(client: H2Client, stream_id: int) -> int | None:
    """The code of the stream error on `stream_id`: its RST_STREAM's, or the
    GOAWAY's where the server made it a connection error (section 5.4)."""
    client.wait_for(lambda: client.stream(stream_id).reset is not None or client.goaway
                    or client.closed, f"a stream error on stream {stream_id}")
    reset = client.stream(stream_id).reset
    if reset is not None:
        return reset
    return client.goaway.error_code if client.goaway else None


def refused_alone(answer: StreamAnswer) -> bool:
    """A malformed request's fate (section 8.1.1): a reset (PROTOCOL_ERROR), or an
    error response in its place."""
    return answer.reset == PROTOCOL_ERROR or (answer.status or 0) in range(400, 500)


def open_stream(client: H2Client, stream_id: int, path: str = "/sleep?s=0.5") -> None:
    """A request whose body is still to come: the stream stays open."""
    client.request(stream_id, path, "POST", end_stream=False)


# --- 3.4 the connection preface --------------------------------------------------------


def test_3_4_a_bad_preface_is_a_connection_error(server):
    bad = b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"
    request = HeadersFrame(1, Encoder().encode(request_fields()),
                           flags={"END_STREAM", "END_HEADERS"})
    reply = raw_exchange(server.port, bad + SettingsFrame(0).serialize() + request.serialize())
    assert b"hello" not in reply  # closed, and nothing served


def test_3_4_the_server_preface_is_a_settings_frame(connect):
    client = connect()
    first = client.frames[0]
    assert isinstance(first, SettingsFrame) and "ACK" not in first.flags


def test_3_4_a_preface_not_followed_by_settings_is_a_connection_error(connect):
    client = connect(preface=b"", handshake=False)
    client.send_raw(PREFACE + PingFrame(0, b"12345678").serialize())
    assert client.connection_error() == PROTOCOL_ERROR


# --- 4 frames ------------------------------------------------------------------------------


def test_4_1_unknown_flags_are_ignored(connect):
    client = connect()
    client.send(raw_frame(PING, b"12345678", flags=0xF0))
    client.wait_for(lambda: b"12345678" in client.ping_acks, "the PING's ACK")


def test_4_2_a_headers_frame_over_max_frame_size_is_a_frame_size_error(connect):
    client = connect()
    client.send(raw_frame(HEADERS, b"\x00" * 16385, END_HEADERS | END_STREAM, 1))
    assert client.connection_error() == FRAME_SIZE_ERROR


def test_4_2_a_data_frame_over_max_frame_size_is_a_frame_size_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(raw_frame(DATA, b"\x00" * 16385, 0, 1))
    assert stream_error(client, 1) == FRAME_SIZE_ERROR


# --- 5.1 stream states -------------------------------------------------------------------


def test_5_1_data_on_an_idle_stream_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(DATA, b"abc", 0, 1))
    assert client.connection_error() == PROTOCOL_ERROR


def test_5_1_rst_stream_on_an_idle_stream_is_a_connection_error(connect):
    client = connect()
    client.send(RstStreamFrame(1, 0))
    assert client.connection_error() == PROTOCOL_ERROR


def test_5_1_data_on_a_half_closed_remote_stream_is_stream_closed(connect):
    client = connect()
    client.request(1, "/sleep?s=0.5")  # END_STREAM: the client's side is closed
    client.send(client.data(1, b"abc"))
    assert stream_error(client, 1) == STREAM_CLOSED


@pytest.mark.xfail(strict=True, reason="libnghttp2 ignores DATA on a stream it has forgotten "
                   "(closed), instead of a connection error STREAM_CLOSED")
def test_5_1_data_on_a_closed_stream_is_a_connection_error(connect):
    client = connect()
    client.request(1)
    client.answer(1)
    client.send(client.data(1, b"abc", end_stream=True))
    assert client.connection_error() == STREAM_CLOSED


def test_5_1_1_headers_on_an_even_stream_is_a_connection_error(connect):
    client = connect()
    client.request(2)
    assert client.connection_error() == PROTOCOL_ERROR


@pytest.mark.xfail(strict=True, reason="libnghttp2 ignores HEADERS on a stream id lower than "
                   "one already opened (never opened itself), instead of PROTOCOL_ERROR")
def test_5_1_1_a_stream_id_lower_than_one_opened_is_a_connection_error(connect):
    client = connect()
    client.request(5)
    client.answer(5)
    client.request(3)
    assert client.connection_error() == PROTOCOL_ERROR


def test_5_1_2_a_stream_past_max_concurrent_streams_is_refused_alone(connect):
    client = connect()
    held = range(1, 2 * MAX_STREAMS, 2)
    for stream_id in held:
        client.request(stream_id, "/sleep?s=0.5")
    extra = 2 * MAX_STREAMS + 1
    client.request(extra)
    assert client.answer(extra).reset == REFUSED_STREAM
    assert all(client.answer(stream_id).status == 200 for stream_id in held)
    still_serves(client, extra + 2)


# --- 5.4 error handling ---------------------------------------------------------------------


def test_5_4_1_after_a_connection_error_the_server_closes_the_connection(connect):
    client = connect()
    client.send(WindowUpdateFrame(0, 0))
    assert client.connection_error() == PROTOCOL_ERROR
    assert client.read_until_closed(timeout=5)


def test_5_4_1_the_goaway_names_the_last_stream_processed(connect):
    client = connect()
    client.request(1)
    client.answer(1)
    client.send(WindowUpdateFrame(0, 0))
    client.connection_error()
    assert client.goaway.last_stream_id == 1


def test_5_4_1_an_app_answering_on_a_failed_connection_sees_the_client_gone(server, connect):
    client = connect()
    client.request(1, "/h2/tick-until-gone?key=5.4.1")
    client.wait_for(lambda: client.stream(1).body, "the first tick")
    client.send(WindowUpdateFrame(0, 0))
    client.connection_error()

    def recorded() -> str:
        with H2Client(server.port) as other:
            other.request(1, "/h2/send-raised?key=5.4.1")
            return other.answer(1).body.decode()

    raised = wait_for(recorded, message="the app's send() to raise")
    assert raised.endswith("oserror=True"), raised


def test_5_4_2_a_stream_error_leaves_the_other_streams_served(connect):
    client = connect()
    client.request(1, "/sleep?s=0.3")
    client.send(client.headers_frame(3, request_fields() + [(b"X-Upper", b"1")]))
    assert client.answer(3).reset == PROTOCOL_ERROR
    assert client.answer(1).status == 200
    still_serves(client, 5)


# --- 5.5 extending HTTP/2 ---------------------------------------------------------------------


def test_5_5_an_unknown_frame_type_is_ignored(connect):
    client = connect()
    client.send(raw_frame(0xFA, b"extension"))
    still_serves(client, 1)


# --- 6.1-6.4 DATA, HEADERS, PRIORITY, RST_STREAM ------------------------------------------------


def test_6_1_data_on_stream_0_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(DATA, b"abc", 0, 0))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_2_headers_on_stream_0_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(HEADERS, client.block(request_fields()), END_HEADERS | END_STREAM, 0))
    assert client.connection_error() == PROTOCOL_ERROR


@pytest.mark.xfail(strict=True, reason="libnghttp2 ignores PRIORITY frames altogether (RFC 7540 "
                   "priorities deprecated), so one on stream 0 is not refused")
def test_6_3_priority_on_stream_0_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(PRIORITY, b"\x00\x00\x00\x01\x10", 0, 0))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_3_a_priority_frame_of_the_wrong_length_is_a_frame_size_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(raw_frame(PRIORITY, b"\x00\x00\x00\x00", 0, 1))
    assert stream_error(client, 1) == FRAME_SIZE_ERROR


def test_6_4_rst_stream_on_stream_0_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(RST_STREAM, b"\x00\x00\x00\x00", 0, 0))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_4_a_rst_stream_of_the_wrong_length_is_a_frame_size_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(raw_frame(RST_STREAM, b"\x00\x00\x00", 0, 1))
    assert client.connection_error() == FRAME_SIZE_ERROR


# --- 6.5 SETTINGS -------------------------------------------------------------------------------


def test_6_5_3_settings_are_acknowledged(connect):
    client = connect()
    acknowledged = client.settings_acks
    client.send(SettingsFrame(0, {MAX_CONCURRENT_STREAMS: 10}))
    client.wait_for(lambda: client.settings_acks > acknowledged, "the SETTINGS ACK")


def test_6_5_settings_on_a_stream_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(SETTINGS, b"", 0, 1))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_5_a_settings_ack_with_a_payload_is_a_frame_size_error(connect):
    client = connect()
    client.send(raw_frame(SETTINGS, struct.pack(">HI", MAX_CONCURRENT_STREAMS, 1), ACK))
    assert client.connection_error() == FRAME_SIZE_ERROR


def test_6_5_a_settings_length_not_a_multiple_of_6_is_a_frame_size_error(connect):
    client = connect()
    client.send(raw_frame(SETTINGS, b"\x00\x03\x00\x00\x00"))
    assert client.connection_error() == FRAME_SIZE_ERROR


def test_6_5_2_enable_push_other_than_0_or_1_is_a_connection_error(connect):
    client = connect()
    client.send(SettingsFrame(0, {ENABLE_PUSH: 2}))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_5_2_initial_window_size_over_2_31_minus_1_is_a_flow_control_error(connect):
    client = connect()
    client.send(SettingsFrame(0, {INITIAL_WINDOW_SIZE: MAX_WINDOW + 1}))
    assert client.connection_error() == FLOW_CONTROL_ERROR


def test_6_5_2_max_frame_size_below_16384_is_a_connection_error(connect):
    client = connect()
    client.send(SettingsFrame(0, {MAX_FRAME_SIZE: 16383}))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_5_2_max_frame_size_over_2_24_minus_1_is_a_connection_error(connect):
    client = connect()
    client.send(SettingsFrame(0, {MAX_FRAME_SIZE: 1 << 24}))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_5_2_an_unknown_setting_is_ignored(connect):
    client = connect()
    client.send(SettingsFrame(0, {0xF0F0: 7}))
    still_serves(client, 1)


# --- 6.6 PUSH_PROMISE, 6.7 PING, 6.8 GOAWAY ---------------------------------------------------


def test_6_6_a_push_promise_from_a_client_is_a_connection_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(raw_frame(PUSH_PROMISE, b"\x00\x00\x00\x02" + client.block(request_fields()),
                          END_HEADERS, 1))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_7_a_ping_is_answered_with_the_same_payload(connect):
    client = connect()
    client.send(PingFrame(0, b"\x00\x01hybrid"))
    client.wait_for(lambda: client.ping_acks, "the PING's ACK")
    assert client.ping_acks == [b"\x00\x01hybrid"]


def test_6_7_a_ping_ack_is_not_answered(connect):
    client = connect()
    client.send(PingFrame(0, b"unasked!", flags={"ACK"}))
    client.ping(b"answered")
    assert client.ping_acks == [b"answered"]


def test_6_7_ping_on_a_stream_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(PING, b"12345678", 0, 1))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_7_a_ping_of_the_wrong_length_is_a_frame_size_error(connect):
    client = connect()
    client.send(raw_frame(PING, b"1234567"))
    assert client.connection_error() == FRAME_SIZE_ERROR


def test_6_8_goaway_on_a_stream_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(GOAWAY, b"\x00" * 8, 0, 1))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_8_a_client_goaway_leaves_its_open_streams_answered(connect):
    client = connect()
    client.request(1, "/sleep?s=0.3")
    client.send(GoAwayFrame(0, last_stream_id=0, error_code=0))
    assert client.answer(1).status == 200


# --- 6.9 WINDOW_UPDATE and flow control ----------------------------------------------------


def test_6_9_a_zero_increment_on_a_stream_is_a_stream_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(WindowUpdateFrame(1, 0))
    assert stream_error(client, 1) == PROTOCOL_ERROR


def test_6_9_a_zero_increment_on_the_connection_is_a_connection_error(connect):
    client = connect()
    client.send(WindowUpdateFrame(0, 0))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_9_a_window_update_of_the_wrong_length_is_a_frame_size_error(connect):
    client = connect()
    client.send(raw_frame(WINDOW_UPDATE, b"\x00\x00\x01"))
    assert client.connection_error() == FRAME_SIZE_ERROR


def test_6_9_1_a_connection_window_past_2_31_minus_1_is_a_flow_control_error(connect):
    client = connect()
    client.send(WindowUpdateFrame(0, MAX_WINDOW))
    assert client.connection_error() == FLOW_CONTROL_ERROR


def test_6_9_1_a_stream_window_past_2_31_minus_1_is_a_flow_control_error(connect):
    client = connect()
    open_stream(client, 1)
    client.send(WindowUpdateFrame(1, MAX_WINDOW))
    assert stream_error(client, 1) == FLOW_CONTROL_ERROR


def test_6_9_1_data_past_the_stream_window_is_a_flow_control_error(connect):
    client = connect()
    open_stream(client, 1)  # an app that does not read: the window stays as announced
    window = client.server_settings.get(INITIAL_WINDOW_SIZE, 65535)
    client.send(*(client.data(1, b"x" * 16384) for _ in range(window // 16384 + 1)))
    assert stream_error(client, 1) == FLOW_CONTROL_ERROR


def test_6_9_1_the_response_waits_for_the_client_window(connect):
    client = connect({INITIAL_WINDOW_SIZE: 1})
    client.request(1)
    client.wait_for(lambda: client.stream(1).body, "the first byte")
    client.ping()  # whatever the server could send has been sent
    assert (client.stream(1).body, client.stream(1).ended) == (b"h", False)
    client.send(WindowUpdateFrame(1, 4))
    assert client.answer(1).body == b"hello"


def test_6_9_2_a_new_initial_window_size_opens_the_open_streams(connect):
    client = connect({INITIAL_WINDOW_SIZE: 1})
    client.request(1)
    client.wait_for(lambda: client.stream(1).body, "the first byte")
    client.send(SettingsFrame(0, {INITIAL_WINDOW_SIZE: 65535}))
    assert client.answer(1).body == b"hello"


def test_6_9_a_request_body_is_not_credited_before_the_app_reads_it(connect):
    client = connect()
    open_stream(client, 1, "/sleep?s=1")  # (which never reads its body)
    client.send(client.data(1, b"x" * 16384))
    client.ping()
    assert [increment for stream, increment in client.window_updates if stream == 1] == []


def test_6_9_a_body_larger_than_the_window_is_received_as_the_app_reads(connect):
    client = connect()
    body = bytes(range(256)) * 1024  # 256 KiB: four stream windows
    client.request(1, "/echo", "POST", end_stream=False)
    client.upload(1, body)
    client.send(WindowUpdateFrame(0, len(body)), WindowUpdateFrame(1, len(body)))
    answer = client.answer(1)
    assert (answer.status, answer.body == body) == (200, True)


# --- 6.10 CONTINUATION --------------------------------------------------------------------


def test_6_10_a_header_block_in_continuation_frames_is_served(connect):
    client = connect()
    block = client.block(request_fields())
    client.send(raw_frame(HEADERS, block[:3], END_STREAM, 1),
                raw_frame(CONTINUATION, block[3:6], 0, 1),
                raw_frame(CONTINUATION, block[6:], END_HEADERS, 1))
    assert client.answer(1).body == b"hello"


def test_6_10_a_frame_interleaved_in_a_header_block_is_a_connection_error(connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields(), end_headers=False),
                PingFrame(0, b"12345678"))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_10_a_continuation_of_another_stream_is_a_connection_error(connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields(), end_headers=False),
                raw_frame(CONTINUATION, b"", END_HEADERS, 3))
    assert client.connection_error() == PROTOCOL_ERROR


def test_6_10_a_continuation_without_headers_is_a_connection_error(connect):
    client = connect()
    client.send(raw_frame(CONTINUATION, client.block(request_fields()), END_HEADERS, 1))
    assert client.connection_error() == PROTOCOL_ERROR


# --- 8.1 HTTP message framing ----------------------------------------------------------------


MALFORMED = {
    "uppercase-field-name": request_fields() + [(b"X-Upper", b"1")],
    "connection": request_fields() + [(b"connection", b"keep-alive")],
    "keep-alive": request_fields() + [(b"keep-alive", b"timeout=5")],
    "proxy-connection": request_fields() + [(b"proxy-connection", b"keep-alive")],
    "transfer-encoding": request_fields() + [(b"transfer-encoding", b"chunked")],
    "upgrade": request_fields() + [(b"upgrade", b"websocket")],
    "te-not-trailers": request_fields() + [(b"te", b"gzip")],
    "no-method": request_fields()[1:],
    "no-scheme": [request_fields()[0], *request_fields()[2:]],
    "no-path": [*request_fields()[:2], *request_fields()[3:]],
    "empty-path": [*request_fields()[:2], (b":path", b""), *request_fields()[3:]],
    "pseudo-after-regular": [*request_fields()[:3], (b"x-a", b"1"), request_fields()[3]],
    "duplicate-pseudo": request_fields() + [(b":path", b"/")],
    "unknown-pseudo": request_fields() + [(b":hybrid", b"1")],
    "response-pseudo": request_fields() + [(b":status", b"200")],
    "value-with-leading-space": request_fields() + [(b"x-a", b" 1")],
    "value-with-crlf": request_fields() + [(b"x-a", b"1\r\nx-b: 2")],
    "value-with-nul": request_fields() + [(b"x-a", b"1\x002")],
}


@pytest.mark.parametrize("fields", MALFORMED.values(), ids=MALFORMED.keys())
def test_8_1_1_a_malformed_request_is_refused_on_its_stream_alone(connect, fields):
    client = connect()
    client.send(client.headers_frame(1, fields))
    assert refused_alone(client.answer(1))
    still_serves(client, 3)


@pytest.mark.parametrize("declared, sent", [(10, b"12345"), (2, b"12345")],
                         ids=["less-data", "more-data"])
def test_8_1_1_content_length_not_matching_the_data_is_malformed(connect, declared, sent):
    client = connect()
    client.send(client.headers_frame(1, request_fields("/echo", "POST") + [
        (b"content-length", b"%d" % declared)], end_stream=False),
        client.data(1, sent, end_stream=True))
    assert refused_alone(client.answer(1))
    still_serves(client, 3)


def test_8_1_trailers_end_a_request_body(connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields("/echo", "POST"), end_stream=False),
                client.data(1, b"body"),
                client.headers_frame(1, [(b"x-checksum", b"1")], end_stream=True))
    assert client.answer(1).body == b"body"


def test_8_1_a_response_to_head_has_no_body(connect):
    client = connect()
    client.request(1, "/", "HEAD")
    answer = client.answer(1)
    assert (answer.status, answer.field(b"content-length"), answer.body) == (200, b"5", b"")


def test_8_2_2_te_trailers_is_allowed(connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields() + [(b"te", b"trailers")]))
    assert client.answer(1).status == 200


def seen_headers(client: H2Client, fields: list[tuple[bytes, bytes]]) -> list[list[str]]:
    """The header fields the app's scope has for a request with `fields`."""
    client.send(client.headers_frame(1, fields))
    answer = client.answer(1)
    assert answer.status == 200, answer
    return json.loads(answer.body)["headers"]


def test_8_2_3_cookie_crumbs_reach_the_app_joined(connect):
    headers = seen_headers(connect(), request_fields("/scope") + [
        (b"cookie", b"a=1"), (b"x-between", b"2"), (b"cookie", b"b=2")])
    assert [value for name, value in headers if name == "cookie"] == ["a=1; b=2"]


def test_8_3_1_authority_alone_gives_the_app_a_host_header(connect):
    headers = seen_headers(connect(), request_fields("/scope"))
    assert ["host", "localhost"] in headers


def test_8_3_1_host_alone_is_taken(connect):
    headers = seen_headers(connect(), request_fields("/scope", authority=None) + [
        (b"host", b"example.org")])
    assert ["host", "example.org"] in headers


def test_8_3_1_a_host_differing_from_authority_is_refused(connect):
    client = connect()
    client.send(client.headers_frame(1, request_fields() + [(b"host", b"evil.example")]))
    assert refused_alone(client.answer(1))
    still_serves(client, 3)


# --- RFC 7541: HPACK ---------------------------------------------------------------------------


def compression_error_for(client: H2Client, block: bytes) -> int | None:
    client.send(raw_frame(HEADERS, block, END_HEADERS | END_STREAM, 1))
    return client.connection_error()


def test_rfc7541_2_3_2_the_dynamic_table_carries_over_between_header_blocks(connect):
    client = connect()
    fields = request_fields("/scope") + [(b"x-indexed", b"remembered")]
    client.send(client.headers_frame(1, fields))
    client.answer(1)
    second = client.block(fields)
    assert len(second) < 10  # (all of it references the dynamic table)
    client.send(HeadersFrame(3, second, flags={"END_STREAM", "END_HEADERS"}))
    assert ["x-indexed", "remembered"] in json.loads(client.answer(3).body)["headers"]


def test_rfc7541_2_3_3_an_index_past_the_tables_is_a_compression_error(connect):
    client = connect()
    assert compression_error_for(client, b"\xbe") == COMPRESSION_ERROR  # 62: the table is empty


def test_rfc7541_6_1_index_0_is_a_compression_error(connect):
    client = connect()
    assert compression_error_for(client, b"\x80") == COMPRESSION_ERROR


def test_rfc7541_4_2_a_table_size_update_over_the_setting_is_a_compression_error(connect):
    client = connect()
    update = b"\x3f\xe1\x3f"  # to 8192, over SETTINGS_HEADER_TABLE_SIZE (4096)
    block = update + client.block(request_fields())
    assert compression_error_for(client, block) == COMPRESSION_ERROR


def test_rfc7541_4_2_a_table_size_update_after_a_field_is_a_compression_error(connect):
    client = connect()
    block = client.block(request_fields()) + b"\x20"
    assert compression_error_for(client, block) == COMPRESSION_ERROR


def test_rfc7541_5_2_the_eos_symbol_in_a_huffman_string_is_a_compression_error(connect):
    client = connect()
    eos = b"\x40\x81\x61\x84\xff\xff\xff\xff"  # a literal whose value decodes EOS
    block = client.block(request_fields()) + eos
    assert compression_error_for(client, block) == COMPRESSION_ERROR
