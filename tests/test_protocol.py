"""The sans-IO request parser, rule by rule (RFC 9110 / 9112).

Every case is fed whole, one byte at a time and in random splits: the
events must not depend on how the bytes were packetised (the parser has a
fast path for whole reads and a careful one for split heads; both must
agree).
"""

from __future__ import annotations

import random

import httptools
import pytest

from hybrid.native import build
from hybrid.protocol import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    RequestParser,
)
from hybrid.protocol.parser import AFTER_CLOSE_REFUSED, HTTP2_PREFACE_REFUSED

HOW = ["whole", "bytewise", "random"]


def _splits(data: bytes, how: str, seed: int = 0) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    if how.startswith("cut at "):  # two reads, where a case needs them cut
        cut = int(how[len("cut at "):])
        return [data[:cut], data[cut:]]
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        end = start + rng.randint(1, 23)
        pieces.append(data[start:end])
        start = end
    return pieces


def _feed(data: bytes, how: str, eof: bool, limits: Limits, seed: int = 0) -> list:
    parser = RequestParser(limits)
    out: list = []
    for piece in _splits(data, how, seed):
        out.extend(parser.feed(piece))
    if eof:
        out.extend(parser.feed_eof())
    merged: list = []
    for event in out:
        if isinstance(event, Data) and merged and isinstance(merged[-1], Data):
            merged[-1] = Data(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


def parse(data: bytes, eof: bool = False, limits: Limits = Limits()) -> list:
    """The events for `data`, checked to be the same however it is split."""
    whole = _feed(data, "whole", eof, limits)
    for how in ("bytewise", "random"):
        for seed in range(3 if how == "random" else 1):
            split = _feed(data, how, eof, limits, seed)
            assert _comparable(split) == _comparable(whole), how
    return whole


def _comparable(events: list) -> list:
    return [(type(e).__name__, e.status) if isinstance(e, ProtocolError) else e for e in events]


def decided(data: bytes, how: str, eof: bool = False, limits: Limits = Limits()) -> list:
    """The events for `data` fed `how`, an error as its (status, detail): the
    reason too must not depend on the split."""
    return [(e.status, e.detail) if isinstance(e, ProtocolError) else e
            for e in _feed(data, how, eof, limits)]


def error(data: bytes, **kwargs) -> int:
    """The status of the ProtocolError that `data` ends in; no request reaches the app."""
    events = parse(data, **kwargs)
    assert isinstance(events[-1], ProtocolError), events
    assert not any(isinstance(e, Request) for e in events), events
    return events[-1].status


def body_error(data: bytes) -> int:
    """For errors only the body reveals: the head passes, the body fails."""
    events = parse(data)
    assert isinstance(events[0], Request)
    assert isinstance(events[-1], ProtocolError), events
    assert not any(isinstance(e, EndOfMessage) for e in events)
    return events[-1].status


def head(*fields: bytes, line: bytes = b"POST / HTTP/1.1", host: bool = True) -> bytes:
    return line + b"\r\n" + (b"Host: x\r\n" if host else b"") + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


CHUNKED = b"Transfer-Encoding: chunked"


# --- a well-formed exchange -------------------------------------------------------

def test_simple_get_is_one_request_and_its_end():
    request, end = parse(b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing: v\r\n\r\n")
    assert request.method == "GET"
    assert request.target == b"/a/b?x=1"
    assert (request.path, request.query) == (b"/a/b", b"x=1")
    assert request.http_version == "1.1"
    assert request.headers == [(b"host", b"example.com"), (b"x-thing", b"v")]
    assert request.keep_alive is True
    assert end == EndOfMessage(())


@pytest.mark.parametrize("data, keep_alive", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
])
def test_persistence_follows_version_and_connection(data, keep_alive):
    assert parse(data)[0].keep_alive is keep_alive


CLOSING = {
    "Connection: close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "HTTP/1.0": b"GET / HTTP/1.0\r\n\r\n",
    "HTTP/1.0 with a body": b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    "Connection: close, chunked": (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("how", [*HOW, "cut at 18"])
@pytest.mark.parametrize("closing", list(CLOSING))
def test_no_request_is_read_after_one_that_closes_the_connection(closing, how):
    # RFC 9112 section 9.6: the server must not process a request that follows.
    events = decided(CLOSING[closing] + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", how)
    assert [e.target for e in events if isinstance(e, Request)] == [b"/"]
    assert type(events[-2]) is EndOfMessage
    assert events[-1] == (400, AFTER_CLOSE_REFUSED)


@pytest.mark.parametrize("how", [*HOW, "cut at 46"])
def test_a_byte_after_a_request_that_closes_the_connection_is_refused_at_once(how):
    events = decided(CLOSING["Connection: close"] + b"X", how)
    assert events[-1] == (400, AFTER_CLOSE_REFUSED)


@pytest.mark.parametrize("how", HOW)
def test_cr_and_lf_after_a_request_that_closes_the_connection_are_skipped(how):
    events = decided(CLOSING["HTTP/1.0"] + b"\r\n\n\r", how, eof=True)
    assert [type(e) for e in events] == [Request, EndOfMessage, ConnectionClosed]


@pytest.mark.parametrize("how", HOW)
def test_an_upgrade_declined_reads_no_request_after_it_if_it_closes_the_connection(how):
    upgrade = b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    parser = RequestParser()
    events = []
    for piece in _splits(upgrade + b"GET /next HTTP/1.0\r\n\r\n", how):
        events += parser.feed(piece) + parser.resume()
    assert [e.target for e in events if isinstance(e, Request)] == [b"/ws"]
    assert (events[-1].status, events[-1].detail) == (400, AFTER_CLOSE_REFUSED)


def test_http10_without_host_is_served():
    assert isinstance(parse(b"GET / HTTP/1.0\r\n\r\n")[0], Request)


def test_content_length_body_is_delivered():
    events = parse(head(b"Content-Length: 11") + b"hello world")
    assert events[1:] == [Data(b"hello world"), EndOfMessage(())]


def test_content_length_with_leading_zeros_is_valid():
    assert parse(head(b"Content-Length: 003") + b"abc")[1] == Data(b"abc")


def test_content_length_zero_has_no_body():
    assert parse(head(b"Content-Length: 0"))[1:] == [EndOfMessage(())]


def test_body_arriving_later_is_delivered_as_it_comes():
    parser = RequestParser()
    assert [type(e) for e in parser.feed(head(b"Content-Length: 6") + b"abc")] == [Request, Data]
    assert parser.feed(b"def") == [Data(b"def"), EndOfMessage(())]


@pytest.mark.parametrize("how", HOW)
def test_body_remaining_counts_down_a_content_length_body(how):
    parser = RequestParser()
    remaining = []
    for piece in _splits(head(b"Content-Length: 6") + b"abcdef" + b"GET / HTTP/1.1\r\n", how):
        parser.feed(piece)
        remaining.append(parser.body_remaining)
    assert max(remaining) <= 6 and remaining[-1] == 0
    parser = RequestParser()
    parser.feed(head(b"Content-Length: 6") + b"ab")
    assert parser.body_remaining == 4


def test_body_remaining_of_a_chunked_body_is_unknown():
    parser = RequestParser()
    parser.feed(head(CHUNKED) + b"3\r\nabc\r\n")
    assert parser.body_remaining is None
    parser.feed(b"0\r\n\r\n")
    assert parser.body_remaining == 0


@pytest.mark.parametrize("body", [head(CHUNKED) + b"3\r\nabc\r\n0\r\n\r\n",
                                  head(b"Content-Length: 3") + b"abc", head()])
def test_no_message_is_in_progress_after_one_ends(body):
    parser = RequestParser()
    assert type(parser.feed(body)[-1]) is EndOfMessage
    assert not parser.in_message


def test_pipelined_requests_come_out_in_order():
    data = (head(b"Content-Length: 3", line=b"POST /1 HTTP/1.1") + b"abc" +
            head(line=b"GET /2 HTTP/1.1") +
            head(CHUNKED, line=b"POST /3 HTTP/1.1") + b"2\r\nhi\r\n0\r\n\r\n" +
            head(line=b"GET /4 HTTP/1.1"))
    events = parse(data)
    assert [e.target for e in events if isinstance(e, Request)] == [b"/1", b"/2", b"/3", b"/4"]
    assert [type(e).__name__ for e in events] == [
        "Request", "Data", "EndOfMessage", "Request", "EndOfMessage",
        "Request", "Data", "EndOfMessage", "Request", "EndOfMessage"]


def test_empty_lines_before_a_request_are_ignored():
    assert isinstance(parse(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")[0], Request)


def test_expect_continue_is_flagged_on_http11_only():
    assert parse(head(b"Expect: 100-continue", b"Content-Length: 1") + b"x")[0].expect_continue
    data = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
    assert not parse(data)[0].expect_continue


def test_field_values_lose_surrounding_whitespace():
    request = parse(head(b"X-A: \t padded \t ", b"X-B:plain", line=b"GET / HTTP/1.1"))[0]
    assert (b"x-a", b"padded") in request.headers
    assert (b"x-b", b"plain") in request.headers


def test_obs_text_in_values_is_kept():
    request = parse(head(b"X-Name: caf\xc3\xa9", line=b"GET / HTTP/1.1"))[0]
    assert (b"x-name", b"caf\xc3\xa9") in request.headers


# The parser builds Request and Data by position (events.new_event_by_position):
# these fail first if their fields are reordered, added or removed.

def test_request_fields_are_in_the_order_the_parser_builds_them():
    assert Request._fields == ("method", "target", "path", "query", "http_version", "headers",
                               "keep_alive", "expect_continue", "upgrade", "forwarded")


def test_data_has_the_one_field_the_parser_builds_it_with():
    assert Data._fields == ("data",)


@pytest.mark.parametrize("how", HOW)
def test_a_parsed_request_equals_one_built_by_keyword(how):
    data = (b"PUT /p?q=1 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nX-Forwarded-For: 1.2.3.4\r\n"
            b"Content-Length: 2\r\n\r\nab")
    request, body, end = _feed(data, how, False, Limits())
    assert request == Request(
        method="PUT", target=b"/p?q=1", path=b"/p", query=b"q=1", http_version="1.1",
        headers=[(b"host", b"h"), (b"expect", b"100-continue"), (b"x-forwarded-for", b"1.2.3.4"),
                 (b"content-length", b"2")],
        keep_alive=True, expect_continue=True, upgrade=False, forwarded=True)
    assert body == Data(data=b"ab")


@pytest.mark.parametrize("how", ["whole", "bytewise"])  # the fast path, the careful one
def test_a_body_under_way_answers_the_same_on_either_path(how):
    parser = RequestParser()
    for piece in _splits(head(b"Content-Length: 5") + b"ab", how):
        parser.feed(piece)
    assert parser.in_message
    assert parser.body_remaining == 3
    assert parser.timeout_error().detail == "the request body stalled"


# --- message framing (RFC 9112 section 6) ---------------------------------------------

def test_chunked_body_is_dechunked_with_trailers():
    events = parse(head(CHUNKED) + b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert events[1:] == [Data(b"hello world"), EndOfMessage(((b"X-Trailer", b"t"),))]


@pytest.mark.parametrize("size_line", [
    b"5;name", b"5;name=value", b"5 ; name = value", b"5\t;\tname\t=\tvalue",
    b'5;name="quoted \\" value"', b"5;a=1;b;c=\"x\"", b"0005",
])
def test_chunk_extensions_are_parsed_and_ignored(size_line):
    events = parse(head(CHUNKED) + size_line + b"\r\nhello\r\n0\r\n\r\n")
    assert events[1] == Data(b"hello")


@pytest.mark.parametrize("size_line", [
    b'5;name="unterminated', b"5;name=val\x01ue", b"5;", b"5;=v", b"5;name=", b"0x5", b"-5",
    b" 5", b"5;na me=v", b'5;n="\x00"', b"", b"zz",
])
def test_malformed_chunk_size_lines_are_400(size_line):
    assert body_error(head(CHUNKED) + size_line + b"\r\nhello\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize("size_line", [b"5 ", b"5\t", b"5  ", b"5;a=b ", b"5;a \t"])
def test_whitespace_at_the_end_of_a_chunk_size_line_is_400(size_line):
    # RFC 9112 section 7.1: BWS only before a ";" (and around an extension's "=").
    assert body_error(head(CHUNKED) + size_line + b"\r\nhello\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize("size", [b"F" * 17, b"10000000000000003", b"FFFFFFFFFFFFFFFF", b"8000000000000000"])
def test_chunk_sizes_that_overflow_are_400(size):
    assert body_error(head(CHUNKED) + size + b"\r\nabc\r\n0\r\n\r\n") == 400


def test_chunk_data_longer_than_its_size_is_400():
    assert body_error(head(CHUNKED) + b"3\r\nabcdef\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize("trailer", [
    b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Host: evil.example", b"Trailer: x",
    b"Connection: close", b"Keep-Alive: timeout=5", b"Upgrade: h2c", b"TE: trailers",
    b"connection: close", b"CONTENT-LENGTH: 5",
])
def test_framing_routing_and_hop_by_hop_fields_in_trailers_are_400(trailer):
    assert body_error(head(CHUNKED) + b"0\r\n" + trailer + b"\r\nX-Kept: 1\r\n\r\n") == 400


@pytest.mark.parametrize("trailer", [
    b"Content-Type: text/plain", b"Vary: *", b"Authorization: Basic eA==", b"Cookie: a=1",
    b"Set-Cookie: a=1", b"Range: bytes=0-1", b"If-Match: *", b"If-None-Match: \"x\"",
    b"If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", b"Content-Encoding: gzip",
    b"Content-Range: bytes 0-1/2", b"Cache-Control: no-cache", b"Expect: 100-continue",
    b"Max-Forwards: 1", b"Proxy-Authorization: Basic eA==", b"Proxy-Connection: close",
])
def test_fields_that_cannot_reframe_or_reroute_are_accepted_in_trailers(trailer):
    # RFC 9110 section 6.5.2: kept apart from the header section, so they change nothing.
    events = parse(head(CHUNKED) + b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n")
    name, _, value = trailer.partition(b": ")
    assert events[1:] == [Data(b"hello"), EndOfMessage(((name, value),))]
    assert name.lower() not in dict(events[0].headers)


def test_other_trailer_fields_reach_the_end_of_the_message():
    events = parse(head(CHUNKED) + b"0\r\nX-Checksum: abc\r\n\r\n" +
                   head(line=b"GET /next HTTP/1.1"))
    assert events[1] == EndOfMessage(((b"X-Checksum", b"abc"),))
    assert events[2].target == b"/next"


@pytest.mark.parametrize("field", [b"Content-Type: text/plain", b"Authorization: Basic eA==",
                                   b"Proxy-Authorization: Basic eA=="])
def test_a_singleton_field_sent_twice_is_400(field):
    assert error(head(field, field.upper())) == 400


def test_list_fields_sent_twice_are_kept():
    request = parse(head(b"Accept: a", b"Accept: b", b"Cache-Control: x", b"Cache-Control: y"))[0]
    assert [v for n, v in request.headers if n == b"accept"] == [b"a", b"b"]


@pytest.mark.parametrize("trailer", [b"Bad Name: v", b"X: a\x00b", b" X: folded", b"NoColon"])
def test_malformed_trailers_are_400(trailer):
    assert body_error(head(CHUNKED) + b"0\r\n" + trailer + b"\r\n\r\n") == 400


def test_transfer_encoding_and_content_length_together_are_400():
    assert error(head(b"Content-Length: 3", CHUNKED) + b"0\r\n\r\n") == 400


@pytest.mark.parametrize("coding, status", [
    (b"gzip", 400), (b"identity", 400), (b"chunked, gzip", 400), (b"chunked, chunked", 400),
    (b"gzip, chunked", 501), (b"deflate, chunked", 501), (b"x-unknown, chunked", 501),
    (b"chunked;x=1", 400), (b"", 400), (b"chunked,", 400),
])
def test_transfer_codings_other_than_a_final_chunked_are_refused(coding, status):
    assert error(head(b"Transfer-Encoding: " + coding) + b"0\r\n\r\n") == status


def test_transfer_encoding_split_over_two_fields_is_one_list():
    assert error(head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked")) == 400


def test_transfer_coding_names_are_case_insensitive():
    assert parse(head(b"Transfer-Encoding: ChUnKeD") + b"1\r\nx\r\n0\r\n\r\n")[1] == Data(b"x")


def test_chunked_on_http10_is_400():
    assert error(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize("fields", [
    [b"Content-Length: 3", b"Content-Length: 4"],
    [b"Content-Length: 3, 4"],
    [b"Content-Length: -3"],
    [b"Content-Length: 0x3"],
    [b"Content-Length: "],
    [b"Content-Length: 3a"],
    [b"Content-Length: three"],
    [b"Content-Length: +3"],
    [b"Content-Length: 3.0"],
    [b"Content-Length: 99999999999999999999999"],
])
def test_bad_content_length_is_400(fields):
    assert error(head(*fields) + b"abcd") == 400


# --- the header block (RFC 9112 section 5, RFC 9110 section 5.5) ---------------------------

@pytest.mark.parametrize("field", [
    b"Host : x",            # whitespace between name and colon
    b"X-Name\t: v",
    b"Bad Name: v",         # names are tokens
    b"Bad(Name): v",
    b": no name",
    b"X: a\x00b",           # NUL
    b"X: a\rb",             # lone CR
    b"X: a\x7fb",           # DEL
    b"X: a\x01b",           # other controls
])
def test_malformed_fields_are_400(field):
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n") == 400


def test_obs_fold_is_400():
    # RFC 9112 section 5.2 allows 400 or replacing the fold with SP: we refuse.
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  b\r\n\r\n") == 400


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: example.com:abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h:x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:800p\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1]:x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n",
])
def test_http11_needs_exactly_one_valid_host(data):
    assert error(data) == 400


@pytest.mark.parametrize("host", [b"example.com", b"example.com:8443", b"127.0.0.1:80",
                                  b"[::1]:8000", b"[::1]", b"h:"])
def test_a_host_with_a_port_of_digits_or_none_is_valid(host):
    (request, _) = parse(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert isinstance(request, Request)


@pytest.mark.parametrize("how", [*HOW, "cut at 27"])
def test_the_syntax_of_the_field_lines_is_judged_before_the_host(how):
    # httptools hands a field over once the next one begins, which the reads'
    # split decides: the Host rule waits for the head's end, and llhttp's
    # verdict on the lines after it comes first, however they are split.
    data = b"GET / HTTP/1.1\r\nHost: x/\r\nT\r\n\r\n"
    assert decided(data, how) == [(400, "Invalid header token")]
    assert decided(b"GET / HTTP/1.1\r\nHost: x/\r\nT: v\r\n\r\n", how) == [(400, "invalid Host header")]


def test_a_valid_host_remembered_does_not_let_an_invalid_port_through():
    parser = RequestParser(Limits())
    assert isinstance(parser.feed(b"GET / HTTP/1.1\r\nHost: h:80\r\n\r\n")[0], Request)
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n")
    assert [e.status for e in events if isinstance(e, ProtocolError)] == [400]


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
])
def test_bare_lf_in_a_head_is_400(data):
    # RFC 9112 section 2.2 lets a recipient accept a bare LF; we refuse it everywhere.
    assert error(data) == 400


def test_bare_lf_in_a_chunk_size_line_is_400():
    assert body_error(head(CHUNKED) + b"3\nabc\r\n0\r\n\r\n") == 400


# --- the request line (RFC 9112 section 3) ------------------------------------------------

@pytest.mark.parametrize("method", [b"-BLARGH", b"BLARGH", b"BREW", b"get", b"FOO_BAR", b"X",
                                    b"PROPFINDX", b"PURGEX", b"M-FOO", b"GETX", b"~!#$%&'*+.^_`|",
                                    b"PRIX", b"PRI_X", b"PLAYX"])
def test_any_method_token_reaches_the_app_by_its_name(method):
    # llhttp knows a fixed list; every other token is parsed with a stand-in.
    request = parse(method + b" /p?q HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert (request.method, request.path, request.query) == (method.decode(), b"/p", b"q")


@pytest.mark.parametrize("method", [b"PLAY", b"SETUP", b"TEARDOWN", b"GET_PARAMETER"])
def test_the_methods_llhttp_keeps_for_rtsp_are_400_however_split(method):
    # llhttp refuses them only at the version, after the target: a known gap.
    assert error(method + b" /p HTTP/1.1\r\nHost: x\r\n\r\n") == 400


def test_an_unknown_method_keeps_its_body_framing():
    events = parse(b"BREW /pot HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\ncoffeGET / HTTP/1.1\r\n"
                   b"Host: x\r\n\r\n")
    assert [type(e).__name__ for e in events] == ["Request", "Data", "EndOfMessage", "Request", "EndOfMessage"]
    assert (events[0].method, events[1].data, events[3].method) == ("BREW", b"coffe", "GET")


def test_an_unknown_method_keeps_a_chunked_body():
    events = parse(b"BREW / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntea\r\n0\r\n\r\n")
    assert (events[0].method, events[1].data) == ("BREW", b"tea")


@pytest.mark.parametrize("before", [b"", b"P", b"PP", b"AB-", b"\r\n"])
def test_an_unknown_method_after_a_body_that_looks_like_one_keeps_its_name(before):
    # The body ends in bytes llhttp would take for a method's start: however
    # the reads split them, the next request's method is exactly its own.
    body = b"xy" + before
    first = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    events = parse(first + b"PROPFINDX /q HTTP/1.1\r\nHost: x\r\n\r\n")
    requests = [e for e in events if isinstance(e, Request)]
    assert [r.method for r in requests] == ["POST", "PROPFINDX"]
    assert [e.data for e in events if isinstance(e, Data)] == [body]


@pytest.mark.parametrize("body, method", [(b"ABP", b"PROPFINDX"), (b"x", b"GET_X"), (b"S", b"SET_PARAMETERX")])
def test_an_unknown_method_cut_anywhere_after_a_pipelined_request_keeps_its_name(body, method):
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body + method +
            b" /q HTTP/1.1\r\nHost: x\r\n\r\n")
    for cut in range(1, len(data)):
        parser = RequestParser()
        events = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert [e.method for e in events if isinstance(e, Request)] == ["POST", method.decode()], cut


@pytest.mark.skipif(build().compiled, reason="it counts the calls of a module function by "
                    "monkeypatching it, which compiled callers do not see")
def test_a_method_trickling_in_is_located_once_not_at_every_byte(monkeypatch):
    # Where the method began is found by parsing the read it started in
    # again; doing that for every byte that follows would be quadratic.
    from hybrid.protocol import parser as module
    calls = []
    original = module._ends_between_messages
    monkeypatch.setattr(module, "_ends_between_messages", lambda data: calls.append(1) or original(data))
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxPROPPATC")
    for _ in range(50):
        parser.feed(b"X")
    found = len(calls)
    assert 0 < found <= len(b"PROPPATC") + 2
    events = parser.feed(b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert events[0].method == "PROPPATC" + "X" * 50
    assert len(calls) == found


def test_a_field_line_over_the_limit_is_431_wherever_the_reads_split_it():
    data = field_line(8191)
    for cut in range(len(data) - 8190, len(data)):
        parser = RequestParser()
        events = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert [e.status for e in events if isinstance(e, ProtocolError)] == [431], cut


@pytest.mark.parametrize("data", [b"BR(W / HTTP/1.1\r\nHost: x\r\n\r\n", b"BREW\t/ HTTP/1.1\r\n\r\n",
                                  b"BR\xc3\xa9W / HTTP/1.1\r\n\r\n", b"BREW\r\n\r\n",
                                  b" / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n / HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_a_method_that_is_not_a_token_is_400(data):
    assert error(data) == 400


def test_an_endless_method_is_414():
    assert error(b"A" * 5000) == 414


@pytest.mark.parametrize("how", [*HOW, "cut at 4095"])
@pytest.mark.parametrize("after", [b"(", b" / HTTP/1.1\r\n" + b"X: v\r\n" * 120 + b"\r\n"])
def test_a_method_over_the_request_line_limit_is_414_whatever_follows_it(after, how):
    # Said at its byte too many: not a 400 for a byte after it, nor a 431 for the fields.
    assert decided(b"M" * 4095 + after, how) == [(414, "request line too long")]


@pytest.mark.parametrize("data", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"G(T / HTTP/1.1\r\n\r\n"])
def test_garbage_instead_of_a_method_is_400(data):
    assert error(data) == 400


@pytest.mark.parametrize("method", [b"GET", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"PROPFIND", b"QUERY",
                                    b"PURGE"])
def test_registered_methods_are_served(method):
    assert parse(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")[0].method == method.decode()


def test_absolute_form_gives_path_and_query():
    request = parse(b"GET http://example.com:8080/p/q?z=9 HTTP/1.1\r\nHost: example.com\r\n\r\n")[0]
    assert request.target == b"http://example.com:8080/p/q?z=9"
    assert (request.path, request.query) == (b"/p/q", b"z=9")


def test_absolute_form_without_path_is_root():
    request = parse(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")[0]
    assert request.path == b"/"


def test_absolute_form_with_a_port_that_is_not_digits_is_400():
    assert error(b"GET http://h:x/p HTTP/1.1\r\nHost: h\r\n\r\n") == 400


def test_authority_form_is_for_connect_only():
    request = parse(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")[0]
    assert request.method == "CONNECT" and request.target == b"example.com:443"
    assert error(b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n") == 400
    assert error(b"CONNECT /path HTTP/1.1\r\nHost: x\r\n\r\n") == 400


def test_asterisk_form_is_for_options_only():
    assert parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")[0].path == b"*"
    assert error(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n") == 400


def test_raw_target_is_kept_and_path_stays_encoded():
    request = parse(b"GET /a%2Fb%20c?q=%41 HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert request.target == b"/a%2Fb%20c?q=%41"
    assert request.path == b"/a%2Fb%20c"


def test_fragment_is_not_part_of_path_or_query():
    request = parse(b"GET /a?b=1#frag HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert (request.path, request.query) == (b"/a", b"b=1")


@pytest.mark.parametrize("target", [b"/a\x01b", b"/caf\xc3\xa9", b"/a\tb"])
def test_invalid_target_characters_are_400(target):
    assert error(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 400


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/3.0"])
def test_unsupported_versions_are_505(version):
    assert error(b"GET / " + version + b"\r\nHost: x\r\n\r\n") == 505


def test_http2_connection_preface_is_505():
    assert error(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505


def test_the_method_pri_is_505_however_split():
    assert error(b"PRI / HTTP/1.1\r\nHost: x\r\n\r\n") == 505


@pytest.mark.parametrize("how", [*HOW, "cut at 5"])
def test_the_method_pri_is_judged_at_its_version_like_any_other(how):
    # A version that is no version is a 400 first, whatever the method.
    assert decided(b"PRI / http/1.1\r\n\r\n", how) == [(400, "Expected HTTP/, RTSP/ or ICE/")]


@pytest.mark.parametrize("how", HOW)
def test_the_http2_preface_is_refused_at_its_blank_line(how):
    assert decided(b"PRI * HTTP/2.0\r\n\r", how) == []
    assert decided(b"PRI * HTTP/2.0\r\n\r\n", how) == [(505, HTTP2_PREFACE_REFUSED)]
    assert decided(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r", how) == [(505, HTTP2_PREFACE_REFUSED)]


def test_http09_request_is_never_served():
    assert error(b"GET /\r\n\r\n") in (400, 505)


# --- limits -----------------------------------------------------------------------------

def request_line(size: int, method: bytes = b"GET") -> bytes:
    """A request whose request line (CRLF not counted) is `size` bytes."""
    target = b"/" + b"a" * (size - len(method) - len(b" / HTTP/1.1"))
    line = method + b" " + target + b" HTTP/1.1"
    assert len(line) == size
    return line + b"\r\nHost: x\r\n\r\n"


def test_overlong_request_target_is_414():
    assert error(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 414


@pytest.mark.parametrize("method", [b"GET", b"OPTIONS", b"BREW"])
def test_the_request_line_limit_is_gunicorns_4094_bytes_for_the_whole_line(method):
    assert isinstance(parse(request_line(4094, method))[0], Request)
    assert error(request_line(4095, method)) == 414


@pytest.mark.parametrize("how", [*HOW, "cut at 7"])
def test_a_target_past_its_limit_is_414_before_a_bad_byte_that_follows_it(how):
    # One read gives llhttp's verdict on the target before its length; small
    # ones gave its length first: the 414 is said at the byte too many either way.
    limits = Limits(request_line=64)  # a target of at most 53 bytes ("X  HTTP/1.1")
    over = b"GET /" + b"a" * 60 + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n"
    assert decided(over, how, limits=limits) == [(414, "request line too long")]
    within = b"GET /" + b"a" * 50 + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n"
    assert decided(within, how, limits=limits) == [(400, "Invalid char in url path")]


@pytest.mark.parametrize("size, served", [(60000, True), (70000, False)])
def test_a_long_target_trickling_in_is_decided_as_it_is_whole(size, served):
    # No request line limit of its own: the head's (64 KiB) bounds it. A byte
    # at a time, the target comes in as many pieces as bytes (its length is
    # kept as it grows, not summed again at each).
    target = b"/" + b"t" * size
    data = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    limits = Limits(request_line=0)
    whole = decided(data, "whole", limits=limits)
    assert decided(data, "bytewise", limits=limits) == whole
    assert whole[0].target == target if served else whole == [(414, "request line too long")]


def test_request_line_limit_is_configurable():
    limits = Limits(request_line=100)
    assert error(request_line(101), limits=limits) == 414
    assert isinstance(parse(request_line(100), limits=limits)[0], Request)


def test_a_request_line_limit_of_0_is_none_of_its_own():
    assert isinstance(parse(request_line(20000), limits=Limits(request_line=0))[0], Request)


def test_too_many_fields_is_431():
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(100))
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n") == 431


def field_line(size: int) -> bytes:
    """A request with an "X-Big: vvv...\\r\\n" field line of `size` bytes, CRLF counted."""
    line = b"X-Big: " + b"v" * (size - len(b"X-Big: \r\n")) + b"\r\n"
    assert len(line) == size
    return b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n"


def test_oversized_field_is_431():
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 8190 + b"\r\n\r\n") == 431


def test_a_field_line_is_counted_with_its_crlf_as_gunicorn_does():
    assert isinstance(parse(field_line(8190))[0], Request)
    assert error(field_line(8191)) == 431


def test_a_field_size_limit_of_0_is_none_of_its_own():
    assert isinstance(parse(field_line(30000), limits=Limits(field_size=0))[0], Request)


def test_many_short_fields_over_the_head_limit_are_431_in_a_smaller_read():
    # With no limit of its own on a field line, a head's count (a byte a field
    # above its raw size) can pass the head limit in a read below it: refused
    # whole as it is split.
    limits = Limits(field_size=0)
    fields = b"".join(b"a:%s\r\n" % (b"v" * 660) for _ in range(98)) + b"a:" + b"v" * 352 + b"\r\n"
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    assert len(data) < limits.head
    for pieces in ([data], [data[:20], data[20:]]):
        parser = RequestParser(limits)
        events = [event for piece in pieces for event in parser.feed(piece)]
        assert [e.status for e in events if isinstance(e, ProtocolError)] == [431], len(pieces)


def test_header_block_is_bounded_however_it_is_split():
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n") == 431


def test_an_endless_header_value_is_cut_off():
    parser = RequestParser()
    events = parser.feed(b"GET / HTTP/1.1\r\nX: ")
    for _ in range(100):
        events += parser.feed(b"v" * 4096)
    assert isinstance(events[-1], ProtocolError) and events[-1].status == 431


def test_an_endless_chunk_size_line_is_cut_off():
    parser = RequestParser()
    events = parser.feed(head(CHUNKED) + b"5;x=")
    for _ in range(10):
        events += parser.feed(b"y" * 1000)
    assert isinstance(events[-1], ProtocolError)


def test_an_endless_trailer_section_is_cut_off():
    parser = RequestParser()
    events = parser.feed(head(CHUNKED) + b"0\r\n")
    for i in range(2000):
        events += parser.feed(b"X-%d: %s\r\n" % (i, b"v" * 100))
        if isinstance(events[-1], ProtocolError):
            break
    assert events[-1].status == 431


def test_body_over_the_limit_is_413_before_the_app_sees_it():
    assert error(head(b"Content-Length: 11") + b"hello world", limits=Limits(body=10)) == 413


def test_chunked_body_over_the_limit_is_413():
    events = parse(head(CHUNKED) + b"6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n", limits=Limits(body=10))
    assert events[-1].status == 413


# --- upgrade, end of stream -----------------------------------------------------------------

UPGRADE = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def test_upgrade_request_pauses_and_keeps_the_bytes_that_follow():
    parser = RequestParser()
    events = parser.feed(UPGRADE + b"\x81\x05frame")
    assert events[0].upgrade is True and events[1] == EndOfMessage(())
    assert parser.feed(b"more") == []
    assert parser.take_unparsed() == b"\x81\x05framemore"


def test_upgrade_not_taken_resumes_http():
    parser = RequestParser()
    parser.feed(UPGRADE + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    events = parser.resume()
    assert events[0].target == b"/next"


def test_close_between_requests_is_a_clean_close():
    events = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", eof=True)
    assert isinstance(events[-1], ConnectionClosed)


def test_close_in_the_middle_of_a_body_is_an_error():
    events = parse(head(b"Content-Length: 10") + b"abc", eof=True)
    assert isinstance(events[-1], ProtocolError)
    assert not any(isinstance(e, EndOfMessage) for e in events)


def test_close_in_the_middle_of_a_head_is_an_error():
    assert isinstance(parse(b"GET / HTTP/1.1\r\nHo", eof=True)[-1], ProtocolError)


def test_nothing_is_parsed_after_an_error():
    parser = RequestParser()
    assert isinstance(parser.feed(b"GET / HTTP/1.1\r\nHost x\r\n\r\n")[-1], ProtocolError)
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []


def test_error_comes_after_the_requests_before_it():
    events = parse(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
    assert [type(e) for e in events] == [Request, EndOfMessage, ProtocolError]


# --- request smuggling (CL.TE, TE.CL, TE.TE, and friends) ---------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = {
    "CL.TE": head(b"Content-Length: 6", CHUNKED) + b"0\r\n\r\nG",
    "TE.CL": head(CHUNKED, b"Content-Length: 3") + b"8\r\nSMUGGLED\r\n0\r\n\r\n",
    "TE.TE xchunked": head(b"Transfer-Encoding: xchunked", b"Content-Length: 4") + b"5c\r\n",
    "TE.TE space before colon": head(b"Transfer-Encoding : chunked", b"Content-Length: 4") + b"0\r\n\r\n",
    "TE.TE second bogus": head(CHUNKED, b"Transfer-encoding: x") + b"0\r\n\r\n",
    "TE.TE leading space": head(b"Content-Length: 4", b" Transfer-Encoding: chunked") + b"0\r\n\r\n",
    "TE.TE vertical tab": head(b"Transfer-Encoding:\x0bchunked", b"Content-Length: 4") + b"0\r\n\r\n",
    "TE.TE quoted": head(b'Transfer-Encoding: "chunked"') + b"0\r\n\r\n",
    "TE bare LF": b"POST / HTTP/1.1\r\nHost: x\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "CL obs-fold": head(b"Content-Length: 0", b" 44") + SMUGGLED,
    "CL CL": head(b"Content-Length: 0", b"Content-Length: 44") + SMUGGLED,
    "chunk ext smuggle": head(CHUNKED) + b"2;\nxx\r\n0\r\n\r\n",
    "chunk lf only": head(CHUNKED) + b"2\r\nxx\n0\r\n\r\n",
    "TE on 1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n",
    "NUL in TE": head(b"Transfer-Encoding: chunked\x00", b"Content-Length: 4") + b"0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_ambiguous_framing_is_refused_before_any_smuggled_request(name):
    events = parse(SMUGGLING[name] + SMUGGLED)
    assert isinstance(events[-1], ProtocolError), events
    assert all(e.target != b"/smuggled" for e in events if isinstance(e, Request))


def test_chunked_body_framing_matches_a_correct_parser():
    # A body that contains something looking like a request is only a body.
    events = parse(head(CHUNKED) + b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n")
    assert events[1] == Data(SMUGGLED)
    assert [e for e in events if isinstance(e, Request)] == [events[0]]


def test_body_of_an_upgrade_request_is_still_framed():
    # RFC 9110 section 7.8: the server may ignore Upgrade; the body is the body.
    data = (b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello")
    events = parse(data)
    assert events[0].upgrade is True
    assert events[1:] == [Data(b"hello"), EndOfMessage(())]


def test_a_complete_oversized_head_in_one_read_is_431():
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1100) for i in range(99))
    assert error(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n") == 431


@pytest.mark.parametrize("how", [*HOW, "cut at 3"])
@pytest.mark.parametrize("stray", [b"\n", b"\r", b"\r\n", b"\n\r\r\n"])
def test_a_stray_cr_or_lf_after_a_request_begins_no_other(stray, how):
    # llhttp skips any CR and LF between requests; the careful path skips them alike.
    parser = RequestParser()
    for piece in _splits(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + stray, how):
        parser.feed(piece)
    assert not parser.in_message
    assert parser.feed_eof() == [ConnectionClosed()]


@pytest.mark.parametrize("prefix", [b"\r\n", b"\n", b"\r", b"\r\n\n\r"])
def test_cr_and_lf_before_a_request_line_are_skipped_on_every_path(prefix):
    # (parse() checks whole, byte-by-byte and random splits agree.)
    request = parse(prefix + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert isinstance(request, Request)


def test_a_released_parser_is_freed_by_reference_counting_alone():
    # llhttp's parser calls this one's methods: a cycle, which release() breaks
    # as a worker closes the connection (the compiled build's GC never frees it).
    import gc

    def llhttp_parsers() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is httptools.HttpRequestParser)

    before = llhttp_parsers()
    gc.disable()
    try:
        for _ in range(100):
            parser = RequestParser()
            parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            parser.release()
        del parser
        assert llhttp_parsers() == before
    finally:
        gc.enable()
