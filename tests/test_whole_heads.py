"""The compiled build's whole-head reader (hybrid/protocol/whole_head.pyx) decides
every request as llhttp and the core's rules do: clean requests, and every
change of one byte in them, whole, pipelined, cut across two reads and under
tight limits, compared as transcripts (tests/decisions.py) with the same
parser reading every head through llhttp (`RequestParser(whole_heads=False)`,
the interpreted build's path).

tests/test_fuzz_decisions.py compares this build with the interpreted one on
the fuzz corpus too; these inputs stay next to what the reader takes, where a
difference between the two would hide.
"""

from __future__ import annotations

import pytest

from hybrid.protocol import RequestParser
from hybrid.protocol.head import DEFAULT_LIMITS, Limits
from hybrid.protocol.parser import _WHOLE_HEADS
from tests.decisions import transcript

pytestmark = pytest.mark.skipif(
    _WHOLE_HEADS is None, reason="the build that runs has no whole-head reader (the "
    "interpreted build, or a compiled one built without Cython)")

CLEAN = {
    "get": b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "post": (b"POST /api/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
             b"Accept: */*\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
             b"Content-Length: 16\r\nX-Request-Id: 7f3c2a9e\r\nCookie: session=abc123\r\n"
             b"\r\n{\"key\": \"value\"}"),
    "http-1.0": b"GET /a?b=c&d HTTP/1.0\r\nConnection: Keep-Alive\r\nX-Custom-Name: v\r\n\r\n",
    "http-1.0-closes": b"HEAD /index.html HTTP/1.0\r\nHost: h:80\r\n\r\n",
    "closes": b"DELETE /x/1 HTTP/1.1\r\nHOST: 10.0.0.1:8080\r\nconnection: CLOSE\r\n\r\n",
    "proxied": (b"PUT /up HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=x\r\n"
                b"Authorization: Basic eA==\r\nProxy-Authorization: y\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 3\r\n\r\nabc"),
    "values": (b"OPTIONS /%7e/?q=\"<>\"{}|^` HTTP/1.1\r\nHost: \r\nEmpty:\r\n"
               b"Spaced: \t a  b \t \r\nA: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n\r\n"),
    "patch": b"PATCH /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
}
"""Requests the reader takes (asserted below), each a different path through it."""

PIPELINED = CLEAN["get"] + CLEAN["post"] + CLEAN["patch"]

TIGHT = Limits(request_line=40, fields=4, field_size=40, body=8)

# The bytes a one-byte change puts in place: every byte for the shortest request,
# these for the others (each class of byte the reader, llhttp or the rules tell apart).
SOME_BYTES = sorted(set(b"\x00\t\n\r \x0b\x7f\x80\xff!\"#%',/:;<=>?@[\\]^_`{|}~09AZaz-.+*&$"))


def differences(data: bytes, pieces: list[bytes], limits: Limits) -> str | None:
    """How the reader's transcript of `pieces` differs from llhttp's, if it does."""
    reader = transcript(data, pieces, limits)
    llhttp = transcript(data, pieces, limits, whole_heads=False)
    if reader == llhttp:
        return None
    return f"{pieces!r} under {limits}:\nreader: {reader}\nllhttp: {llhttp}"


def one_byte_changes(data: bytes, replacements: list[int]) -> list[bytes]:
    changed = [data[:i] + data[i + 1:] for i in range(len(data))]  # each byte dropped
    for i in range(len(data)):
        changed += [data[:i] + bytes([b]) + data[i + 1:] for b in replacements if b != data[i]]
    return changed


def first_differences(inputs: list[bytes], limits: Limits, also_pipelined: bool) -> list[str]:
    found = []
    for data in inputs:
        ways = [[data]]
        if also_pipelined:  # (what follows a request shows where the reader left the parser)
            ways.append([data + CLEAN["get"]])
        for pieces in ways:
            difference = differences(b"".join(pieces), pieces, limits)
            if difference:
                found.append(difference)
        if len(found) >= 5:
            break
    return found


@pytest.mark.parametrize("name", CLEAN)
def test_the_reader_takes_each_clean_request_whole(name):
    events = []
    limits = DEFAULT_LIMITS
    reader = _WHOLE_HEADS(limits.request_line, limits.field_size, limits.fields, limits.head,
                          limits.body)
    # (else the tests below would compare llhttp with itself)
    assert reader.read(CLEAN[name], events) == len(CLEAN[name])
    assert events == RequestParser(whole_heads=False).feed(CLEAN[name])


@pytest.mark.parametrize("name", CLEAN)
@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, TIGHT], ids=["default", "tight"])
def test_a_clean_request_is_decided_alike(name, limits):
    data = CLEAN[name]
    assert not first_differences([data, data + data], limits, also_pipelined=True)


@pytest.mark.parametrize("name", CLEAN)
def test_a_clean_request_is_decided_alike_wherever_a_cut_falls(name):
    data = CLEAN[name] + CLEAN["get"]
    found = [d for cut in range(1, len(data))
             if (d := differences(data, [data[:cut], data[cut:]], DEFAULT_LIMITS))]
    assert not found, "\n\n".join(found[:5])


def test_every_byte_in_every_place_of_a_short_request_is_decided_alike():
    inputs = one_byte_changes(CLEAN["get"], list(range(256)))
    found = first_differences(inputs, DEFAULT_LIMITS, also_pipelined=True)
    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("name", CLEAN)
@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, TIGHT], ids=["default", "tight"])
def test_one_byte_changed_anywhere_is_decided_alike(name, limits):
    inputs = one_byte_changes(CLEAN[name], SOME_BYTES)
    found = first_differences(inputs, limits, also_pipelined=limits is DEFAULT_LIMITS)
    assert not found, "\n\n".join(found)


def test_one_byte_changed_in_a_pipeline_is_decided_alike():
    found = first_differences(one_byte_changes(PIPELINED, b"\x00\r\n :a#"), DEFAULT_LIMITS,
                              also_pipelined=False)
    assert not found, "\n\n".join(found)


def near_each_limit(limits: Limits) -> list[bytes]:
    """Clean requests at each of `limits`, and a few bytes either side."""
    requests = []
    for extra in range(-2, 3):
        line = limits.request_line + extra - len(b"GET / HTTP/1.1")
        requests.append(b"GET /" + b"a" * line + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        requests.append(b"GET / HTTP/1.1\r\nHost: h\r\n"
                        + b"X: 1\r\n" * (limits.fields - 1 + extra) + b"\r\n")
        value = limits.field_size + extra - len(b"Long: \r\n")
        requests.append(b"GET / HTTP/1.1\r\nHost: h\r\nLong: " + b"v" * value + b"\r\n\r\n")
        body = limits.body + extra
        requests.append(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % body
                        + b"b" * body)
    return requests


def heads_near_the_whole_heads_limit() -> list[bytes]:
    """Clean requests whose heads are about the head limit (65536 bytes), however
    counted: the raw head, or the core's sum of fields."""
    field = b"F: " + b"v" * 8100 + b"\r\n"
    start = b"GET / HTTP/1.1\r\nHost: h\r\n"
    requests = []
    for size in range(65536 - 60, 65536 + 60, 7):
        rest = size - len(start) - 8 * len(field) - len(b"G: \r\n\r\n")
        requests.append(start + field * 8 + b"G: " + b"w" * rest + b"\r\n\r\n")
    return requests


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, TIGHT], ids=["default", "tight"])
def test_a_request_at_each_limit_and_either_side_of_it_is_decided_alike(limits):
    assert not first_differences(near_each_limit(limits), limits, also_pipelined=True)


def test_a_head_about_the_head_limit_is_decided_alike():
    assert not first_differences(heads_near_the_whole_heads_limit(), DEFAULT_LIMITS,
                                 also_pipelined=False)


NAMES = [b"Host", b"Content-Length", b"Connection", b"Transfer-Encoding", b"Expect",
         b"Upgrade", b"Proxy-Connection", b"Forwarded", b"X-Forwarded-For", b"X-Forwarded-Proto",
         b"Content-Type", b"Authorization", b"Proxy-Authorization", b"TE", b"Keep-Alive",
         b"Trailer", b"Accept"]
VALUES = [b"", b"x", b"0", b"12", b"h:1", b"h:", b"[::1]:80", b"a b", b"close", b"keep-alive",
          b"upgrade", b"Keep-Alive, close", b"chunked", b"gzip, chunked", b"100-continue",
          b"websocket", b"for=1", b"1, 1", b"007", b"1234567890123456789"]


@pytest.mark.parametrize("name", NAMES)
def test_a_field_the_core_or_llhttp_reads_is_decided_alike_whatever_its_value(name):
    found = []
    for spelling in (name, name.lower(), name.upper()):
        for value in VALUES:
            for once_or_twice in (1, 2):
                line = spelling + b": " + value + b"\r\n"
                for version in (b"1.1", b"1.0"):
                    data = (b"POST / HTTP/" + version + b"\r\nHost: h\r\n" + line * once_or_twice
                            + b"\r\n12345678")
                    if (difference := differences(data, [data], DEFAULT_LIMITS)):
                        found.append(difference)
    assert not found, "\n\n".join(found[:5])


def head_of(fields: list[bytes]) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


# 8 fields of 8184 bytes and one of 1, with no space after their colons: 65544
# raw bytes, 65536 as HeadReader counts a head (name, value and 4 a field).
RAW_OVER_COUNTED_AT = head_of([b"a%d:%s" % (k, b"v" * 8184) for k in range(8)] + [b"z:x"])


@pytest.mark.parametrize("after", [
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /d HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
], ids=["chunked", "bad-length"])
def test_a_head_at_the_limit_by_one_count_and_past_it_by_the_other_is_decided_alike(after):
    # The read is parsed again from its start on the careful path, which counts
    # raw bytes, when a later request in it needs that path.
    assert len(RAW_OVER_COUNTED_AT) > 65536
    data = RAW_OVER_COUNTED_AT + after
    assert not differences(data, [data], DEFAULT_LIMITS)


def test_a_head_over_the_limit_by_the_core_count_alone_is_decided_alike_after_another():
    # With no limit of its own on a field line, a head of many short fields can
    # be over the head limit as counted (a byte a field above its raw size) in a
    # read smaller than the limit.
    limits = Limits(field_size=0)
    first = head_of([b"X: " + b"x" * 100])
    values = [660] * 98
    # Counted: the target, then name, value and 4 for Host and each field.
    values.append(limits.head + 1 - (len(b"/") + 9 + sum(5 + v for v in values)) - 5)
    second = head_of([b"a:" + b"v" * v for v in values])
    assert len(second) < limits.head
    assert not differences(first + second, [first + second], limits)


def test_a_subclass_of_bytes_is_read_as_its_bytes():
    class Received(bytes):
        pass

    data = CLEAN["post"] + CLEAN["get"]
    assert repr(RequestParser().feed(Received(data))) == \
        repr(RequestParser(whole_heads=False).feed(data))
