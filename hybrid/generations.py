"""The worker generations' arithmetic: which workers to fork and which to
retire so that the configured number of the current generation serve. No
process work here: the arbiter forks and signals.

A reload starts a new generation: its workers boot while the previous ones
serve on, and those retire once the new ones serve. A worker to be replaced
(max-requests, memory...) serves on but no longer counts: its replacement
boots first. When a reload's workers cannot boot while the previous
generation serves, the previous generation takes the current one's place.
"""

from __future__ import annotations

from collections.abc import Collection

from hybrid.logs import error_log as log
from hybrid.worker_process import WorkerProcess


def balance(workers: Collection[WorkerProcess], generation: int,
            target: int) -> tuple[int, list[WorkerProcess]]:
    """How many workers to fork, and which to retire, for `target` workers of
    `generation` to serve."""
    active = [w for w in workers if w.retiring_since is None]
    # A worker to be recycled serves on but no longer counts: its replacement
    # boots, and it retires once the replacements serve (below).
    current = sorted((w for w in active if w.generation == generation
                      and not w.recycle), key=lambda w: w.age)
    retiring = current[:max(0, len(current) - target)]
    if sum(w.ready for w in current) >= target:
        retiring += [old for old in active if old.generation != generation or old.recycle]
    return max(0, target - len(current)), retiring


def may_yet_serve(workers: Collection[WorkerProcess],
                  failed: WorkerProcess) -> list[WorkerProcess]:
    """When `failed` could not boot: the workers that serve, or of an earlier
    generation and still booting (a reload came before they served): those may
    yet serve the code that worked."""
    return [w for w in workers if w.retiring_since is None
            and (w.ready or w.generation < failed.generation)]


def reload_failed(workers: Collection[WorkerProcess], serving: list[WorkerProcess],
                  generation: int) -> None:
    """`generation`'s workers cannot boot while `serving`, of earlier ones, serve:
    those booting retire, and the serving ones count as `generation` now."""
    log.error("Reload failed; the previous workers keep serving")
    for other in workers:
        if other.generation == generation and not other.ready:
            other.retire()
    for old in serving:
        old.generation = generation
