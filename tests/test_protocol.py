"""The sans-IO core: bytes in, events out; status and headers in, bytes out.

Every parser case is fed whole, one byte at a time and in random splits:
the events must not depend on how the bytes were packetised.
"""

from __future__ import annotations

import random

import pytest

from hybrid.protocol import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    ProtocolError,
    Request,
    RequestParser,
    ResponseFramer,
    error_response,
)


def _splits(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    pieces, start = [], 0
    while start < len(data):
        end = start + rng.randint(1, 17)
        pieces.append(data[start:end])
        start = end
    return pieces


def parse(data: bytes, how: str = "whole", eof: bool = False) -> list:
    """All events for `data`, with adjacent Data events merged."""
    parser = RequestParser()
    out: list = []
    for piece in _splits(data, how):
        parser.feed(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, Data) and out and isinstance(out[-1], Data):
                out[-1] = Data(out[-1].data + event.data)
            else:
                out.append(event)
    if eof:
        parser.feed_eof()
        while (event := parser.next_event()) is not NEED_DATA:
            out.append(event)
    return out


SPLITS = pytest.mark.parametrize("how", ["whole", "bytewise", "random"])


def statuses(events: list) -> list[int]:
    return [e.status for e in events if isinstance(e, ProtocolError)]


@SPLITS
def test_simple_get_is_one_request_and_its_end(how):
    events = parse(b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing: v\r\n\r\n", how)
    request, end = events
    assert isinstance(request, Request)
    assert request.method == "GET"
    assert request.target == b"/a/b?x=1"
    assert request.path == b"/a/b" and request.query == b"x=1"
    assert request.http_version == "1.1"
    assert request.headers == [(b"host", b"example.com"), (b"x-thing", b"v")]
    assert request.keep_alive is True
    assert end == EndOfMessage([])


@pytest.mark.parametrize("head, keep_alive", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
])
def test_persistence_follows_version_and_connection(head, keep_alive):
    assert parse(head)[0].keep_alive is keep_alive


@SPLITS
def test_content_length_body_is_delivered(how):
    events = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", how)
    assert events[1:] == [Data(b"hello world"), EndOfMessage([])]


@SPLITS
def test_chunked_body_is_dechunked_with_trailers(how):
    events = parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", how)
    assert events[1:] == [Data(b"hello world"), EndOfMessage([(b"x-trailer", b"t")])]


@SPLITS
def test_pipelined_requests_come_out_in_order(how):
    events = parse(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                   b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", how)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Request", "Data", "EndOfMessage", "Request", "EndOfMessage"]
    assert [e.target for e in events if isinstance(e, Request)] == [b"/1", b"/2"]


def test_expect_continue_is_flagged_on_http11_only():
    head = b"POST / HTTP/%s\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    assert parse(head % b"1.1")[0].expect_continue is True
    assert parse(head % b"1.0")[0].expect_continue is False


def test_absolute_form_target_yields_path_and_query():
    request = parse(b"GET http://example.com:8080/p/q?z=9 HTTP/1.1\r\nHost: example.com\r\n\r\n")[0]
    assert request.target == b"http://example.com:8080/p/q?z=9"
    assert (request.path, request.query) == (b"/p/q", b"z=9")


def test_upgrade_request_keeps_the_bytes_that_follow():
    parser = RequestParser()
    parser.feed(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                b"\x81\x05frame")
    request = parser.next_event()
    assert request.upgrade is True
    assert parser.next_event() == EndOfMessage([])
    assert parser.upgraded_data == b"\x81\x05frame"


@SPLITS
def test_overlong_request_line_is_414(how):
    assert statuses(parse(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", how)) == [414]


@SPLITS
def test_too_many_fields_is_431(how):
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    assert statuses(parse(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", how)) == [431]


def test_oversized_field_is_431():
    assert statuses(parse(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 8190 + b"\r\n\r\n")) == [431]


@SPLITS
def test_header_block_is_bounded_however_it_is_split(how):
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    assert statuses(parse(b"GET / HTTP/1.1\r\n" + fields, how)) == [431]


def test_an_endless_header_value_is_cut_off():
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nX: ")
    for _ in range(100):
        parser.feed(b"v" * 4096)
    assert isinstance(parser.next_event(), ProtocolError)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_input_is_400(data):
    assert statuses(parse(data)) == [400]


def test_error_comes_after_the_requests_before_it():
    events = parse(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
    assert isinstance(events[0], Request) and isinstance(events[1], EndOfMessage)
    assert isinstance(events[2], ProtocolError)


def test_nothing_is_parsed_after_an_error():
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert isinstance(parser.next_event(), ProtocolError)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parser.next_event() is NEED_DATA


def test_close_between_requests_is_a_clean_close():
    events = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", eof=True)
    assert isinstance(events[-1], ConnectionClosed)


def test_close_in_the_middle_of_a_body_is_an_error():
    events = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", eof=True)
    assert isinstance(events[-1], ProtocolError)
    assert not any(isinstance(e, EndOfMessage) for e in events)


# --- responses -------------------------------------------------------------------

def head(framer: ResponseFramer, status=200, headers=(), method="GET", version="1.1",
         keep_alive=True) -> bytes:
    return framer.head(method, version, keep_alive, status, b"OK", list(headers))


def test_response_with_content_length_is_sent_as_is():
    framer = ResponseFramer()
    raw = head(framer, headers=[(b"Content-Length", b"5")])
    assert b"content-length: 5\r\n" in raw and b"chunked" not in raw
    assert framer.body(b"12345") == b"12345"
    assert framer.end() == b""
    assert framer.keep_alive is True


def test_bytes_beyond_content_length_are_dropped_and_the_connection_closes():
    framer = ResponseFramer()
    head(framer, headers=[(b"Content-Length", b"3")])
    assert framer.body(b"abcdef") == b"abc"
    assert framer.keep_alive is False


def test_fewer_bytes_than_content_length_close_the_connection():
    framer = ResponseFramer()
    head(framer, headers=[(b"Content-Length", b"10")])
    framer.body(b"abc")
    framer.end()
    assert framer.keep_alive is False


def test_http11_without_length_is_chunked():
    framer = ResponseFramer()
    assert b"transfer-encoding: chunked\r\n" in head(framer)
    assert framer.body(b"hello") == b"5\r\nhello\r\n"
    assert framer.body(b"") == b""
    assert framer.end() == b"0\r\n\r\n"


def test_http10_without_length_is_delimited_by_close():
    framer = ResponseFramer()
    raw = head(framer, version="1.0")
    assert b"chunked" not in raw and b"connection: close\r\n" in raw
    assert framer.body(b"x") == b"x"
    assert framer.keep_alive is False


@pytest.mark.parametrize("status, method", [(204, "GET"), (304, "GET"), (200, "HEAD"), (101, "GET")])
def test_bodiless_responses_never_carry_body_bytes(status, method):
    framer = ResponseFramer()
    raw = head(framer, status=status, method=method)
    assert b"chunked" not in raw
    assert framer.body(b"ignored") == b""
    assert framer.end() == b""


def test_head_response_keeps_the_apps_content_length():
    framer = ResponseFramer()
    assert b"content-length: 42\r\n" in head(framer, method="HEAD", headers=[(b"Content-Length", b"42")])


def test_204_drops_content_length():
    framer = ResponseFramer()
    assert b"content-length" not in head(framer, status=204, headers=[(b"Content-Length", b"0")])


def test_apps_connection_close_is_honoured_once():
    framer = ResponseFramer()
    raw = head(framer, headers=[(b"Connection", b"close"), (b"Content-Length", b"0")])
    assert raw.lower().count(b"connection:") == 1
    assert framer.keep_alive is False


@pytest.mark.parametrize("header", [
    (b"X-Bad", b"a\r\nSet-Cookie: x=1"),
    (b"X-Bad", b"a\nb"),
    (b"X-Bad", b"a\x00b"),
    (b"Bad Name", b"v"),
    (b"Bad:Name", b"v"),
    (b"", b"v"),
])
def test_headers_that_would_split_the_response_are_refused(header):
    with pytest.raises(LocalProtocolError):
        head(ResponseFramer(), headers=[header])


def test_response_has_date_and_server():
    raw = head(ResponseFramer())
    assert b"\r\ndate: " in raw and b"\r\nserver: hybrid\r\n" in raw


def test_error_response_is_plain_text_and_closes():
    raw = error_response(431, "too many header fields")
    assert raw.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close\r\n" in raw
    head_part, body = raw.split(b"\r\n\r\n", 1)
    assert b"content-length: %d\r\n" % len(body) in head_part
    assert body == b"431 Request Header Fields Too Large\ntoo many header fields\n"
