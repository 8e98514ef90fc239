"""How the arbiter stops: what asks it to, and the stop of its workers.

TERM stops gracefully: the workers finish what they serve within
--graceful-timeout. With --shutdown-delay, /readyz first turns 503 while
serving goes on that long (a second TERM, or an INT, ends the delay). INT
and QUIT stop at once. The arbiter also stops on its own: when no worker can
boot, and when the new arbiter of a USR2 serves. Once the loop ends, every
worker is told to stop and waited for, and killed past its deadline; an INT
or QUIT meanwhile turns a graceful stop into a fast one.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from hybrid.logs import error_log as log
from hybrid.signals import SignalQueue
from hybrid.worker_process import WorkerProcess

FAST_STOP_GRACE = 2.0
OVERDUE_GRACE = 1.0
"""Seconds past --graceful-timeout before a stopping worker is killed: a worker
ends its own graceful stop at --graceful-timeout, and logs what it cut."""


class Stop:
    """Whether the arbiter's loop is to end, and how its workers are to stop."""

    def __init__(self) -> None:
        self.requested = False  # the loop ends
        self.graceful = True  # the workers finish what they serve (TERM), or stop now
        self.at: float | None = None  # a TERM came: the graceful stop begins then

    def now(self, graceful: bool) -> None:
        """Stop at the loop's next turn (`graceful`: as TERM, else as QUIT)."""
        self.graceful = graceful
        self.requested = True

    def term(self, delay: float) -> None:
        """TERM: stop gracefully, after `delay` (--shutdown-delay) the first time."""
        if delay and self.at is None:
            log.info("Received TERM: not ready any more; serving %g s more (--shutdown-delay), "
                     "then stopping gracefully", delay)
            self.at = time.monotonic() + delay
            return
        log.info("Received TERM: stopping gracefully")
        self.now(graceful=True)

    def interrupt(self) -> None:
        """INT: stop now, or gracefully now if a --shutdown-delay runs."""
        if self.at is not None:
            log.info("Received INT during --shutdown-delay: stopping gracefully now")
            self.now(graceful=True)
            return
        log.info("Received INT: stopping now")
        self.now(graceful=False)

    def quit(self) -> None:
        log.info("Received QUIT: stopping now")
        self.now(graceful=False)

    def check_delay(self) -> None:
        """The graceful stop begins once --shutdown-delay is over."""
        if self.at is not None and time.monotonic() >= self.at:
            log.info("--shutdown-delay is over: stopping gracefully")
            self.requested = True


def stop_workers(workers: dict[int, WorkerProcess], graceful: bool, graceful_timeout: float,
                 signals: SignalQueue, reap: Callable[[], None],
                 sleep: Callable[[float], None]) -> None:
    """Tell every worker to stop and wait until `reap` has taken them all out of
    `workers`, killing those still there past the deadline."""
    deadline = _tell_workers_to_stop(workers, graceful, graceful_timeout)
    while workers:
        reap()
        if not workers:
            break
        if graceful and signals.stop_now_asked():
            log.info("Received INT or QUIT while stopping: stopping now")
            graceful = False
            deadline = _tell_workers_to_stop(workers, graceful, graceful_timeout)
        signals.clear()
        if time.monotonic() >= deadline:
            for worker in list(workers.values()):
                log.warning("Worker %d did not stop in time; killing it", worker.pid)
                worker.send(signal.SIGKILL)
            deadline = float("inf")
        sleep(0.1)


def _tell_workers_to_stop(workers: dict[int, WorkerProcess], graceful: bool,
                          graceful_timeout: float) -> float:
    """Signal every worker; return the time after which they are killed."""
    now = time.monotonic()
    for worker in list(workers.values()):
        worker.retiring_since = worker.retiring_since or now
        worker.send(signal.SIGTERM if graceful else signal.SIGQUIT)
    return now + (graceful_timeout + OVERDUE_GRACE if graceful else FAST_STOP_GRACE)
