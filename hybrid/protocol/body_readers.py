"""The careful path's body readers: Content-Length and chunked (RFC 9112 sections 6 and 7).

When the careful path (parser.py) has parsed a head with a body, a reader takes
the bytes that follow, as they come, and gives the body's events one at a time,
as h11's readers do: `read(buffer)` returns the next event the buffer completes
(a `Data`, then the `EndOfMessage`) and the bytes it did not take, or None and
the bytes it keeps for later (part of a chunk-size line, of a trailer line). A
malformed body raises `ProtocolError`.

Chunked bodies are decoded here rather than by llhttp because llhttp is
stricter than the RFC about chunk extensions and refuses framing fields in
trailers, which the RFC says to drop. Memory is bounded whatever the client
sends: chunk-size lines and trailers are capped, and data is handed out as it
arrives. (The fast path leaves Content-Length bodies to llhttp.)
"""

from __future__ import annotations

import re
from typing import Final

from hybrid.protocol.events import Data, EndOfMessage, ProtocolError
from hybrid.protocol.fields import TOKEN, check_trailer_field

MAX_CHUNK_LINE: Final = 4096
MAX_CHUNK_SIZE_DIGITS: Final = 15  # 16 hex digits could wrap a signed 64-bit size elsewhere
END_NO_TRAILERS: Final = EndOfMessage(())

_QUOTED: Final = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# RFC 9112 section 7.1: whitespace (BWS) only around a chunk extension's ";" and
# "=", never at the end of the line ("5 " is as malformed as " 5").
_CHUNK_LINE: Final = re.compile(
    rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*" + TOKEN +
    rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + _QUOTED + rb"))?)*\Z").match


class ContentLengthReader:
    """A body of a length known from its head."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length  # bytes of the body still to come

    def read(self, buffer: bytes) -> tuple[Data | EndOfMessage | None, bytes]:
        """The next event `buffer` completes, and the bytes after it."""
        remaining = self.remaining
        if not remaining:
            return END_NO_TRAILERS, buffer
        if not buffer:
            return None, buffer
        if len(buffer) <= remaining:
            data, buffer = buffer, b""
        else:
            data, buffer = buffer[:remaining], buffer[remaining:]
        self.remaining = remaining - len(data)
        return Data(data), buffer


# The parts of a chunked body, in the order they come.
_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILERS: Final = 3


class ChunkedReader:
    """A chunked body, de-chunked (RFC 9112 section 7.1).

    Its parts, in turn: SIZE, a chunk-size line (its extensions checked, then
    ignored); DATA, that many bytes, handed out as they come; DATA_END, the CRLF
    after them; then SIZE again. A size of 0 leads to TRAILERS instead: field
    lines up to a blank line, which ends the body.
    """

    __slots__ = ("_part", "_chunk_left", "_body_size", "_body_limit", "_trailers",
                 "_trailer_bytes", "_trailer_limit", "_max_trailers")

    remaining = None
    """Bytes of the body still to come: unknown until its last chunk."""

    def __init__(self, body_limit: int, trailer_limit: int, max_trailers: int) -> None:
        self._part = _SIZE
        self._chunk_left = 0  # bytes of the current chunk still due
        self._body_size = 0
        self._body_limit = body_limit  # 413 beyond; 0 = no limit
        self._trailers: list[tuple[bytes, bytes]] = []
        self._trailer_bytes = 0
        self._trailer_limit = trailer_limit  # bytes of the trailer section: 431 beyond
        self._max_trailers = max_trailers

    def read(self, buffer: bytes) -> tuple[Data | EndOfMessage | None, bytes]:
        """The next event `buffer` completes, and the bytes after it."""
        while buffer:
            part = self._part
            if part == _DATA:
                chunk_left = self._chunk_left
                if len(buffer) <= chunk_left:
                    data, buffer = buffer, b""
                else:
                    data, buffer = buffer[:chunk_left], buffer[chunk_left:]
                self._chunk_left = chunk_left - len(data)
                if not self._chunk_left:
                    self._part = _DATA_END
                return Data(data), buffer
            if part == _DATA_END:
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise ProtocolError(400, "chunk data longer than its chunk size")
                buffer = buffer[2:]
                self._part = _SIZE
                continue
            eol = buffer.find(b"\r\n")
            if part == _SIZE:
                if eol < 0:
                    if len(buffer) > MAX_CHUNK_LINE or b"\n" in buffer:
                        raise ProtocolError(400, "invalid chunk size line")
                    break
                self._chunk_size(buffer[:eol])
            else:
                if eol < 0:
                    if b"\n" in buffer:
                        raise ProtocolError(400, "invalid trailer field")
                    if len(buffer) + self._trailer_bytes > self._trailer_limit:
                        raise ProtocolError(431, "trailer section too large")
                    break
                if not eol:
                    return EndOfMessage(tuple(self._trailers)), buffer[2:]
                self._trailer(buffer[:eol])
            buffer = buffer[eol + 2:]
        return None, buffer

    def _chunk_size(self, line: bytes) -> None:
        match = _CHUNK_LINE(line)
        if match is None:
            raise ProtocolError(400, "invalid chunk size line")
        digits = match.group(1).lstrip(b"0")
        if len(digits) > MAX_CHUNK_SIZE_DIGITS:
            raise ProtocolError(400, "chunk size too large")
        size = int(digits or b"0", 16)
        if size == 0:
            self._part = _TRAILERS
            return
        self._body_size += size
        if self._body_limit and self._body_size > self._body_limit:
            raise ProtocolError(413, f"request body larger than {self._body_limit} bytes")
        self._chunk_left = size
        self._part = _DATA

    def _trailer(self, line: bytes) -> None:
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > self._trailer_limit or len(self._trailers) >= self._max_trailers:
            raise ProtocolError(431, "trailer section too large")
        name, colon, value = line.partition(b":")
        if not colon:
            raise ProtocolError(400, "invalid trailer field")
        check_trailer_field(name, value)
        self._trailers.append((name, value.strip(b" \t")))


BodyReader = ContentLengthReader | ChunkedReader
