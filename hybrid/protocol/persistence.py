"""Whether a connection may carry another request: the one decision every driver asks.

It is taken when the answer's head is written, since the head must say whether
the connection closes. Three parties have a say:

* the request: HTTP/1.0 without `Connection: keep-alive`, or `Connection: close`
  (`Request.keep_alive`, from the parser);
* the server: a worker that is stopping, a class that serves one request a
  connection, `--keep-alive 0` (the driver's `server_willing`);
* what the app left of the request body: the connection persists only if the
  server can skip the rest, short and of known length (`DRAIN_BYTES`).

The answer's own framing may still close what this allowed (the app's
`Connection: close`, a body that runs to the close, fewer bytes than
announced): `ResponseFramer` says so, and the drivers follow `framer.keep_alive`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from hybrid.protocol.events import Data, EndOfMessage, Event, Request

DRAIN_BYTES: Final = 1 << 16
"""Unread body a kept-alive connection may skip after the answer; more closes it."""


def may_persist(request: Request, server_willing: bool, unread: int = 0,
                rest: int | None = 0) -> bool:
    """Whether the connection may outlive the answer to `request` now begun.

    `unread`: bytes of the body parsed but not read by the app; `rest`: bytes of
    the body not parsed yet, None when unknown (chunked, held back for a 100
    Continue, or failed). Both 0: the body is all read (or there was none).
    """
    if not (server_willing and request.keep_alive):
        return False
    if request.upgrade and rest != 0:
        # The parser pauses at an Upgrade request's end to let the connection
        # switch; resuming it after skipping the rest of the body from the wire
        # is not worth its complexity for a case this rare: close.
        return False
    return rest is not None and unread + rest <= DRAIN_BYTES


def may_keep_skipping(skipped: int) -> bool:
    """Whether a connection that has skipped `skipped` bytes of an unread body
    may go on skipping rather than close."""
    return skipped <= DRAIN_BYTES


def unread_body(pending: Iterable[Event], rest_to_parse: int | None) -> tuple[int, int | None]:
    """`may_persist`'s `unread` and `rest` for a driver that queues the parser's
    events (`pending`, in order) until the app reads them.

    Until the queue holds the request's end the parser is still inside the body
    and `rest_to_parse` (`RequestParser.body_rest`) is the rest; after it, the
    parser has moved on to a pipelined request: an EndOfMessage means nothing is
    left to parse, and an error that the body's end is unknown.
    """
    unread = 0
    for event in pending:
        if type(event) is not Data:
            return unread, 0 if type(event) is EndOfMessage else None
        unread += len(event.data)
    return unread, rest_to_parse
