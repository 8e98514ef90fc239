"""The response side of the core: framing chosen once, bytes exact."""

from __future__ import annotations

import pytest

from hybrid.protocol import LocalProtocolError, ResponseFramer, error_response


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


@pytest.mark.parametrize("headers, data", [
    ([(b"Content-Length", b"5")], b"12345"),  # exact
    ([(b"Content-Length", b"3")], b"abcdef"),  # too long
    ([(b"Content-Length", b"10")], b"abc"),  # too short
    ([], b"hello"),  # chunked
    ([], b""),  # chunked, empty
])
def test_a_last_piece_is_framed_as_a_piece_and_the_end(headers, data):
    piecewise, at_once = ResponseFramer(), ResponseFramer()
    head(piecewise, headers=headers)
    head(at_once, headers=headers)
    assert at_once.last(data) == piecewise.body(data) + piecewise.end()
    assert (at_once.keep_alive, at_once.bytes_sent) == (piecewise.keep_alive,
                                                        piecewise.bytes_sent)
    assert at_once.length_remaining == piecewise.length_remaining


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


@pytest.mark.parametrize("status, method", [(204, "GET"), (304, "GET"), (200, "HEAD")])
def test_bodiless_responses_never_carry_body_bytes(status, method):
    framer = ResponseFramer()
    raw = head(framer, status=status, method=method)
    assert b"chunked" not in raw
    assert framer.body(b"ignored") == b""
    assert framer.end() == b""


@pytest.mark.parametrize("status", [100, 101, 103, 199, 99, 1000])
def test_a_final_response_refuses_an_interim_or_impossible_status(status):
    with pytest.raises(LocalProtocolError):
        head(ResponseFramer(), status=status)


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


def test_a_repeated_head_gets_the_same_framing_each_time():
    fields = [(b"content-type", b"text/plain"), (b"content-length", b"3")]
    first, second = ResponseFramer(), ResponseFramer()
    assert head(first, headers=fields) == head(second, headers=fields)
    assert second.body(b"abcdef") == b"abc" and second.keep_alive is False


def test_a_repeated_head_carries_the_current_date(monkeypatch):
    fields = [(b"content-length", b"0")]
    monkeypatch.setattr("hybrid.protocol.response.time.time", lambda: 0.0)
    assert b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in head(ResponseFramer(), headers=fields)
    monkeypatch.setattr("hybrid.protocol.response.time.time", lambda: 86400.0)
    assert b"date: Fri, 02 Jan 1970 00:00:00 GMT\r\n" in head(ResponseFramer(), headers=fields)


def test_heads_differing_only_in_keep_alive_are_framed_apart():
    fields = [(b"content-length", b"0")]
    assert b"connection: close" not in head(ResponseFramer(), headers=fields)
    closing = ResponseFramer()
    assert b"connection: close\r\n" in head(closing, headers=fields, keep_alive=False)
    assert closing.keep_alive is False


def test_header_pairs_given_as_lists_are_framed_like_tuples():
    framer = ResponseFramer()
    raw = head(framer, headers=[[b"x-a", b"1"], [b"content-length", b"2"]])
    assert b"x-a: 1\r\ncontent-length: 2\r\n" in raw
    assert framer.body(b"ok") == b"ok"


def test_an_invalid_head_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(LocalProtocolError):
            head(ResponseFramer(), headers=[(b"x-a", b"1\r\nx-b: 2")])


@pytest.mark.parametrize("header", [("content-type", b"text/plain"), (b"content-type", "text/plain")])
def test_a_header_given_as_str_is_refused_with_its_name(header):
    with pytest.raises(LocalProtocolError, match="content-type.*must be bytes"):
        ResponseFramer().head("GET", "1.1", True, 200, b"OK", [header])
