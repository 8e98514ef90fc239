"""When the arbiter forks the next worker: its policy for workers that die
before they boot, and for workers that die soon after they start serving.

A worker that fails to boot with a reason (its app failed to import, say)
stops the server when no worker serves (exit status 3, the reason logged
once, with the app's traceback), rather than forking in a loop; while others
still serve (a reload with broken code), they keep serving and the next boot
is tried later and later. A worker that dies before it booted with no reason
given is retried a few times first. Workers that keep dying right after they
start serving make each next fork wait longer. `RespawnPolicy` holds the
counts and the time before which no worker is forked; the arbiter asks it
and acts (it alone retires workers and stops the server).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from hybrid.heartbeat import BOOT_ERROR
from hybrid.logs import error_log as log
from hybrid.process import describe_exit

MAX_SILENT_BOOT_DEATHS = 5  # deaths before "ready" with no reason given
MAX_SPAWN_BACKOFF = 60.0  # seconds between attempts while new workers cannot boot
EARLY_CRASH_WINDOW = 5.0
"""A worker that dies unasked this soon after it served is an early crash: those
in a row make the arbiter wait longer and longer before the next fork (0.1 s,
doubling, up to MAX_SPAWN_BACKOFF) instead of forking in a loop."""


class Booting(Protocol):
    """What the policy reads of a worker that died before it booted."""

    pid: int
    boot_error: str  # the reason the worker gave, if it gave one
    boot_trace: list[str]  # the app's traceback, when the app's own code failed
    loading: bool  # it was importing the app
    starting: bool  # it had loaded the app, and was starting to serve


@dataclass(frozen=True)
class BootFailure:
    """Why a worker failed to boot."""

    reason: str  # one line
    shown: str  # the line, and the app's traceback under it when its own code failed


class RespawnPolicy:
    """The counts behind the arbiter's forks, and when the next may be."""

    def __init__(self) -> None:
        self.silent_boot_deaths = 0
        self.boot_failures = 0
        self.early_crashes = 0  # workers in a row that died right after they served
        self.last_boot_error = ""
        self.not_before = 0.0  # time.monotonic() before which no worker is forked

    def may_spawn(self) -> bool:
        return time.monotonic() >= self.not_before

    def wait(self, seconds: float) -> None:
        """No fork for `seconds` (a fork itself failed: out of processes, say)."""
        self.not_before = time.monotonic() + seconds

    def booted(self) -> None:
        """A worker serves: the boot failures before it are forgiven."""
        self.silent_boot_deaths = self.boot_failures = 0
        self.last_boot_error = ""

    def reloaded(self) -> None:
        """A reload brings new code: its workers are tried at once."""
        self.boot_failures = 0
        self.not_before = 0.0
        self.last_boot_error = ""

    def crashed(self, lived: float) -> None:
        """A serving worker died unasked, `lived` seconds after it began to serve:
        the next fork at once, unless workers keep dying right after they start
        serving (then later and later; said each time)."""
        if lived >= EARLY_CRASH_WINDOW:
            self.early_crashes = 0
            return
        self.early_crashes += 1
        if self.early_crashes < 2:
            return
        delay = min(MAX_SPAWN_BACKOFF, 0.1 * 2.0 ** (self.early_crashes - 2))
        self.not_before = max(self.not_before, time.monotonic() + delay)
        log.error("Workers keep dying right after they start serving (%d in a row); the next "
                  "one starts in %.1f s", self.early_crashes, delay)

    def boot_failure(self, worker: Booting, code: int, others_serve: bool) -> BootFailure | None:
        """Why `worker` (exit `code`) failed to boot; None when it is retried with no
        more said (a death with no reason given, while retries are left or other
        workers serve)."""
        if worker.boot_error or code == BOOT_ERROR:
            reason = worker.boot_error or f"worker exited with status {code} before it booted"
        elif worker.loading or worker.starting:
            # The app ended the process itself (os._exit, a crash in C) while it loaded.
            doing = "loading the app" if worker.loading else "starting to serve"
            reason = f"the worker died while {doing} ({describe_exit(code)})"
        else:
            self.silent_boot_deaths += 1
            if self.silent_boot_deaths < MAX_SILENT_BOOT_DEATHS or others_serve:
                log.error("Worker %d died before it booted (%s); retrying",
                          worker.pid, describe_exit(code))
                return None
            reason = f"workers keep dying before they boot (last: {describe_exit(code)})"
        return BootFailure(reason, "\n".join([reason, *worker.boot_trace]))

    def back_off(self, failure: BootFailure, serving: int) -> None:
        """`failure` while `serving` workers still serve (a reload with broken code,
        or the code on disk broke): they keep serving, and the next boot is tried
        later and later instead of in a fork storm."""
        self.boot_failures += 1
        delay = min(MAX_SPAWN_BACKOFF, 2.0 ** (self.boot_failures - 1))
        self.not_before = time.monotonic() + delay
        if failure.reason != self.last_boot_error:
            log.error("A new worker failed to boot, %d running worker(s) keep serving: %s",
                      serving, failure.shown)
            self.last_boot_error = failure.reason
        log.info("Next worker boot attempt in %.0f s", delay)
