"""How much of each kind of HTTP/2 frame a client may send: the flood budgets.

An HTTP/2 client can make a server work hard for frames that cost it
nothing: streams opened and reset at once (Rapid Reset, CVE-2023-44487),
streams it tricks the server into resetting (MadeYouReset, CVE-2025-8671),
SETTINGS, PING, PRIORITY and WINDOW_UPDATE frames by the thousand, empty
DATA frames, a header block spread over endless CONTINUATION frames. Each
kind has a per-connection budget here, kept whatever the engine bounds itself
(libnghttp2 has bounds of its own, which may change under us). A client past
one gets a GOAWAY (ENHANCE_YOUR_CALM) and the connection closes, with the
reason in one line.

`FloodBudget.scan` reads the 9-byte frame headers in the bytes as they
arrive, before the engine parses them, skipping payloads: the count does
not depend on which events the engine chooses to report. A budget is a token
bucket: a burst a well-behaved client stays far below, refilled at a steady
rate. WINDOW_UPDATEs are also refilled by the DATA this server sends (a
client acknowledges what it receives), and stream resets by the server
(`server_reset`) draw on the same budget as the client's.

A connection that has carried STREAMS_PER_CONNECTION streams is retired with
a graceful GOAWAY (`retiring`): no flood, but a client's connection is
rotated now and then, as HTTP/1.1 keep-alive connections are.

No I/O: the connection passes bytes and the time.
"""

from __future__ import annotations

import struct
from typing import Final

_FRAME_HEADER: Final = struct.Struct(">BHBBL")  # length (24 bits, as 8 + 16), type, flags, stream
FRAME_HEADER_SIZE: Final = 9

DATA: Final = 0
HEADERS: Final = 1
PRIORITY: Final = 2
RST_STREAM: Final = 3
SETTINGS: Final = 4
PUSH_PROMISE: Final = 5
PING: Final = 6
GOAWAY: Final = 7
WINDOW_UPDATE: Final = 8
CONTINUATION: Final = 9
PRIORITY_UPDATE: Final = 0x10  # RFC 9218: browsers send one per request, as PRIORITY's successor
END_STREAM: Final = 0x1
PADDED: Final = 0x8
ACK: Final = 0x1
END_HEADERS: Final = 0x4

MAX_CONTINUATIONS: Final = 32  # CONTINUATION frames after one HEADERS
STREAMS_PER_CONNECTION = 1 << 20  # then a graceful GOAWAY: the client reconnects, maybe
# to another worker (nginx's keepalive_requests, 1000, is for many short clients: an
# HTTP/2 client multiplexes one connection for a whole session)
WINDOW_REFILL_BYTES: Final = 1024  # DATA sent that earns the client one WINDOW_UPDATE


class TokenBucket:
    """`burst` tokens at most, `rate` more a second."""

    __slots__ = ("tokens", "burst", "rate", "last")

    def __init__(self, burst: float, rate: float) -> None:
        self.tokens = self.burst = burst
        self.rate = rate
        self.last = 0.0

    def take(self, now: float) -> bool:
        """One token, if there is one."""
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True

    def add(self, tokens: float) -> None:
        self.tokens = min(self.burst, self.tokens + tokens)


class Flood(Exception):
    """A client spent a budget; the message names which, for the log."""


class FloodBudget:
    """One connection's budgets, and where the frame headers are in its bytes."""

    __slots__ = ("resets", "settings", "pings", "priorities", "window_updates", "empties",
                 "header_block_limit", "streams", "last_stream", "_header", "_skip",
                 "_block", "_continuations")

    def __init__(self, max_concurrent_streams: int, header_block_limit: int,
                 skip: int = 0) -> None:
        # Resets: a browser cancels a few streams a second; an attack, thousands.
        self.resets = TokenBucket(max(200, 2 * max_concurrent_streams), 100)
        self.settings = TokenBucket(100, 10)
        self.pings = TokenBucket(100, 10)
        self.priorities = TokenBucket(1000, 200)  # (browsers send one per stream, or a tree)
        self.window_updates = TokenBucket(1000, 100)
        self.empties = TokenBucket(100, 10)  # empty DATA frames, unknown frame types
        self.header_block_limit = header_block_limit
        self.streams = 0  # streams the client opened
        self.last_stream = 0  # the highest it opened
        self._header = b""  # the part of a frame header read so far
        self._skip = skip  # payload bytes (or the preface) still to pass over
        self._block = 0  # bytes of the header block being continued (0: none)
        self._continuations = 0

    def scan(self, data: bytes, now: float) -> None:
        """Count the frames whose headers `data` holds. Raises Flood."""
        position = min(self._skip, len(data))
        self._skip -= position
        end = len(data)
        while position < end:
            if self._header:
                needed = FRAME_HEADER_SIZE - len(self._header)
                self._header += data[position:position + needed]
                position += needed
                if len(self._header) < FRAME_HEADER_SIZE:
                    return
                header, self._header = self._header, b""
                length_high, length_low, kind, flags, stream = _FRAME_HEADER.unpack(header)
            elif end - position < FRAME_HEADER_SIZE:
                self._header = data[position:]
                return
            else:
                length_high, length_low, kind, flags, stream = \
                    _FRAME_HEADER.unpack_from(data, position)
                position += FRAME_HEADER_SIZE
            length = length_high << 16 | length_low
            if kind == DATA and flags & PADDED and position < end:
                # A DATA frame of padding alone is as empty as one of nothing: its
                # first byte is the padding's length. (Cut off by the read: counted
                # as not empty.)
                length -= 1 + data[position]
                self._count(kind, flags, stream & 0x7FFFFFFF, length, now)
                length += 1 + data[position]
            else:
                self._count(kind, flags, stream & 0x7FFFFFFF, length, now)
            skipped = min(length, end - position)
            position += skipped
            self._skip = length - skipped

    def _count(self, kind: int, flags: int, stream: int, length: int, now: float) -> None:
        if self._block and kind != CONTINUATION:
            return  # (a protocol error: the engine ends the connection for it)
        if kind == HEADERS:
            if stream > self.last_stream:
                self.last_stream = stream
                self.streams += 1
            if not flags & END_HEADERS:
                self._block = length or 1
                self._continuations = 0
        elif kind == DATA:
            if length <= 0 and not flags & END_STREAM and not self.empties.take(now):
                raise Flood("too many empty DATA frames")
        elif kind == CONTINUATION:
            self._block += length
            self._continuations += 1
            if self._block > self.header_block_limit:
                raise Flood(f"a header block over {self.header_block_limit} bytes "
                            "(CONTINUATION flood)")
            if self._continuations > MAX_CONTINUATIONS:
                raise Flood(f"more than {MAX_CONTINUATIONS} CONTINUATION frames in one "
                            "header block")
            if flags & END_HEADERS:
                self._block = 0
        elif kind == RST_STREAM:
            if not self.resets.take(now):
                raise Flood("too many stream resets (Rapid Reset)")
        elif kind == WINDOW_UPDATE:
            if not self.window_updates.take(now):
                raise Flood("too many WINDOW_UPDATE frames")
        elif kind == PING:
            if not flags & ACK and not self.pings.take(now):
                raise Flood("too many PING frames")
        elif kind == SETTINGS:
            if not flags & ACK and not self.settings.take(now):
                raise Flood("too many SETTINGS frames")
        elif kind == PRIORITY or kind == PRIORITY_UPDATE:
            if not self.priorities.take(now):
                raise Flood("too many PRIORITY frames")
        elif kind > CONTINUATION and kind != PRIORITY_UPDATE and not self.empties.take(now):
            raise Flood("too many frames of unknown types")

    @property
    def in_header_block(self) -> bool:
        """A HEADERS frame came without END_HEADERS and its CONTINUATIONs have not
        ended it yet."""
        return self._block > 0

    @property
    def retiring(self) -> bool:
        """The client has opened STREAMS_PER_CONNECTION streams: time to go away."""
        return self.streams >= STREAMS_PER_CONNECTION

    def server_reset(self, now: float) -> None:
        """The server reset a stream the client made it reset (MadeYouReset: a
        malformed request, a frame that breaks a stream's rules). Raises Flood."""
        if not self.resets.take(now):
            raise Flood("too many streams the client made the server reset (MadeYouReset)")

    def data_sent(self, size: int) -> None:
        """The server sent `size` bytes: the client may acknowledge them."""
        self.window_updates.add(size / WINDOW_REFILL_BYTES)
