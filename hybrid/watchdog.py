"""--timeout and --graceful-timeout: which workers the arbiter kills, looked at
on every turn of its loop.

A worker whose heartbeat is older than --timeout gets SIGABRT, and SIGKILL
ABORT_GRACE seconds later if it is still there. One that overstays --timeout
while it loads the app, or starts to serve (its ASGI lifespan startup), fails
to boot, with that reason. A retiring worker still there after
--graceful-timeout gets SIGKILL. (A stop of the whole server keeps its own
deadline: the arbiter's.)
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable

from hybrid.logs import error_log as log
from hybrid.worker_process import WorkerProcess

ABORT_GRACE = 2.0  # seconds between SIGABRT (timeout) and SIGKILL


def kill_silent(workers: Iterable[WorkerProcess], timeout: float,
                graceful_timeout: float) -> None:
    """Signal each worker past its time (`timeout` 0: no heartbeat limit)."""
    now = time.monotonic()
    for worker in workers:
        if worker.aborted_at is not None:
            if now - worker.aborted_at > ABORT_GRACE:
                worker.send(signal.SIGKILL)
        elif worker.retiring_since is not None:
            if now - worker.retiring_since > graceful_timeout:
                log.warning("Worker %d did not finish within --graceful-timeout; killing it",
                            worker.pid)
                worker.send(signal.SIGKILL)
        elif timeout and worker.loading and worker.heartbeat.silence() > timeout:
            log.error("Worker %d took longer than --timeout (%g s) to load the app; killing it "
                      "(raise --timeout if the app is slow to import)", worker.pid, timeout)
            worker.boot_error = f"the app took longer than --timeout ({timeout:g} s) to load"
            worker.aborted_at = now
            worker.send(signal.SIGABRT)
        elif timeout and worker.starting and worker.heartbeat.silence() > timeout:
            log.error("Worker %d took longer than --timeout (%g s) to start serving (its ASGI "
                      "lifespan startup?); killing it", worker.pid, timeout)
            worker.boot_error = (f"the app took longer than --timeout ({timeout:g} s) to "
                                 f"start (its ASGI lifespan startup?)")
            worker.aborted_at = now
            worker.send(signal.SIGABRT)
        elif timeout and worker.heartbeat.silence() > timeout:
            log.critical("WORKER TIMEOUT: worker %d sent no heartbeat for %.0f s "
                         "(--timeout %g); killing it", worker.pid, worker.heartbeat.silence(),
                         timeout)
            worker.aborted_at = now
            worker.send(signal.SIGABRT)
