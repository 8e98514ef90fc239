"""The two channels from a worker to its arbiter, both created before fork.

`Heartbeat`: eight bytes of anonymous shared memory holding the worker's
last `time.monotonic()` reading. Beating is one memory write (no syscall, no
file whose mtime a slow overlay disk delays), and the arbiter reads the age
without asking the worker anything.

`StatusPipe`: a one-way pipe for what the arbiter must hear once: "loading"
(the worker is importing the app), "loaded" (it has the app and is starting
to serve: an ASGI lifespan startup runs now), "ready" (it serves) and "boot
failed: <reason>" (after the app's traceback, one line per message, when the
app's own code failed).

Also the constants both sides of these channels agree on: the exit status
of a worker that cannot boot, the signals blocked across fork, and how often
a healthy worker beats.
"""

from __future__ import annotations

import mmap
import os
import signal
import time

BOOT_ERROR = 3
"""Exit status of a worker whose app could not be loaded (and of the arbiter then)."""

HANDLED_SIGNALS = {
    signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD,
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGUSR1,
    signal.SIGUSR2,
}
"""Every signal the arbiter or a worker handles; blocked across fork."""

HEARTBEAT_INTERVAL = 1.0
"""Seconds between a healthy worker's beats, at most."""

class Heartbeat:
    """Shared-memory liveness stamp for one worker."""

    def __init__(self) -> None:
        self._shm = mmap.mmap(-1, mmap.PAGESIZE)
        # One aligned 8-byte store per beat and one load per reading, so the
        # arbiter never sees half a stamp. (struct.pack_into zero-fills before
        # it writes: a reading in between saw 0.0, an "uptime-long silence",
        # and killed a healthy worker.)
        self._stamp = memoryview(self._shm).cast("d")
        self.beat()

    def beat(self, stamp: float | None = None) -> None:
        """Record progress at `stamp` (a time.monotonic() reading; default now)."""
        self._stamp[0] = time.monotonic() if stamp is None else stamp

    def silence(self) -> float:
        """Seconds since the last beat (CLOCK_MONOTONIC is shared by all processes)."""
        last: float = self._stamp[0]
        return time.monotonic() - last

    def close(self) -> None:
        self._stamp.release()
        self._shm.close()


class StatusPipe:
    """Worker-to-arbiter messages: LOADING, LOADED, READY, BOOT_ERROR with a
    one-line reason (after it, BOOT_TRACE lines), or RECYCLE with why the
    worker wants replacing."""

    LOADING = "loading"
    LOADED = "loaded"
    READY = "ready"
    BOOT_ERROR = "boot-error"
    BOOT_TRACE = "boot-trace"
    RECYCLE = "recycle"

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._pending = b""

    # worker side
    def loading(self) -> None:
        self._write(self.LOADING)

    def loaded(self) -> None:
        self._write(self.LOADED)

    def ready(self) -> None:
        self._write(self.READY)

    def recycle(self, reason: str) -> None:
        self._write(f"{self.RECYCLE} {reason}")

    def boot_error(self, reason: str, traceback: str = "") -> None:
        """`reason`: one line; `traceback`: the app's, sent a line at a time first."""
        for line in traceback.splitlines():
            self._write(f"{self.BOOT_TRACE} {line}")
        self._write(f"{self.BOOT_ERROR} {' '.join(reason.splitlines())}")

    def _write(self, message: str) -> None:
        try:
            os.write(self.write_fd, message.encode("utf-8", "replace")[:4000] + b"\n")
        except OSError:
            pass  # the arbiter is gone; the worker notices on its own

    def close_read_end(self) -> None:
        os.close(self.read_fd)

    # arbiter side
    def close_write_end(self) -> None:
        os.close(self.write_fd)

    def messages(self) -> list[tuple[str, str]]:
        """Every complete message sent so far, as (kind, text)."""
        try:
            while chunk := os.read(self.read_fd, 65536):
                self._pending += chunk
        except BlockingIOError:
            pass
        *lines, self._pending = self._pending.split(b"\n")
        out = []
        for line in lines:
            kind, _, text = line.decode("utf-8", "replace").partition(" ")
            out.append((kind, text))
        return out

    def close(self) -> None:
        os.close(self.read_fd)
