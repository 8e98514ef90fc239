"""The core's field rules, callable on their own: bytes in, a verdict out.

Pure functions over field names and values, with no parser underneath, so that
a header list that did not come through llhttp (HTTP/2's, decoded by HPACK) is
judged by the same rules as an HTTP/1.1 head. Those that refuse raise the
`ProtocolError` the HTTP/1.1 parser answers with (status and detail); the
predicates return a bool and leave the answer to the caller.

Names are lower-case where a function says so: the parser lower-cases them as
it collects them, and HTTP/2 sends nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from hybrid.protocol.events import ProtocolError

TCHARS: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""The characters of a token (RFC 9110 section 5.6.2): field names, methods and
transfer codings are tokens."""
TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
"""A token, as a regular expression."""

_IS_TOKEN: Final = re.compile(TOKEN + rb"\Z").match
_FIELD_VALUE_OK: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z").match
_REG_NAME_CHARS: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:"
_COLON: Final = ord(":")
_HOST_OK: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z").match

CONNECTION_SPECIFIC: Final = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
})
"""Fields about one connection, not the message (RFC 9113 section 8.2.2): HTTP/1.1
carries them, and HTTP/2 refuses a message with any of them."""

# Fields a trailer must not carry: those that could change how the message is
# framed (Content-Length, Transfer-Encoding, Trailer), where it is routed (Host),
# or what the connection does (the hop-by-hop ones). A 400, as gunicorn answers,
# not dropped: a trailer that tries to reframe or re-route a request is an attack,
# not a slip. Any other field is accepted and never merged into the header section
# (RFC 9110 section 6.5.2), even one section 6.5.1 tells senders not to put there
# (Content-Type, Authorization, Cookie, Range, If-*...): a recipient that does not
# merge it has nothing to fear from it.
FORBIDDEN_TRAILERS: Final = frozenset({
    b"content-length", b"transfer-encoding", b"trailer", b"host",
    b"connection", b"keep-alive", b"upgrade", b"te",
})

SINGLETONS: Final = frozenset({b"content-type", b"authorization", b"proxy-authorization"})
"""Fields that are not lists (RFC 9110 section 5.3): sent twice, a request is a 400
(Host and Content-Length have rules of their own)."""


def is_field_name(name: bytes) -> bool:
    """A field name is a token (RFC 9110 section 5.1)."""
    return _IS_TOKEN(name) is not None


def is_field_value(value: bytes) -> bool:
    """A field value, with the whitespace around it as it followed the colon: visible
    characters, spaces, tabs and obs-text; no CR, LF, NUL or other control (RFC 9110
    section 5.5)."""
    return _FIELD_VALUE_OK(value) is not None


def is_connection_specific(name: bytes, value: bytes) -> bool:
    """Whether the field `name` (lower-case) is about the connection, not the message
    (RFC 9113 section 8.2.2): Connection and the fields RFC 9110 section 7.6.1 names.
    TE is one too unless its value is "trailers", the one HTTP/2 allows."""
    if name in CONNECTION_SPECIFIC:
        return True
    return name == b"te" and value.strip(b" \t").lower() != b"trailers"


def check_host(value: bytes) -> None:
    """A Host value is uri-host [":" port] (RFC 9110 section 7.2), the authority
    without userinfo that HTTP/2's :authority carries too; empty is allowed.

    Raises ProtocolError(400) otherwise.
    """
    # The common case in C: only reg-name characters, and no colon, or one
    # before a port of digits (RFC 3986: port = *DIGIT); the rest, the regex.
    if value.translate(None, _REG_NAME_CHARS) or (
            _COLON in value
            and (value.count(b":") > 1 or not value.rpartition(b":")[2].isdigit())):
        if not _HOST_OK(value):
            raise ProtocolError(400, "invalid Host header")


def check_authority_form(target: bytes) -> None:
    """A CONNECT request's target is the authority form, host:port (RFC 9112 section
    3.2.3). Raises ProtocolError(400) otherwise."""
    if target[:1] == b"/" or b"/" in target or b":" not in target:
        raise ProtocolError(400, "CONNECT needs an authority-form target (host:port)")


def content_length(values: Sequence[bytes]) -> int:
    """The body length that a request's Content-Length field lines give (one or more
    values, as they came): digits only, and lines or list members that repeat one
    value are that value (RFC 9110 section 8.6).

    Raises ProtocolError(400) for differing values, anything but digits, or more
    digits than a signed 64-bit size holds.
    """
    value = values[0]
    if len(values) > 1 or not value.isdigit():
        distinct = {v.strip(b" \t") for v in b",".join(values).split(b",")}
        if len(distinct) != 1:
            raise ProtocolError(400, "conflicting Content-Length values")
        (value,) = distinct
        if not value.isdigit():
            raise ProtocolError(400, "invalid Content-Length")
    if len(value) > 18:
        raise ProtocolError(400, "invalid Content-Length")
    return int(value)


def check_transfer_encoding(values: Sequence[bytes]) -> None:
    """The transfer codings a request's Transfer-Encoding lines name (one or more
    values, as they came): tokens, the last one chunked, chunked once (RFC 9112
    section 6.1), and nothing before it, since this server decodes no other.

    Raises ProtocolError: 400 for a malformed list, 501 for another coding.
    """
    codings = [c.strip(b" \t").lower() for c in b",".join(values).split(b",")]
    if any(not _IS_TOKEN(c) for c in codings):
        raise ProtocolError(400, "invalid Transfer-Encoding")
    if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        raise ProtocolError(400, "the final transfer coding must be chunked, once")
    if len(codings) > 1:
        raise ProtocolError(501, f"transfer coding {codings[0].decode()!r} not implemented")


def check_singletons(names: Sequence[bytes]) -> None:
    """`names`: the lower-case names of a head's fields that are in SINGLETONS, one
    per field line. Raises ProtocolError(400) if one of them repeats."""
    if len(set(names)) < len(names):
        raise ProtocolError(400, "a field that is not a list was sent twice")


def check_trailer_field(name: bytes, value: bytes) -> None:
    """A trailer field line, split at its colon: a valid name and value, and not a
    field that could reframe, re-route or reconfigure the message (FORBIDDEN_TRAILERS).

    Raises ProtocolError(400) otherwise.
    """
    if not is_field_name(name) or not is_field_value(value):
        raise ProtocolError(400, "invalid trailer field")
    if name.lower() in FORBIDDEN_TRAILERS:
        raise ProtocolError(400, f"{name.decode('ascii')} is not allowed in a trailer")
