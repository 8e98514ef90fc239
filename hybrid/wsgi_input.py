"""`wsgi.input` and `wsgi.file_wrapper` (PEP 3333), for every worker that serves WSGI.

The body is read on demand through a `receive()` the worker gives (the next
piece of the request body, b"" at its end), so the sync and thread classes
(a socket, or what the poller gathered) and the bridge (ASGI messages) share
it; a body cut short, malformed or too slow raises `BodyReadError`, never a
quiet end that an app would take for the whole body.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO

from mypy_extensions import mypyc_attr


@mypyc_attr(native_class=False)
class BodyReadError(OSError):
    """The request body could not be read: cut short, malformed or too slow.

    Raised from `wsgi.input`; `status` is what to answer if the app lets it
    propagate before its response started.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class InputStream:
    """`wsgi.input`: exactly the request body, read on demand.

    `receive()` returns the next piece of the body and b"" once it is
    complete; it raises BodyReadError if the body is cut short, so an app
    never mistakes a truncated body for a whole one.
    """

    def __init__(self, receive: Callable[[], bytes]) -> None:
        self._receive = receive
        self._buffer = bytearray()
        self._eof = False
        self.error: BodyReadError | None = None
        """Why reading failed, if it did (the app may have turned it into another error)."""

    def _fill(self) -> bool:
        """Append one more piece to the buffer; False at the end of the body."""
        if self._eof:
            return False
        try:
            data = self._receive()
        except BodyReadError as exc:
            self.error = exc
            raise
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        scanned = 0
        while True:
            newline = self._buffer.find(b"\n", scanned)
            if newline >= 0:
                return self._take(min(newline + 1, limit))
            if len(self._buffer) >= limit:
                return self._take(limit)
            scanned = len(self._buffer)
            if not self._fill():
                return self._take(min(len(self._buffer), limit))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> InputStream:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class EmptyInput:
    """`wsgi.input` of a request without a body (most requests): at its end from
    the start, and never failing."""

    error: BodyReadError | None = None

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> EmptyInput:
        return self

    def __next__(self) -> bytes:
        raise StopIteration


Input = InputStream | EmptyInput


class FileWrapper:
    """`wsgi.file_wrapper`: iterates a file in blocks; workers may sendfile() it."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data

    def fileno(self) -> int | None:
        """The file's descriptor when the OS can send it directly, else None."""
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, ValueError):
            return None
