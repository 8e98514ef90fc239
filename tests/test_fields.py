"""The core's field rules on their own, without llhttp (hybrid/protocol/fields.py).

The HTTP/1.1 parser applies them to what llhttp tokenised; HTTP/2 will apply
them to its decoded header lists. A refusal is the ProtocolError the parser
answers with: its status and its detail are pinned here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hybrid.protocol.events import ProtocolError
from hybrid.protocol.fields import (
    FORBIDDEN_TRAILERS,
    check_authority_form,
    check_host,
    check_singletons,
    check_trailer_field,
    check_transfer_encoding,
    content_length,
    is_connection_specific,
    is_field_name,
    is_field_value,
)


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """The status and detail of the ProtocolError `call` raises."""
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value.status, caught.value.detail


# --- names and values -----------------------------------------------------------------

@pytest.mark.parametrize("name", [b"Content-Type", b"x-custom_1", b"!#$%&'*+-.^_`|~"])
def test_a_token_is_a_field_name(name):
    assert is_field_name(name)


@pytest.mark.parametrize("name", [b"", b"X Y", b"X:Y", b"X(Y)", b"X\"", b"caf\xc3\xa9", b"X\t"])
def test_anything_but_a_token_is_no_field_name(name):
    assert not is_field_name(name)


@pytest.mark.parametrize("value", [b"", b"text/html; q=0.9", b" padded\t", b"caf\xc3\xa9", b"~!"])
def test_visible_characters_spaces_tabs_and_obs_text_are_a_field_value(value):
    assert is_field_value(value)


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\x00b", b"a\x7fb", b"a\x1bb"])
def test_a_control_character_makes_no_field_value(value):
    assert not is_field_value(value)


# --- connection-specific fields (RFC 9113 section 8.2.2) --------------------------------------

@pytest.mark.parametrize("name", [b"connection", b"keep-alive", b"proxy-connection",
                                  b"transfer-encoding", b"upgrade"])
def test_the_connection_fields_are_connection_specific(name):
    assert is_connection_specific(name, b"anything")


@pytest.mark.parametrize("value", [b"trailers", b"Trailers", b" trailers "])
def test_te_trailers_is_not_connection_specific(value):
    assert not is_connection_specific(b"te", value)


@pytest.mark.parametrize("value", [b"gzip", b"trailers, deflate", b""])
def test_te_with_another_value_is_connection_specific(value):
    assert is_connection_specific(b"te", value)


@pytest.mark.parametrize("name", [b"host", b"content-type", b"content-length", b"trailer"])
def test_a_field_about_the_message_is_not_connection_specific(name):
    assert not is_connection_specific(name, b"x")


# --- Host and the authority form --------------------------------------------------------------

@pytest.mark.parametrize("host", [b"example.com", b"example.com:8080", b"example.com:", b"",
                                  b"127.0.0.1:80", b"[::1]", b"[::1]:443", b"xn--bcher-kva.ch",
                                  b"a%20b"])
def test_a_host_with_a_port_of_digits_or_none_is_valid(host):
    check_host(host)


@pytest.mark.parametrize("host", [b"a b", b"x:80a", b"a:1:2", b"[::1", b"user@host", b"a/b",
                                  b"::1"])
def test_an_invalid_host_is_400(host):
    assert refusal(lambda: check_host(host)) == (400, "invalid Host header")


@pytest.mark.parametrize("target", [b"example.com:443", b"[::1]:8443"])
def test_host_and_port_is_the_authority_form(target):
    check_authority_form(target)


@pytest.mark.parametrize("target", [b"example.com", b"/", b"example.com:443/x", b"*"])
def test_a_target_without_a_port_or_with_a_path_is_not_the_authority_form(target):
    assert refusal(lambda: check_authority_form(target)) == (
        400, "CONNECT needs an authority-form target (host:port)")


# --- Content-Length ---------------------------------------------------------------------------

@pytest.mark.parametrize("values, length", [([b"42"], 42), ([b"0"], 0), ([b"007"], 7)])
def test_a_content_length_of_digits_is_its_value(values, length):
    assert content_length(values) == length


@pytest.mark.parametrize("values", [[b"5", b"5"], [b"5, 5"], [b"5,5", b"5"]])
def test_content_lengths_that_repeat_one_value_are_that_value(values):
    assert content_length(values) == 5


@pytest.mark.parametrize("values", [[b"5", b"6"], [b"5, 6"], [b"5", b"5, 6"]])
def test_differing_content_lengths_are_400(values):
    assert refusal(lambda: content_length(values)) == (400, "conflicting Content-Length values")


@pytest.mark.parametrize("values", [[b"-1"], [b"+5"], [b""], [b"1.0"], [b"0x5"], [b"\xef\xbc\x95"]])
def test_a_content_length_that_is_not_digits_is_400(values):
    assert refusal(lambda: content_length(values)) == (400, "invalid Content-Length")


def test_a_content_length_beyond_18_digits_is_400():
    assert content_length([b"9" * 18]) == 10 ** 18 - 1
    assert refusal(lambda: content_length([b"1" * 19])) == (400, "invalid Content-Length")


# --- Transfer-Encoding ------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[b"chunked"], [b"Chunked"], [b" chunked "]])
def test_chunked_alone_is_a_transfer_encoding_served(values):
    check_transfer_encoding(values)


@pytest.mark.parametrize("values", [[b"gzip"], [b"chunked, gzip"], [b"chunked, chunked"],
                                    [b"chunked", b"chunked"]])
def test_chunked_not_last_or_more_than_once_is_400(values):
    assert refusal(lambda: check_transfer_encoding(values)) == (
        400, "the final transfer coding must be chunked, once")


@pytest.mark.parametrize("values", [[b"chunked,"], [b"chu nked"], [b"gzip;q=1, chunked"]])
def test_a_transfer_coding_that_is_not_a_token_is_400(values):
    assert refusal(lambda: check_transfer_encoding(values)) == (400, "invalid Transfer-Encoding")


@pytest.mark.parametrize("values", [[b"gzip, chunked"], [b"gzip", b"chunked"]])
def test_another_coding_before_chunked_is_501(values):
    assert refusal(lambda: check_transfer_encoding(values)) == (
        501, "transfer coding 'gzip' not implemented")


# --- fields that are not lists ----------------------------------------------------------------

def test_distinct_singleton_fields_pass():
    check_singletons([b"content-type", b"authorization"])


def test_a_singleton_field_twice_is_400():
    assert refusal(lambda: check_singletons([b"content-type", b"authorization", b"content-type"])) \
        == (400, "a field that is not a list was sent twice")


# --- trailers ---------------------------------------------------------------------------------

def test_an_end_to_end_trailer_field_is_accepted():
    check_trailer_field(b"X-Checksum", b" abc123")


@pytest.mark.parametrize("name, value", [(b"X Y", b"v"), (b"", b"v"), (b"X", b"a\x00b")])
def test_a_trailer_field_with_an_invalid_name_or_value_is_400(name, value):
    assert refusal(lambda: check_trailer_field(name, value)) == (400, "invalid trailer field")


@pytest.mark.parametrize("name", sorted(FORBIDDEN_TRAILERS))
def test_a_trailer_that_could_reframe_or_reroute_is_400_by_its_name(name):
    spelt = name.title()
    assert refusal(lambda: check_trailer_field(spelt, b"x")) == (
        400, f"{spelt.decode()} is not allowed in a trailer")
