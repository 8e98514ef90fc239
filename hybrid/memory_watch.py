"""--max-worker-memory: which serving workers have grown past it, sampled once
a second.

What counts is a worker's own memory (USS: the pages no other process
shares), not its RSS, which also counts what it shares with the arbiter (the
whole app, under --preload): replacing a worker cannot free that. Workers
over the limit when first sampled, twice in a row, mean a fresh worker is
over it already: replacing them would go on for ever, so that stops, said
once. The arbiter replaces the workers named here (a replacement boots
first, then the worker retires).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol, TypeVar

import psutil

from hybrid.logs import error_log as log

CHECK_INTERVAL = 1.0  # seconds between two samples of the workers' memory
MIB = 1024 * 1024


class Sampled(Protocol):
    """What the watch reads of a worker (and marks: sampled once)."""

    pid: int
    ready: bool
    recycle: str  # why it is to be replaced already, if it is
    retiring_since: float | None
    memory_sampled: bool


W = TypeVar("W", bound=Sampled)


class MemoryWatch:
    """The workers over the limit, at most once a CHECK_INTERVAL."""

    def __init__(self) -> None:
        self.checked_at = 0.0
        self.unmet = False  # fresh workers are over the limit: no more replacing
        self.over_at_first_sample = 0  # workers in a row over it when first sampled

    def over(self, workers: Iterable[W], limit_mib: int) -> list[W]:
        """The serving workers to replace for their memory now, over `limit_mib`
        (--max-worker-memory, as a reload may have changed it; 0: no limit)."""
        now = time.monotonic()
        if not limit_mib or self.unmet or now - self.checked_at < CHECK_INTERVAL:
            return []
        self.checked_at = now
        found: list[W] = []
        for worker in workers:
            if not worker.ready or worker.recycle or worker.retiring_since is not None:
                continue
            try:
                used = psutil.Process(worker.pid).memory_full_info().uss
            except psutil.Error:
                continue  # it just exited; the next reap collects it
            first, worker.memory_sampled = not worker.memory_sampled, True
            if used <= limit_mib * MIB:
                if first:
                    self.over_at_first_sample = 0
                continue
            if first:
                self.over_at_first_sample += 1
                if self.over_at_first_sample >= 2:
                    log.error("Worker %d uses %.0f MiB as it starts, over --max-worker-memory "
                              "(%d MiB), as did the one before: workers are not replaced for "
                              "memory any more (raise the limit)", worker.pid, used / MIB,
                              limit_mib)
                    self.unmet = True
                    return found
            log.warning("Worker %d uses %.0f MiB, over --max-worker-memory (%d MiB)",
                        worker.pid, used / MIB, limit_mib)
            found.append(worker)
        return found
