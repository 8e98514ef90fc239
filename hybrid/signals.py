"""The arbiter's signal queue: handlers only enqueue, the loop dispatches.

Every signal the arbiter handles is written by Python's C-level handler to a
non-blocking wakeup pipe (`signal.set_wakeup_fd`), so the arbiter's `select`
wakes at once; the Python-level handler does nothing more. The loop reads the
pipe into a queue and calls the arbiter's `handle_<name>` for each signal in
turn (as gunicorn's SIG_QUEUE), so no handler runs halfway through the
arbiter's own work.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from typing import Any

SIGNAL_NAMES: dict[int, str] = {
    signal.SIGHUP: "hup", signal.SIGTERM: "term", signal.SIGINT: "int", signal.SIGQUIT: "quit",
    signal.SIGTTIN: "ttin", signal.SIGTTOU: "ttou", signal.SIGUSR1: "usr1", signal.SIGUSR2: "usr2",
    signal.SIGCHLD: "chld",
}


class SignalQueue:
    """The signals received and not yet handled, and the pipe that wakes the loop."""

    def __init__(self) -> None:
        self._signals: deque[int] = deque()
        self.read_fd = self._write_fd = -1

    def install(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        for fd in (self.read_fd, self._write_fd):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in SIGNAL_NAMES:
            signal.signal(signum, _enqueue_only)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)

    def read(self) -> None:
        """Queue what the wakeup pipe holds (once `select` found it readable)."""
        try:
            while data := os.read(self.read_fd, 4096):
                self._signals.extend(data)
        except BlockingIOError:
            pass

    def next_name(self) -> str | None:
        """The next queued signal's name (`handle_<name>`), None once none is left."""
        while self._signals:
            name = SIGNAL_NAMES.get(self._signals.popleft())
            if name:
                return name
        return None

    def stop_now_asked(self) -> bool:
        """An INT or QUIT is queued (during a graceful stop: stop now instead)."""
        return any(s in (signal.SIGINT, signal.SIGQUIT) for s in self._signals)

    def clear(self) -> None:
        self._signals.clear()

    def close_in_child(self) -> None:
        """In a forked worker: the arbiter's pipe is not the worker's."""
        signal.set_wakeup_fd(-1)
        os.close(self.read_fd)
        os.close(self._write_fd)


def _enqueue_only(signum: int, frame: Any) -> None:
    """The wakeup fd already queued `signum`; the loop handles it."""
