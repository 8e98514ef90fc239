"""The HTTP decisions the core answers for every worker class: 100 Continue,
skipping an unread body, lingering on close, and the 408 of a timeout.

Each answer is checked however the bytes were split, since the parser's
fast and careful paths both keep the connection's state.
"""

from __future__ import annotations

import pytest

from hybrid.protocol import CONTINUE, RequestParser
from hybrid.protocol.parser import UNKNOWN_LENGTH
from tests.test_protocol import HOW, _splits

EXPECTING = (b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
             b"Content-Length: 5\r\n\r\n")


def fed(data: bytes, how: str = "whole") -> RequestParser:
    parser = RequestParser()
    for piece in _splits(data, how):
        parser.feed(piece)
    return parser


def post(length: int, body: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (length, body)


# --- 100 Continue ------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_100_continue_is_due_while_the_client_holds_its_body_back(how):
    assert fed(EXPECTING, how).continue_response(response_started=False) == CONTINUE


def test_100_continue_is_said_once():
    parser = fed(EXPECTING)
    parser.continue_response(response_started=False)
    assert parser.continue_response(response_started=False) == b""


@pytest.mark.parametrize("how", HOW)
def test_100_continue_is_not_due_once_body_bytes_came(how):
    assert fed(EXPECTING + b"he", how).continue_response(response_started=False) == b""


def test_100_continue_is_never_sent_once_the_answer_began():
    assert fed(EXPECTING).continue_response(response_started=True) == b""


def test_100_continue_is_not_due_without_the_expectation():
    assert fed(post(5)).continue_response(response_started=False) == b""


def test_100_continue_is_not_due_for_http10():
    data = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    assert fed(data).continue_response(response_started=False) == b""


# --- skipping an unread body ---------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_a_short_unread_body_may_be_skipped(how):
    assert fed(post(1000, b"x" * 10), how).may_skip_rest(buffered=10)


def test_a_long_unread_body_closes_the_connection():
    assert not fed(post(1 << 20)).may_skip_rest(buffered=0)


def test_what_was_buffered_counts_against_the_skip():
    parser = fed(post(70000, b"x" * 10000))
    assert parser.may_skip_rest(buffered=0)
    assert not parser.may_skip_rest(buffered=10000)


def test_a_chunked_unread_body_of_unknown_size_closes_the_connection():
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    assert not fed(data).may_skip_rest(buffered=5)


def test_a_body_held_back_for_100_continue_is_not_skipped():
    assert not fed(EXPECTING).may_skip_rest(buffered=0)


def test_skipping_stops_beyond_its_budget():
    parser = fed(post(1 << 20))
    assert parser.may_skip(1 << 16)
    assert not parser.may_skip((1 << 16) + 1)


# --- gathering a body before the app runs ---------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_a_body_of_known_length_may_be_gathered_for_what_is_due(how):
    assert fed(post(10, b"abc"), how).body_to_gather() == 7


@pytest.mark.parametrize("how", HOW)
def test_a_chunked_body_may_be_gathered_though_its_length_is_unknown(how):
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"
    assert fed(data, how).body_to_gather() == UNKNOWN_LENGTH


def test_a_body_held_back_for_100_continue_is_not_gathered():
    assert fed(EXPECTING).body_to_gather() is None
    chunked = EXPECTING.replace(b"Content-Length: 5", b"Transfer-Encoding: chunked")
    assert fed(chunked).body_to_gather() is None


# --- lingering close -------------------------------------------------------------------------

def test_between_requests_the_client_is_not_sending():
    assert not fed(post(3, b"abc")).client_may_be_sending


@pytest.mark.parametrize("how", HOW)
def test_inside_a_request_the_client_may_be_sending(how):
    assert fed(post(3, b"a"), how).client_may_be_sending


def test_after_a_refused_request_the_client_may_be_sending():
    assert fed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").client_may_be_sending


# --- timeouts ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_a_stalled_head_is_408_too_slow(how):
    error = fed(b"GET / HTTP/1.1\r\nHo", how).timeout_error()
    assert (error.status, error.detail) == (408, "the client was too slow to send the request")


def test_a_silent_connection_is_408_too_slow():
    error = RequestParser().timeout_error()
    assert (error.status, error.detail) == (408, "the client was too slow to send the request")


@pytest.mark.parametrize("how", HOW)
def test_a_stalled_body_is_408_stalled(how):
    error = fed(post(10, b"abc"), how).timeout_error()
    assert (error.status, error.detail) == (408, "the request body stalled")


def test_a_stalled_chunked_body_is_408_stalled():
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe"
    assert fed(data).timeout_error().detail == "the request body stalled"
