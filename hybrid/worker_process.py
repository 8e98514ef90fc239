"""A worker process as the arbiter sees it: the record it keeps of each one
(`WorkerProcess`), the channels made for it before fork, the fork itself,
the child's side until the worker class runs, the signals it is sent, and
what its exit says in the log.

The arbiter decides when to fork, retire or replace a worker; this room does
what that takes, one worker at a time.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from hybrid import metrics, process, workers
from hybrid.heartbeat import HANDLED_SIGNALS, Heartbeat, StatusPipe
from hybrid.hooks import Hooks
from hybrid.logs import error_log as log

RESTART_REASONS = ("crash", "timeout", "reload", "max-requests", "memory", "request-timeout")
"""Why workers are replaced, as /metrics counts them; a worker asks to be
replaced for one of these (max-requests, request-timeout), or memory."""


@dataclass
class WorkerProcess:
    """The arbiter's record of one forked worker."""

    pid: int
    age: int
    generation: int
    heartbeat: Heartbeat
    status: StatusPipe
    counters: metrics.Counters
    loading: bool = False  # importing the app (it said so)
    starting: bool = False  # it has the app, and is not ready yet (ASGI lifespan startup)
    ready: bool = False
    boot_error: str = ""
    boot_trace: list[str] = field(default_factory=list)  # the app's traceback, if it sent one
    retiring_since: float | None = None  # TERM sent at this time
    recycle: str = ""  # why it is to be replaced once a replacement serves (max-requests, memory)
    memory_sampled: bool = False  # --max-worker-memory has looked at it once
    ready_at: float | None = None  # time.monotonic() when it said it serves
    aborted_at: float | None = None  # SIGABRT sent (heartbeat timeout) at this time

    def read_status(self) -> bool:
        """Take in what the worker said since the last read; True if it said it
        serves now."""
        served = False
        for kind, text in self.status.messages():
            if kind == StatusPipe.LOADING:
                self.loading = True
            elif kind == StatusPipe.LOADED:
                self.loading, self.starting = False, True
            elif kind == StatusPipe.READY:
                self.loading = self.starting = False
                self.ready = True
                self.ready_at = time.monotonic()
                served = True
            elif kind == StatusPipe.BOOT_ERROR:
                self.boot_error = text
            elif kind == StatusPipe.BOOT_TRACE:
                self.boot_trace.append(text)
            elif kind == StatusPipe.RECYCLE:
                self.recycle_for(text)
        return served

    def recycle_for(self, reason: str) -> None:
        """Replace it for `reason`: a new worker boots, then this one retires."""
        if self.recycle or self.retiring_since is not None or reason not in RESTART_REASONS:
            return
        self.recycle = reason
        log.info("Worker %d is to be replaced (%s); booting its replacement first",
                 self.pid, reason)

    def send(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass  # already gone; the next reap collects it

    def retire(self) -> None:
        """TERM, once: it finishes what it serves, then exits."""
        if self.retiring_since is None:
            self.retiring_since = time.monotonic()
            self.send(signal.SIGTERM)

    def close_channels(self) -> None:
        self.counters.close()
        self.heartbeat.close()
        self.status.close()

    def log_exit(self, code: int) -> None:
        """Say how it ended (`code`: os.waitstatus_to_exitcode's)."""
        if self.recycle:
            log.info("Worker %d exited (replaced: %s)", self.pid, self.recycle)
        elif self.aborted_at is not None:
            log.error("Worker %d was replaced after its heartbeat timeout", self.pid)
        elif code == -signal.SIGKILL and self.retiring_since is None:
            log.error("Worker %d was killed by SIGKILL (out of memory?)", self.pid)
        elif code < 0 and self.retiring_since is None:
            log.error("Worker %d was killed by signal %s", self.pid, signal.Signals(-code).name)
        elif code != 0:
            log.error("Worker %d exited with status %d", self.pid, code)
        else:
            log.info("Worker %d exited", self.pid)


def open_channels(rows: int) -> tuple[Heartbeat, StatusPipe, metrics.Counters]:
    """A new worker's heartbeat, status pipe and counters (with `rows` rows);
    OSError, with none of them left open, if one cannot be made."""
    made: list[Heartbeat | StatusPipe | metrics.Counters] = []
    try:
        heartbeat = Heartbeat()
        made.append(heartbeat)
        status = StatusPipe()
        made.append(status)
        counters = metrics.Counters(rows=rows)
    except OSError:
        for channel in made:  # (no descriptor leaks on each retry)
            channel.close()
        raise
    return heartbeat, status, counters


def fork() -> int:
    """os.fork(), with the handled signals blocked across it until the child has
    its own handlers: otherwise one could run the arbiter's handler in the child."""
    parent = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        return os.fork()
    finally:
        if os.getpid() == parent:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)


def become_worker(worker: workers.Worker, status: StatusPipe, server: object, hooks: Hooks,
                  identity: tuple[int, int] | None, user: str,
                  drop_arbiter_state: Callable[[], None]) -> NoReturn:
    """In the child: drop the arbiter's state, run the worker, never return.
    `server` is the arbiter, as the hooks see it."""
    code = 0
    try:
        drop_arbiter_state()
        status.close_read_end()
        worker.pid = os.getpid()
        try:
            # (As gunicorn: before the switch to --user, so it may still do what
            # only the arbiter's user can.)
            hooks.call_strictly("post_fork", server, worker)
        except Exception as exc:
            worker.boot_failed(f"the post_fork hook failed: {type(exc).__name__}: {exc}")
        if identity is not None:
            process.become(identity, user)
        worker.init_process()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        log.exception("Worker %d crashed", os.getpid())
        code = 1
    finally:
        hooks.call("worker_exit", server, worker)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)
