"""The HTTP decisions the core answers for every worker class: 100 Continue,
whether the connection persists (skipping an unread body), lingering on close,
and the 408 of a timeout.

Each answer is checked however the bytes were split, since the parser's
fast and careful paths both keep the connection's state.
"""

from __future__ import annotations

import pytest

from hybrid.protocol import (
    CONTINUE,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    RequestParser,
    persistence,
)
from hybrid.protocol.state import UNKNOWN_LENGTH
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


# --- whether the connection persists: the one decision (hybrid.protocol.persistence) ------

def request(keep_alive: bool = True, upgrade: bool = False) -> Request:
    return Request("POST", b"/", b"/", b"", "1.1", [], keep_alive, False, upgrade)


SKIPPABLE = persistence.DRAIN_BYTES

# (what the request asked, whether the server is willing, unread, rest) -> persists
PERSISTENCE = [
    # the body is all read: the request and the server decide
    ("keep-alive, body read", request(), True, 0, 0, True),
    ("Connection: close", request(keep_alive=False), True, 0, 0, False),
    ("the server is stopping or keeps no connection", request(), False, 0, 0, False),
    ("an Upgrade answered as HTTP, body read", request(upgrade=True), True, 0, 0, True),
    # the app left some of the body: skipped when short and of known length
    ("short rest, known length", request(), True, 10, 990, True),
    ("all parsed, unread", request(), True, SKIPPABLE, 0, True),
    ("past the skip budget", request(), True, 10, SKIPPABLE, False),
    ("rest unknown: chunked, held for 100 Continue, or failed", request(), True, 5, None, False),
    ("nothing unread, rest unknown", request(), True, 0, None, False),
    ("an Upgrade answered before its body", request(upgrade=True), True, 0, 5, False),
    ("an Upgrade whose body came whole, unread", request(upgrade=True), True, 10, 0, True),
    ("Connection: close with a short rest", request(keep_alive=False), True, 0, 5, False),
    ("the server stopping with a short rest", request(), False, 0, 5, False),
]


@pytest.mark.parametrize("case, req, server_willing, unread, rest, persists", PERSISTENCE,
                         ids=[row[0] for row in PERSISTENCE])
def test_whether_the_connection_persists(case, req, server_willing, unread, rest, persists):
    assert persistence.may_persist(req, server_willing, unread, rest) is persists


def test_skipping_stops_beyond_its_budget():
    assert persistence.may_keep_skipping(SKIPPABLE)
    assert not persistence.may_keep_skipping(SKIPPABLE + 1)


# What the parser tells a driver of the body still due, for may_persist's `rest`.

@pytest.mark.parametrize("how", HOW)
def test_the_rest_of_a_body_of_known_length_is_what_is_not_parsed_yet(how):
    assert fed(post(1000, b"x" * 10), how).body_rest == 990


def test_the_rest_of_a_chunked_body_is_unknown():
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    assert fed(data).body_rest is None


def test_the_rest_of_a_body_held_back_for_100_continue_is_not_the_servers_to_skip():
    assert fed(EXPECTING).body_rest is None


def test_between_requests_no_body_is_due():
    assert fed(post(2, b"hi")).body_rest == 0


# A driver that queues the parser's events (sync, thread): past the request's end
# in its queue, the parser speaks of the next request.

def test_queued_body_bytes_are_unread_and_the_parser_tells_the_rest():
    assert persistence.unread_body([Data(b"abc"), Data(b"de")], 100) == (5, 100)


def test_a_queued_end_of_the_body_leaves_nothing_to_parse():
    queued = [Data(b"abc"), EndOfMessage(()), request()]
    assert persistence.unread_body(queued, None) == (3, 0)


def test_a_queued_error_leaves_the_rest_unknown():
    queued = [Data(b"abc"), ProtocolError(400, "bad chunk")]
    assert persistence.unread_body(queued, 0) == (3, None)


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


@pytest.mark.parametrize("how", [*HOW, "cut at 5"])
def test_a_request_refused_for_its_method_pri_is_one_under_way(how):
    # Refused at its version (505), as whole, not at its target.
    parser = fed(b"PRI / HTTP/1.1\r\nHost: x\r\n\r\n", how)
    assert parser.failed and parser.in_message and parser.client_may_be_sending


@pytest.mark.parametrize("how", HOW)
def test_after_a_request_that_closes_the_connection_the_client_is_not_sending(how):
    parser = fed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\r\n", how)
    assert not parser.in_message and not parser.client_may_be_sending


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
