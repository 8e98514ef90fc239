"""An app's response head made fit for HTTP/2 (hybrid/protocol/stream_response.py):
status and headers in, a header list out, or the LocalProtocolError the worker
answers with a 500, as HTTP/1.1's `ResponseFramer` does for the same head.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hybrid.protocol import LocalProtocolError, ResponseFramer, set_server_fields
from hybrid.protocol.fields import CONNECTION_SPECIFIC
from hybrid.protocol.stream_response import (
    StreamResponse,
    informational_fields,
    response_fields,
    stream_response,
    trailer_fields,
)

Headers = list[tuple[bytes, bytes]]


@pytest.fixture(autouse=True)
def server_fields() -> Iterator[None]:
    """The server's own fields as a process starts with them (Date and Server, no
    --header), whatever another test set, and again after."""
    set_server_fields(date=True, server=True, extra=[])
    yield
    set_server_fields(date=True, server=True, extra=[])


def response(headers: Headers = (), status: int = 200, method: str = "GET") -> StreamResponse:
    return stream_response(method, status, headers)


def refused(headers: Headers = (), status: int = 200) -> str:
    """The message of the LocalProtocolError a head is refused with."""
    with pytest.raises(LocalProtocolError) as caught:
        stream_response("GET", status, headers)
    return str(caught.value)


# --- the status ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 204, 301, 404, 500, 599, 999])
def test_a_final_status_opens_the_header_list(status):
    assert response(status=status).fields[0] == (b":status", b"%d" % status)


@pytest.mark.parametrize("status", [100, 101, 103, 199, 99, 0, -200, 1000])
def test_a_status_that_is_not_final_is_refused(status):
    assert refused(status=status) == f"invalid status code {status} for a final response"


@pytest.mark.parametrize("status", ["200", 200.5, None, True], ids=repr)
def test_a_status_that_is_not_an_int_is_refused(status):
    assert refused(status=status) == f"invalid status code {status} for a final response"


def test_a_float_status_is_refused_after_its_int_was_answered():
    response([(b"x-memo", b"1")], status=200)
    assert refused([(b"x-memo", b"1")], status=200.0).startswith("invalid status code")


# --- names and values ------------------------------------------------------------------------

def test_names_go_out_in_lower_case():
    fields = response([(b"Content-Type", b"text/plain"), (b"X-Request-ID", b"Ab")]).fields
    assert fields[1:] == [(b"content-type", b"text/plain"), (b"x-request-id", b"Ab")]


def test_values_go_out_as_the_app_set_them():
    value = b"caf\xc3\xa9; q=0.9\tx"
    assert response([(b"x-v", value)]).fields[1] == (b"x-v", value)


def test_fields_keep_the_apps_order_and_repeats():
    headers = [(b"set-cookie", b"a=1"), (b"vary", b"accept"), (b"set-cookie", b"b=2")]
    assert response(headers).fields[1:] == headers


def test_bytearray_names_and_values_are_bytes():
    fields = response([(bytearray(b"X-A"), bytearray(b"v"))]).fields
    assert fields[1] == (b"x-a", b"v") and type(fields[1][1]) is bytes


@pytest.mark.parametrize("name", [b"X Y", b"", b":status", b"x:y", b"caf\xc3\xa9", b"x\r\n",
                                  b"x\x00"], ids=repr)
def test_a_name_that_is_not_a_token_is_refused(name):
    assert refused([(name, b"v")]) == f"invalid header name {name!r}"


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\x00b", b"\r\nx-injected: 1"], ids=repr)
def test_a_value_with_cr_lf_or_nul_is_refused(value):
    assert refused([(b"x-v", value)]) == "a header value contains CR, LF or NUL"


@pytest.mark.parametrize("header", [("x-v", b"v"), (b"x-v", "v"), (b"x-v", 1)], ids=repr)
def test_a_name_or_value_that_is_not_bytes_is_refused(header):
    assert "names and values must be bytes" in refused([header])


def test_a_header_pair_given_as_a_list_is_checked_as_a_pair():
    assert response([[b"X-A", b"v"]]).fields[1] == (b"x-a", b"v")


@pytest.mark.parametrize("value", [b" v", b"v ", b"\tv", b"v\t"], ids=repr)
def test_a_value_goes_out_without_surrounding_whitespace(value):
    assert response([(b"x-v", value)]).fields[1] == (b"x-v", b"v")


# --- connection-specific fields (RFC 9113 section 8.2.2) ---------------------------------------

@pytest.mark.parametrize("name", sorted(CONNECTION_SPECIFIC))
def test_a_connection_specific_field_is_dropped(name):
    fields = response([(b"x-a", b"1"), (name.title(), b"x"), (b"x-b", b"2")]).fields
    assert fields == [(b":status", b"200"), (b"x-a", b"1"), (b"x-b", b"2")]


def test_te_other_than_trailers_is_dropped():
    assert response([(b"TE", b"gzip")]).fields == [(b":status", b"200")]


# --- Content-Length and the body -------------------------------------------------------------

def test_the_apps_content_length_is_the_length_held_to():
    answer = response([(b"Content-Length", b"42")])
    assert (answer.length, answer.fields[1]) == (42, (b"content-length", b"42"))


def test_a_response_without_content_length_has_no_length():
    assert response().length is None


def test_a_content_length_repeated_with_one_value_goes_out_once():
    answer = response([(b"content-length", b"5"), (b"x-a", b"1"), (b"Content-Length", b"5")])
    assert answer.fields[1:] == [(b"content-length", b"5"), (b"x-a", b"1")]


def test_a_content_length_with_surrounding_spaces_goes_out_as_digits():
    assert response([(b"content-length", b" 5 ")]).fields[1] == (b"content-length", b"5")


def test_two_different_content_lengths_are_refused():
    assert refused([(b"content-length", b"5"), (b"content-length", b"6")]) == (
        "two different Content-Length values")


@pytest.mark.parametrize("value", [b"abc", b"-1", b"5, 5", b""], ids=repr)
def test_a_content_length_that_is_not_digits_is_refused(value):
    assert refused([(b"content-length", value)]) == f"invalid Content-Length {value.strip()!r}"


@pytest.mark.parametrize("status", [200, 201, 404, 500])
def test_a_response_to_get_has_a_body(status):
    assert response(status=status).has_body


def test_a_response_to_head_has_no_body_but_keeps_its_content_length():
    answer = response([(b"content-length", b"5")], method="HEAD")
    assert (answer.has_body, answer.length, answer.fields[1]) == (
        False, None, (b"content-length", b"5"))


def test_a_304_has_no_body_but_keeps_its_content_length():
    answer = response([(b"content-length", b"5")], status=304)
    assert (answer.has_body, answer.length, answer.fields[1]) == (
        False, None, (b"content-length", b"5"))


def test_a_204_has_no_body_and_no_content_length():
    answer = response([(b"content-length", b"5"), (b"x-a", b"1")], status=204)
    assert (answer.has_body, answer.length, answer.fields) == (
        False, None, [(b":status", b"204"), (b"x-a", b"1")])


# --- the server's own fields -----------------------------------------------------------------

def test_the_server_adds_date_and_server_after_the_apps_fields():
    fields = response_fields(response([(b"x-a", b"1")]))
    assert [name for name, _ in fields] == [b":status", b"x-a", b"date", b"server"]
    assert fields[-1] == (b"server", b"hybrid")


def test_the_apps_server_and_date_take_the_place_of_the_servers():
    answer = response([(b"Server", b"mine"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")])
    assert response_fields(answer) == [(b":status", b"200"), (b"server", b"mine"),
                                       (b"date", b"Thu, 01 Jan 1970 00:00:00 GMT")]


def test_the_apps_server_alone_leaves_the_servers_date():
    names = [name for name, _ in response_fields(response([(b"server", b"mine")]))]
    assert names == [b":status", b"server", b"date"]


def test_header_fields_from_the_settings_go_out_in_lower_case():
    set_server_fields(date=False, server=False, extra=[(b"X-Env", b"prod")])
    assert response_fields(response()) == [(b":status", b"200"), (b"x-env", b"prod")]


def test_without_date_and_server_the_apps_fields_go_out_alone():
    set_server_fields(date=False, server=False, extra=[])
    assert response_fields(response([(b"x-a", b"1")])) == [(b":status", b"200"), (b"x-a", b"1")]


def test_the_server_fields_do_not_change_the_checked_head():
    answer = response([(b"x-a", b"1")])
    response_fields(answer)
    assert answer.fields == [(b":status", b"200"), (b"x-a", b"1")]


# --- interim responses (103 Early Hints, RFC 8297) -------------------------------------------

def test_early_hints_carry_their_links():
    fields = informational_fields(103, [(b"Link", b"</style.css>; rel=preload; as=style")])
    assert fields == [(b":status", b"103"), (b"link", b"</style.css>; rel=preload; as=style")]


@pytest.mark.parametrize("status", [100, 102, 103, 199])
def test_an_interim_status_opens_an_interim_header_list(status):
    assert informational_fields(status, []) == [(b":status", b"%d" % status)]


@pytest.mark.parametrize("status", [101, 99, 200, 204])
def test_101_or_a_final_status_is_no_interim_response(status):
    with pytest.raises(LocalProtocolError,
                       match=f"invalid status code {status} for an interim response"):
        informational_fields(status, [])


@pytest.mark.parametrize("header", [(b"li nk", b"x"), (b"link", b"a\r\nb")], ids=repr)
def test_an_interim_field_is_checked_as_a_final_ones(header):
    with pytest.raises(LocalProtocolError):
        informational_fields(103, [header])


@pytest.mark.parametrize("header", [("link", b"x"), (b"link", "x"), [b"link", 1]], ids=repr)
def test_an_interim_field_not_given_as_bytes_is_refused(header):
    with pytest.raises(LocalProtocolError, match="names and values must be bytes"):
        informational_fields(103, [header])


@pytest.mark.parametrize("header", [("x-sum", b"1"), (b"x-sum", "1"), [b"x-sum", None]], ids=repr)
def test_a_trailer_not_given_as_bytes_is_refused(header):
    with pytest.raises(LocalProtocolError, match="names and values must be bytes"):
        trailer_fields([header])


# --- the same refusals as HTTP/1.1's framer --------------------------------------------------

def http1_refuses(status: object, headers: Headers) -> bool:
    try:
        ResponseFramer().head("GET", "1.1", True, status, b"", headers)
    except LocalProtocolError:
        return True
    return False


def http2_refuses(status: object, headers: Headers) -> bool:
    try:
        stream_response("GET", status, headers)
    except LocalProtocolError:
        return True
    return False


SAME_REFUSALS = [
    ("an ordinary head", 200, [(b"Content-Type", b"text/plain")], False),
    ("status 999", 999, [], False),
    ("obs-text in a value", 200, [(b"x-v", b"caf\xc3\xa9")], False),
    ("one Content-Length twice", 200, [(b"content-length", b"5"), (b"content-length", b"5")],
     False),
    ("status 199", 199, [], True),
    ("status 101", 101, [], True),
    ("status 1000", 1000, [], True),
    ("a space in a name", 200, [(b"X Y", b"v")], True),
    ("an empty name", 200, [(b"", b"v")], True),
    ("a CR LF in a value", 200, [(b"x-v", b"a\r\nx: y")], True),
    ("a NUL in a value", 200, [(b"x-v", b"a\x00")], True),
    ("a name given as text", 200, [("x-v", b"v")], True),
    ("two different Content-Lengths", 200, [(b"content-length", b"5"), (b"content-length", b"6")],
     True),
    ("a Content-Length of letters", 200, [(b"content-length", b"five")], True),
    ("a status given as a float", 200.0, [], True),
    ("a status given as text", "200", [], True),
]


@pytest.mark.parametrize("case, status, headers, refuses", SAME_REFUSALS,
                         ids=[row[0] for row in SAME_REFUSALS])
def test_http2_and_http1_refuse_a_head_alike(case, status, headers, refuses):
    assert (http2_refuses(status, headers), http1_refuses(status, headers)) == (refuses, refuses)
