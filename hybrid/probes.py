"""What the control endpoint reports (`hybrid.control.Probe`), read off the
arbiter's records of its workers: `/livez` (a worker beats within
--timeout), `/readyz` (every configured worker serves, and no stop has
begun) and `/metrics` (the counters of the live workers and of those gone).
"""

from __future__ import annotations

import time
from collections.abc import Collection

from hybrid import metrics
from hybrid.worker_process import WorkerProcess


def liveness(workers: Collection[WorkerProcess], timeout: float) -> tuple[bool, str]:
    beating = [w for w in workers
               if w.aborted_at is None and (not timeout or w.heartbeat.silence() <= timeout)]
    if beating:
        return True, f"alive: {len(beating)} of {len(workers)} worker(s) beating"
    if not workers:
        return False, "no worker is running"
    return False, f"no worker has beaten within --timeout ({timeout:g} s)"


def readiness(workers: Collection[WorkerProcess], configured: int, stopping: bool,
              stop_at: float | None) -> tuple[bool, str]:
    """`stop_at`: when a --shutdown-delay ends, if one runs."""
    if stopping:
        return False, "stopping"
    if stop_at is not None:
        return False, (f"shutting down: stopping in "
                       f"{max(0.0, stop_at - time.monotonic()):.0f} s")
    serving = sum(w.ready and w.retiring_since is None and w.aborted_at is None
                  for w in workers)
    if serving < configured:
        return False, f"{serving} of {configured} worker(s) serving"
    return True, f"ready: {serving} worker(s) serving"


def metrics_text(workers: Collection[WorkerProcess], retired: metrics.Totals,
                 restarts: dict[str, int], started_at: float, configured: int) -> str:
    """The Prometheus text; `retired`: the counts of the workers that have exited."""
    live = metrics.Totals()
    processes = []
    for worker in workers:
        live.add(worker.counters.read())
        processes.append(worker.pid)
    return metrics.render(retired.merged(live), restarts=restarts,
                          pids=processes, uptime=time.monotonic() - started_at,
                          ready=sum(w.ready for w in workers),
                          configured=configured)
