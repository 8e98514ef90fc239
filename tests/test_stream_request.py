"""What a valid HTTP/2 request is (hybrid/protocol/stream_request.py): a decoded
header list in, a `Request` out, or the ProtocolError a stream is answered with.

The same field rules and limits as HTTP/1.1: where the protocols mean to
agree, each case is also fed to the HTTP/1.1 parser as a head, and both must
accept it or refuse it with the same status.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hybrid.protocol import DEFAULT_LIMITS, Limits, ProtocolError, Request, RequestParser
from hybrid.protocol.fields import CONNECTION_SPECIFIC
from hybrid.protocol.stream_request import (
    PREFACE,
    BodyCount,
    declared_length,
    extended_protocol,
    h2c_settings,
    stream_request,
    upgraded_request,
)

Fields = list[tuple[bytes, bytes]]


def pseudo(method: bytes = b"GET", path: bytes = b"/", authority: bytes | None = b"a") -> Fields:
    """The pseudo-header fields of an ordinary request."""
    fields = [(b":method", method), (b":scheme", b"https"), (b":path", path)]
    return fields + ([(b":authority", authority)] if authority is not None else [])


def accepted(fields: Fields, limits: Limits = DEFAULT_LIMITS) -> Request:
    return stream_request(fields, limits)


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """The status and detail of the ProtocolError `call` raises."""
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value.status, caught.value.detail


def refused(fields: Fields, limits: Limits = DEFAULT_LIMITS) -> tuple[int, str]:
    return refusal(lambda: stream_request(fields, limits))


# --- the request ---------------------------------------------------------------------------

def test_a_request_carries_method_target_path_and_query():
    request = accepted(pseudo(path=b"/a/b?x=1&y=2"))
    assert (request.method, request.target, request.path, request.query) == (
        "GET", b"/a/b?x=1&y=2", b"/a/b", b"x=1&y=2")


def test_a_request_is_http_version_2():
    assert accepted(pseudo()).http_version == "2"


def test_a_stream_is_neither_closing_nor_an_upgrade():
    request = accepted(pseudo())
    assert (request.keep_alive, request.upgrade) == (True, False)


def test_the_regular_fields_keep_their_order():
    fields = [(b"x-b", b"2"), (b"accept", b"*/*"), (b"x-a", b"1")]
    assert accepted(pseudo(authority=None) + fields).headers == fields


def test_the_preface_is_rfc_9113s():
    assert PREFACE == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# --- pseudo-header fields (RFC 9113 section 8.3.1) -----------------------------------------

MISSING_PSEUDO = [
    ("no :method", [(b":scheme", b"https"), (b":path", b"/")]),
    ("an empty :method", [(b":method", b""), (b":scheme", b"https"), (b":path", b"/")]),
    ("no :scheme", [(b":method", b"GET"), (b":path", b"/")]),
    ("no :path", [(b":method", b"GET"), (b":scheme", b"https")]),
    ("an empty :path", [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"")]),
    ("nothing at all", []),
]


@pytest.mark.parametrize("case, fields", MISSING_PSEUDO, ids=[row[0] for row in MISSING_PSEUDO])
def test_a_request_without_method_scheme_and_a_path_is_400(case, fields):
    assert refused(fields)[0] == 400


def test_authority_is_optional():
    assert accepted(pseudo(authority=None)).method == "GET"


@pytest.mark.parametrize("method", [b"G ET", b"GET\r\n", b"G(ET)", b"GET\x00"])
def test_a_method_that_is_not_a_token_is_400(method):
    assert refused(pseudo(method=method)) == (400, "missing or invalid :method")


@pytest.mark.parametrize("name", [b":method", b":scheme", b":path", b":authority"])
def test_a_pseudo_header_field_twice_is_400(name):
    fields = pseudo()
    fields.insert(1, next(field for field in fields if field[0] == name))
    assert refused(fields) == (400, f"pseudo-header field {name.decode()} not allowed here")


def test_protocol_twice_is_400():
    fields = pseudo(method=b"CONNECT") + [(b":protocol", b"websocket")] * 2
    assert refused(fields) == (400, "pseudo-header field :protocol not allowed here")


@pytest.mark.parametrize("name", [b":status", b":foo", b":", b":Method"])
def test_a_response_or_unknown_pseudo_header_field_is_400(name):
    assert refused(pseudo() + [(name, b"x")]) == (
        400, f"pseudo-header field {name.decode()} not allowed here")


def test_a_pseudo_header_field_after_a_regular_field_is_400():
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b"accept", b"*/*"), (b":path", b"/")]
    assert refused(fields) == (400, "a pseudo-header field after a regular field")


def test_the_asterisk_target_is_for_options():
    request = accepted(pseudo(method=b"OPTIONS", path=b"*"))
    assert (request.target, request.path, request.query) == (b"*", b"*", b"")


@pytest.mark.parametrize("method", [b"GET", b"POST"])
def test_the_asterisk_target_with_another_method_is_400(method):
    assert refused(pseudo(method=method, path=b"*")) == (
        400, "only OPTIONS may have the target '*'")


def test_the_asterisk_target_of_an_extended_connect_is_400():
    fields = pseudo(method=b"CONNECT", path=b"*") + [(b":protocol", b"websocket")]
    assert refused(fields) == (400, "only OPTIONS may have the target '*'")


@pytest.mark.parametrize("path", [b"a/b", b"http://a/b", b"?x", b"%2F", b"x"])
def test_a_path_that_does_not_start_with_a_slash_is_400(path):
    assert refused(pseudo(path=path)) == (400, "invalid :path")


@pytest.mark.parametrize("path", [b"/a b", b"/a\tb", b"/a\x7f", b"/caf\xc3\xa9", b"/a\x00",
                                  b"/a\r\n", b"/a\x1b"], ids=repr)
def test_a_path_with_anything_but_visible_ascii_is_400(path):
    assert refused(pseudo(path=path)) == (400, "invalid :path")


# --- CONNECT (RFC 9113 section 8.5) and the extended CONNECT (RFC 8441) -----------------------

def connect(authority: bytes | None = b"example.com:443") -> Fields:
    return [(b":method", b"CONNECT")] + ([(b":authority", authority)] if authority else [])


def test_a_connect_names_only_the_authority():
    request = accepted(connect())
    assert (request.method, request.target, request.path, request.query) == (
        "CONNECT", b"example.com:443", b"", b"")


def test_a_connect_without_authority_is_400():
    assert refused(connect(authority=None)) == (400, "CONNECT needs :authority")


@pytest.mark.parametrize("extra", [(b":scheme", b"https"), (b":path", b"/")], ids=repr)
def test_a_connect_with_scheme_or_path_is_400(extra):
    assert refused(connect() + [extra]) == (400, "CONNECT takes neither :scheme nor :path")


def test_a_connect_authority_without_a_port_is_400():
    assert refused(connect(authority=b"example.com"))[0] == 400


def extended_connect(path: bytes = b"/chat") -> Fields:
    return [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
            (b":path", path), (b":authority", b"example.com")]


def test_an_extended_connect_is_a_request_for_its_path():
    request = accepted(extended_connect(path=b"/chat?room=1"))
    assert (request.method, request.path, request.query) == ("CONNECT", b"/chat", b"room=1")


def test_an_extended_connect_without_a_path_is_400():
    fields = [field for field in extended_connect() if field[0] != b":path"]
    assert refused(fields) == (400, "a request needs :scheme and a non-empty :path")


@pytest.mark.parametrize("method", [b"GET", b"POST"])
def test_protocol_on_another_method_than_connect_is_400(method):
    fields = pseudo(method=method) + [(b":protocol", b"websocket")]
    assert refused(fields) == (400, ":protocol is for an extended CONNECT only")


def test_the_extended_protocol_is_the_protocol_pseudo_header():
    assert extended_protocol(extended_connect()) == b"websocket"


def test_a_request_without_protocol_has_no_extended_protocol():
    assert extended_protocol(pseudo()) is None


def test_a_protocol_among_the_regular_fields_is_no_extended_protocol():
    assert extended_protocol(pseudo() + [(b"x", b"y"), (b":protocol", b"websocket")]) is None


# --- field names and values (RFC 9113 section 8.2.1) -------------------------------------------

@pytest.mark.parametrize("name", [b"Accept", b"X-Custom", b"aCCEPT"])
def test_a_field_name_with_upper_case_is_400(name):
    assert refused(pseudo() + [(name, b"x")]) == (400, "invalid header field name")


def test_an_upper_case_name_is_refused_after_its_lower_case_spelling_was_accepted():
    accepted(pseudo() + [(b"x-seen", b"1")])
    assert refused(pseudo() + [(b"X-Seen", b"1")]) == (400, "invalid header field name")


@pytest.mark.parametrize("name", [b"", b"x y", b"x(y)", b"x\r", b"x\n", b"x\x00", b"caf\xc3\xa9",
                                  b"x\"", b"x\t"], ids=repr)
def test_a_field_name_that_is_not_a_token_is_400(name):
    assert refused(pseudo() + [(name, b"x")]) == (400, "invalid header field name")


def test_a_name_refused_once_is_refused_again():
    for _ in range(2):
        assert refused(pseudo() + [(b"x y", b"1")]) == (400, "invalid header field name")


@pytest.mark.parametrize("value", [b"", b"text/html; q=0.9", b"a b\tc", b"caf\xc3\xa9", b"\xff",
                                   b"~!"], ids=repr)
def test_visible_characters_inner_spaces_and_obs_text_are_a_value(value):
    assert accepted(pseudo() + [(b"x-v", value)]).headers[-1] == (b"x-v", value)


INVALID_VALUES = [b"a\rb", b"a\nb", b"a\x00b", b"\x00", b"a\x7fb", b"a\x01b", b" a", b"a ",
                  b"\ta", b"a\t", b" ", b"\t", b"a\r\n"]


@pytest.mark.parametrize("value", INVALID_VALUES, ids=repr)
def test_a_value_with_a_control_or_surrounding_whitespace_is_400(value):
    assert refused(pseudo() + [(b"x-v", value)]) == (400, "invalid header field value")


@pytest.mark.parametrize("value", INVALID_VALUES, ids=repr)
def test_an_invalid_value_among_valid_ones_is_400(value):
    fields = pseudo() + [(b"x-a", b"1"), (b"x-v", value), (b"x-b", b"2")]
    assert refused(fields) == (400, "invalid header field value")


# --- connection-specific fields (RFC 9113 section 8.2.2) ---------------------------------------

@pytest.mark.parametrize("name", sorted(CONNECTION_SPECIFIC))
def test_a_connection_specific_field_is_400(name):
    assert refused(pseudo() + [(name, b"x")]) == (
        400, f"connection-specific field {name.decode()} in HTTP/2")


@pytest.mark.parametrize("value", [b"trailers", b"Trailers"])
def test_te_trailers_is_allowed(value):
    assert (b"te", value) in accepted(pseudo() + [(b"te", value)]).headers


@pytest.mark.parametrize("value", [b"gzip", b"trailers, gzip", b"chunked", b""])
def test_te_other_than_trailers_is_400(value):
    assert refused(pseudo() + [(b"te", value)]) == (400, "TE other than trailers in HTTP/2")


# --- Host and :authority (RFC 9113 section 8.3.1) ---------------------------------------------

def test_a_host_made_from_authority_comes_first():
    request = accepted(pseudo(authority=b"example.com:8443") + [(b"accept", b"*/*")])
    assert request.headers == [(b"host", b"example.com:8443"), (b"accept", b"*/*")]


def test_without_authority_or_host_a_request_has_no_host():
    assert accepted(pseudo(authority=None)).headers == []


def test_a_host_without_authority_is_kept():
    assert accepted(pseudo(authority=None) + [(b"host", b"a")]).headers == [(b"host", b"a")]


def test_a_host_equal_to_authority_is_kept_once():
    request = accepted(pseudo(authority=b"a") + [(b"accept", b"*/*"), (b"host", b"a")])
    assert request.headers == [(b"accept", b"*/*"), (b"host", b"a")]


def test_a_host_equal_to_authority_but_for_case_is_accepted():
    request = accepted(pseudo(authority=b"Example.COM") + [(b"host", b"example.com")])
    assert request.headers == [(b"host", b"example.com")]


def test_a_host_that_differs_from_authority_is_400():
    assert refused(pseudo(authority=b"a") + [(b"host", b"b")]) == (
        400, "Host differs from :authority")


@pytest.mark.parametrize("authority", [b"a", None], ids=["with :authority", "without"])
def test_two_host_fields_are_400(authority):
    fields = pseudo(authority=authority) + [(b"host", b"a"), (b"host", b"a")]
    assert refused(fields) == (400, "a request needs at most one Host header")


@pytest.mark.parametrize("authority", [b"user@example.com", b"user:pw@example.com:80"])
def test_an_authority_with_userinfo_is_400(authority):
    assert refused(pseudo(authority=authority))[0] == 400


@pytest.mark.parametrize("authority", [b"a b", b"x:80a", b"[::1", b"a/b"])
def test_an_invalid_authority_is_400(authority):
    assert refused(pseudo(authority=authority)) == (400, "invalid Host header")


def test_an_invalid_host_without_authority_is_400():
    assert refused(pseudo(authority=None) + [(b"host", b"a b")]) == (400, "invalid Host header")


# --- cookies (RFC 9113 section 8.2.3) ----------------------------------------------------------

def test_cookie_crumbs_are_joined_into_one_field():
    fields = pseudo(authority=None) + [(b"cookie", b"a=1"), (b"accept", b"*/*"),
                                       (b"cookie", b"b=2"), (b"cookie", b"c=3")]
    assert accepted(fields).headers == [(b"accept", b"*/*"), (b"cookie", b"a=1; b=2; c=3")]


def test_one_cookie_is_left_as_it_is():
    assert accepted(pseudo(authority=None) + [(b"cookie", b"a=1; b=2")]).headers == [
        (b"cookie", b"a=1; b=2")]


def test_a_cookie_crumb_with_surrounding_whitespace_is_400():
    fields = pseudo() + [(b"cookie", b"a=1"), (b"cookie", b" b=2")]
    assert refused(fields) == (400, "invalid header field value")


# --- the limits (gunicorn's, counted as for an HTTP/1.1 head) ----------------------------------

def test_a_path_at_the_request_line_limit_is_accepted():
    # GET (3) + the path + 10, as "GET /... HTTP/1.1" counts: 100
    assert accepted(pseudo(path=b"/" + b"p" * 86), Limits(request_line=100))


def test_a_path_past_the_request_line_limit_is_414():
    assert refused(pseudo(path=b"/" + b"p" * 87), Limits(request_line=100)) == (
        414, "request line too long")


def test_the_method_counts_in_the_request_line():
    fields = pseudo(method=b"OPTIONS", path=b"/" + b"p" * 83)  # 7 + 84 + 10
    assert refused(fields, Limits(request_line=100))[0] == 414


def test_a_connect_authority_counts_as_the_target():
    authority = b"a" * 84 + b":443"  # CONNECT (7) + 88 + 10
    assert refused(connect(authority=authority), Limits(request_line=104))[0] == 414


def test_without_a_request_line_limit_the_path_is_bounded_by_the_head():
    limits = Limits(request_line=0)
    accepted(pseudo(path=b"/" + b"p" * (limits.head - 14)), limits)
    assert refused(pseudo(path=b"/" + b"p" * (limits.head - 13)), limits)[0] == 414


def test_a_field_at_the_field_size_limit_is_accepted():
    # "name: value\r\n": name and value get the limit less 4
    assert accepted(pseudo() + [(b"x-v", b"v" * 93)], Limits(field_size=100))


def test_a_field_past_the_field_size_limit_is_431():
    assert refused(pseudo() + [(b"x-v", b"v" * 94)], Limits(field_size=100)) == (
        431, "header field too large")


def test_as_many_fields_as_the_limit_are_accepted():
    assert accepted(pseudo() + [(b"x-%d" % i, b"v") for i in range(3)], Limits(fields=3))


def test_more_fields_than_the_limit_is_431():
    assert refused(pseudo() + [(b"x-%d" % i, b"v") for i in range(4)], Limits(fields=3)) == (
        431, "too many header fields")


def test_cookie_crumbs_count_as_one_field():
    # (a client splits one Cookie into crumbs to compress it: they are one field)
    fields = pseudo() + [(b"cookie", b"c%d=1" % i) for i in range(10)]
    assert accepted(fields, Limits(fields=1)).headers[-1][0] == b"cookie"


def test_a_header_block_past_the_head_limit_is_431():
    fields = pseudo() + [(b"x-%d" % i, b"v" * 8000) for i in range(9)]
    assert refused(fields) == (431, "request header block too large")


def test_a_content_length_within_the_body_limit_is_accepted():
    assert accepted(pseudo() + [(b"content-length", b"10")], Limits(body=10))


def test_a_content_length_past_the_body_limit_is_413():
    assert refused(pseudo() + [(b"content-length", b"11")], Limits(body=10)) == (
        413, "request body larger than 10 bytes")


def test_without_a_body_limit_any_content_length_is_accepted():
    assert accepted(pseudo() + [(b"content-length", b"9" * 18)], Limits(body=0))


# --- Content-Length and the other fields the rules look at ------------------------------------

def test_the_declared_length_is_the_content_length():
    assert declared_length(accepted(pseudo() + [(b"content-length", b"42")])) == 42


def test_a_request_without_content_length_declares_no_length():
    assert declared_length(accepted(pseudo())) is None


def test_a_content_length_repeated_with_one_value_is_that_value():
    fields = pseudo() + [(b"content-length", b"5"), (b"content-length", b"5")]
    assert declared_length(accepted(fields)) == 5


@pytest.mark.parametrize("values", [[b"5", b"6"], [b"5, 6"]], ids=repr)
def test_conflicting_content_lengths_are_400(values):
    fields = pseudo() + [(b"content-length", value) for value in values]
    assert refused(fields) == (400, "conflicting Content-Length values")


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+5", b"1" * 19])
def test_a_content_length_that_is_not_digits_is_400(value):
    assert refused(pseudo() + [(b"content-length", value)]) == (400, "invalid Content-Length")


@pytest.mark.parametrize("name", [b"content-type", b"authorization", b"proxy-authorization"])
def test_a_field_that_is_not_a_list_twice_is_400(name):
    assert refused(pseudo() + [(name, b"a"), (name, b"b")]) == (
        400, "a field that is not a list was sent twice")


def test_distinct_singleton_fields_are_accepted():
    assert accepted(pseudo() + [(b"content-type", b"a/b"), (b"authorization", b"x")])


@pytest.mark.parametrize("value", [b"100-continue", b"100-Continue"])
def test_expect_100_continue_is_noted(value):
    assert accepted(pseudo() + [(b"expect", value)]).expect_continue


@pytest.mark.parametrize("fields", [[], [(b"expect", b"something-else")]], ids=["none", "other"])
def test_no_100_continue_expectation_is_noted_otherwise(fields):
    assert not accepted(pseudo() + fields).expect_continue


@pytest.mark.parametrize("name", [b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"])
def test_a_proxy_field_marks_the_request_forwarded(name):
    assert accepted(pseudo() + [(name, b"x")]).forwarded


def test_a_request_without_proxy_fields_is_not_forwarded():
    assert not accepted(pseudo() + [(b"x-real", b"x")]).forwarded


# --- the same field rules as HTTP/1.1 ----------------------------------------------------------
# Each case is a request's regular fields (Host among them, since HTTP/1.1 needs
# one); HTTP/2 gets them after :method, :scheme and :path, HTTP/1.1 as a head.
# Left out, since the protocols differ by design: connection-specific fields
# (Connection, Transfer-Encoding, TE: gzip...: HTTP/1.1 reads them, HTTP/2
# refuses them), upper-case names (HTTP/1.1 is case-insensitive, HTTP/2 refuses),
# whitespace around a value (HTTP/1.1's optional whitespace, HTTP/2's malformed
# value), a request without Host (HTTP/2 may carry none), and one Content-Length
# value repeated (llhttp refuses it before the core's rule sees it; HTTP/2 takes
# RFC 9110 section 8.6's leave to read it as the one value).

def http1_verdict(fields: Fields, limits: Limits = DEFAULT_LIMITS,
                  path: bytes = b"/") -> int:
    """200 for a head the HTTP/1.1 parser accepts, else the status it refuses with."""
    head = b"GET %s HTTP/1.1\r\n%s\r\n" % (
        path, b"".join(b"%s: %s\r\n" % field for field in fields))
    (event,) = RequestParser(limits).feed(head)[:1]
    return event.status if isinstance(event, ProtocolError) else 200


def http2_verdict(fields: Fields, limits: Limits = DEFAULT_LIMITS, path: bytes = b"/") -> int:
    """200 for a header list `stream_request` accepts, else the status it refuses with."""
    try:
        stream_request(pseudo(path=path, authority=None) + fields, limits)
    except ProtocolError as error:
        return error.status
    return 200


HOST = (b"host", b"a")
SAME_RULES = [
    ("a plain request", [HOST], 200),
    ("a host and port", [(b"host", b"example.com:8080")], 200),
    ("an IPv6 host", [(b"host", b"[::1]:8080")], 200),
    ("obs-text in a value", [HOST, (b"x-v", b"caf\xc3\xa9")], 200),
    ("a tab inside a value", [HOST, (b"x-v", b"a\tb")], 200),
    ("an empty value", [HOST, (b"x-v", b"")], 200),
    ("every token character in a name", [HOST, (b"x!#$%&'*+-.^_`|~", b"1")], 200),
    ("a content-length", [HOST, (b"content-length", b"5")], 200),
    ("TE: trailers", [HOST, (b"te", b"trailers")], 200),
    ("distinct singletons", [HOST, (b"content-type", b"a/b"), (b"authorization", b"x")], 200),
    ("expect 100-continue", [HOST, (b"expect", b"100-continue")], 200),
    ("two cookies", [HOST, (b"cookie", b"a=1"), (b"cookie", b"b=2")], 200),
    ("a space in a name", [HOST, (b"x y", b"1")], 400),
    ("a parenthesis in a name", [HOST, (b"x(y)", b"1")], 400),
    ("a non-ASCII name", [HOST, (b"caf\xc3\xa9", b"1")], 400),
    ("a NUL in a value", [HOST, (b"x-v", b"a\x00b")], 400),
    ("a DEL in a value", [HOST, (b"x-v", b"a\x7fb")], 400),
    ("an escape in a value", [HOST, (b"x-v", b"a\x1bb")], 400),
    ("a CR in a value", [HOST, (b"x-v", b"a\rb")], 400),
    ("two Host fields", [HOST, (b"host", b"b")], 400),
    ("the same Host twice", [HOST, HOST], 400),
    ("an invalid Host", [(b"host", b"a b")], 400),
    ("a Host with userinfo", [(b"host", b"user@a")], 400),
    ("a Host with a bad port", [(b"host", b"a:80a")], 400),
    ("conflicting content-lengths", [HOST, (b"content-length", b"5"), (b"content-length", b"6")],
     400),
    ("a content-length list of two values", [HOST, (b"content-length", b"5, 6")], 400),
    ("a content-length of letters", [HOST, (b"content-length", b"abc")], 400),
    ("a negative content-length", [HOST, (b"content-length", b"-1")], 400),
    ("content-type twice", [HOST, (b"content-type", b"a"), (b"content-type", b"b")], 400),
    ("authorization twice", [HOST, (b"authorization", b"a"), (b"authorization", b"b")], 400),
]


@pytest.mark.parametrize("case, fields, status", SAME_RULES, ids=[row[0] for row in SAME_RULES])
def test_http2_and_http1_judge_a_field_alike(case, fields, status):
    assert (http2_verdict(fields), http1_verdict(fields)) == (status, status)


SAME_LIMITS = [
    ("a field at the size limit", Limits(field_size=100), b"/", [HOST, (b"x-v", b"v" * 93)], 200),
    ("a field past the size limit", Limits(field_size=100), b"/", [HOST, (b"x-v", b"v" * 94)],
     431),
    ("as many fields as the limit", Limits(fields=3), b"/",
     [HOST, (b"x-a", b"1"), (b"x-b", b"2")], 200),
    ("a field more than the limit", Limits(fields=3), b"/",
     [HOST, (b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")], 431),
    ("a target at the line limit", Limits(request_line=100), b"/" + b"p" * 86, [HOST], 200),
    ("a target past the line limit", Limits(request_line=100), b"/" + b"p" * 87, [HOST], 414),
    ("a content-length at the body limit", Limits(body=10), b"/",
     [HOST, (b"content-length", b"10")], 200),
    ("a content-length past the body limit", Limits(body=10), b"/",
     [HOST, (b"content-length", b"11")], 413),
    ("a header block past the head limit", DEFAULT_LIMITS, b"/",
     [HOST] + [(b"x-%d" % i, b"v" * 8000) for i in range(9)], 431),
]


@pytest.mark.parametrize("case, limits, path, fields, status", SAME_LIMITS,
                         ids=[row[0] for row in SAME_LIMITS])
def test_http2_and_http1_apply_a_limit_alike(case, limits, path, fields, status):
    assert (http2_verdict(fields, limits, path), http1_verdict(fields, limits, path)) == (
        status, status)


def test_the_path_counts_in_the_head_limit_as_the_target_does():
    fields = [HOST] + [(b"x-%02d" % i, b"v" * 6500) for i in range(10)]
    path = b"/" + b"p" * 1000  # the fields alone fit, with the target they do not
    assert (http2_verdict(fields, path=path), http1_verdict(fields, path=path)) == (431, 431)


# --- the DATA against Content-Length (RFC 9113 section 8.1.1) ---------------------------------

def test_data_of_the_declared_length_is_the_body():
    count = BodyCount(5, 0)
    count.arrived(2)
    count.arrived(3)
    count.ended()
    assert count.received == 5


def test_more_data_than_declared_is_400():
    count = BodyCount(5, 0)
    count.arrived(3)
    assert refusal(lambda: count.arrived(3)) == (400, "more DATA than Content-Length")


def test_a_stream_that_ends_short_of_the_declared_length_is_400():
    count = BodyCount(5, 0)
    count.arrived(4)
    assert refusal(count.ended) == (400, "less DATA than Content-Length")


def test_no_data_for_a_declared_length_of_zero_is_the_body():
    BodyCount(0, 0).ended()


def test_without_a_declared_length_any_data_is_the_body():
    count = BodyCount(None, 0)
    count.arrived(10 ** 9)
    count.ended()


def test_data_up_to_the_body_limit_is_accepted():
    count = BodyCount(None, 10)
    count.arrived(10)
    count.ended()


def test_data_past_the_body_limit_is_413():
    count = BodyCount(None, 10)
    count.arrived(6)
    assert refusal(lambda: count.arrived(5)) == (413, "request body larger than 10 bytes")


# --- h2c by Upgrade (RFC 7540 section 3.2) -----------------------------------------------------

SETTINGS = b"AAMAAABkAAQAAP__"  # MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535
SETTINGS_PAYLOAD = b"\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff"


def http1_request(*lines: bytes) -> Request:
    head = b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\n" + b"".join(line + b"\r\n" for line in lines)
    (request,) = RequestParser().feed(head + b"\r\n")[:1]
    assert isinstance(request, Request)
    return request


def upgrade(*lines: bytes, settings: bytes = SETTINGS) -> Request:
    return http1_request(b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c",
                         b"HTTP2-Settings: " + settings, *lines)


def test_an_h2c_upgrade_gives_its_settings_payload():
    assert h2c_settings(upgrade()) == SETTINGS_PAYLOAD


def test_an_h2c_upgrade_with_empty_settings_gives_an_empty_payload():
    assert h2c_settings(upgrade(settings=b"")) == b""


def test_the_upgrade_token_is_case_insensitive():
    request = http1_request(b"Upgrade: H2C", b"HTTP2-Settings: " + SETTINGS)
    assert h2c_settings(request) == SETTINGS_PAYLOAD


def test_an_upgrade_with_a_body_of_zero_is_an_h2c_upgrade():
    assert h2c_settings(upgrade(b"Content-Length: 0")) == SETTINGS_PAYLOAD


NO_H2C = [
    ("no Upgrade", http1_request(b"HTTP2-Settings: " + SETTINGS)),
    ("an Upgrade to websocket", http1_request(b"Upgrade: websocket",
                                              b"HTTP2-Settings: " + SETTINGS)),
    ("no HTTP2-Settings", http1_request(b"Connection: Upgrade", b"Upgrade: h2c")),
    ("two HTTP2-Settings", upgrade(b"HTTP2-Settings: " + SETTINGS)),
    ("settings of one base64 character", upgrade(settings=b"A")),
    ("settings of five base64 characters", upgrade(settings=b"AAAAA")),
    ("a payload that is not 6-byte settings", upgrade(settings=b"AAAA")),
    ("a body", upgrade(b"Content-Length: 5")),
    ("a chunked body", upgrade(b"Transfer-Encoding: chunked")),
    ("a plain request", http1_request()),
]


@pytest.mark.parametrize("case, request_", NO_H2C, ids=[row[0] for row in NO_H2C])
def test_a_request_that_is_no_plain_h2c_upgrade_gets_no_settings(case, request_):
    assert h2c_settings(request_) is None


@pytest.mark.parametrize("settings", [b"!!!!", SETTINGS + b"!", b"AAMA AABk AAQA AP__"],
                         ids=repr)
def test_settings_that_are_not_base64url_are_no_h2c_upgrade(settings):
    assert h2c_settings(upgrade(settings=settings)) is None


def test_the_upgraded_request_is_http2_without_the_connections_fields():
    request = upgraded_request(upgrade(b"Keep-Alive: 5", b"Accept: */*", b"TE: trailers"))
    assert request.headers == [(b"host", b"a"), (b"accept", b"*/*"), (b"te", b"trailers")]


def test_the_upgraded_request_is_the_same_request_over_http2():
    request = upgraded_request(upgrade())
    assert (request.method, request.target, request.path, request.query,
            request.http_version, request.keep_alive, request.upgrade) == (
        "GET", b"/x?y=1", b"/x", b"y=1", "2", True, False)
