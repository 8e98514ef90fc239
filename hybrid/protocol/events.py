"""The vocabulary of the HTTP/1.1 core: what the parser hands to a driver.

Events are small immutable tuples (NamedTuple is the cheapest immutable
object CPython builds, and the parser makes one or more per request); the
parser builds its per-request ones through `new_event_by_position` (below).
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Request(NamedTuple):
    """A complete, validated request head."""

    method: str
    target: bytes  # the request-target exactly as sent (RAW_URI / raw_path)
    path: bytes  # the path, still percent-encoded
    query: bytes
    http_version: str  # "1.0" or "1.1"
    headers: list[tuple[bytes, bytes]]  # in arrival order; names lower-cased, values stripped
    keep_alive: bool  # what the client asked for; the response may still close
    expect_continue: bool
    upgrade: bool  # the connection is to switch protocols after this head
    forwarded: bool = False  # it carries Forwarded or X-Forwarded-* fields

    def summary(self) -> str:
        """'METHOD target', as logs name a request."""
        return f"{self.method} {self.target.decode('latin-1')}"


class Data(NamedTuple):
    """A piece of the request body, de-chunked."""

    data: bytes


class EndOfMessage(NamedTuple):
    """The request body is complete."""

    trailers: tuple[tuple[bytes, bytes], ...]


class ConnectionClosed(NamedTuple):
    """The client closed its side cleanly between requests."""


class ProtocolError(Exception):
    """The peer broke HTTP; carries the status to answer before closing.

    Raised inside the core, queued as an event for the driver. After it the
    connection must be closed: the byte stream can no longer be trusted.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"ProtocolError({self.status}, {self.detail!r})"


Event = Request | Data | EndOfMessage | ConnectionClosed | ProtocolError

# The parser builds a Request, and a Data for most bodies, per request.
# `Request(...)` runs the __new__ that NamedTuple writes in Python (a frame, and
# its arguments bound one by one); tuple.__new__ builds the same tuple in C
# (0.34 us against 0.70 for a Request, 0.26 against 0.66 for a Data). Built by
# their constructors, the parser benchmark (benchmarks/parser_bench.py) was 7%
# slower, past its noise (2.87x against 2.69x bare httptools, issue 30). But
# tuple.__new__ takes the fields by position and checks nothing: reorder a
# class's fields and every request it builds is scrambled, silently. So it is
# used under this name only, for those two builds, and tests/test_protocol.py
# pins the order they rely on (the classes' `_fields`, and a parsed Request
# equal to one built by keyword).
new_event_by_position: Final = tuple.__new__
"""`new_event_by_position(Request, (method, target, ...))`: an event from all its
fields, in the order its class declares them."""
