"""The arbiter's process chores, apart from its supervision: the pid file, the
descriptor limit, the workers' user and group, the signals that may end an
import of the app before the arbiter's own handlers are in place, and the
line that says a slow --preload import is still going.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import resource
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from hybrid.loader import Interrupted
from hybrid.logs import error_log as log

IMPORT_REPORT_INTERVAL = 10.0
"""While --preload's import goes on, the arbiter says so this often (seconds)."""
MAX_DESCRIPTORS = 1 << 20  # the soft limit set under an unlimited hard one (Linux's nr_open)


class StartupError(Exception):
    """The arbiter cannot start; the message is one line for people."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def kernel_migrates_queued_connections() -> bool:
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as setting:
            return setting.read().strip() == "1"
    except OSError:
        return False


def worker_identity(user: str, group: str) -> tuple[int, int] | None:
    """The (uid, gid) --user and --group name (both checked by the config); None if
    neither is set."""
    if not user and not group:
        return None
    if user:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


def become(identity: tuple[int, int], user: str) -> None:
    """In a worker: drop to --user / --group (supplementary groups: the user's)."""
    uid, gid = identity
    if os.geteuid() == uid and os.getegid() == gid:
        return
    if user:
        os.initgroups(pwd.getpwuid(uid).pw_name, gid)
    else:
        os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """While the arbiter imports the app, INT, QUIT and TERM end the import (its
    own handlers are not installed yet): the `Interrupted` they raise is not the
    app's, where a KeyboardInterrupt could be."""
    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name.removeprefix("SIG"))

    stops = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
    before = {signum: signal.signal(signum, interrupt) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def reporting_slow_import(app: str) -> Iterator[None]:
    """Log a line every IMPORT_REPORT_INTERVAL while the block (an import) runs."""
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not done.wait(IMPORT_REPORT_INTERVAL):
            log.info("Still importing %s in the arbiter (--preload): %.0f s so far", app,
                     time.monotonic() - started)

    reporter = threading.Thread(target=report, name="hybrid-import-report", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def write_pidfile(path: str, pid: int) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(f"{pid}\n")
    except OSError as exc:
        raise StartupError(f"cannot write pid file {path!r}: {exc.strerror}") from None


def remove_pidfile(path: str, pid: int) -> None:
    try:
        with open(path) as handle:
            if handle.read().strip() == str(pid):
                os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.warning("cannot remove pid file %s: %s", path, exc.strerror)


def raise_descriptor_limit() -> None:
    """Raise the soft limit on open descriptors to the hard one (Go's runtime does
    the same): the soft limit, often 1024 (systemd's default), is there for
    programs that use select() (hybrid does only on the arbiter's few, low-numbered
    descriptors), and a worker that holds
    connections needs the room (the asgi class accepts through libuv only while
    far from it: see workers.asgi.listener)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else MAX_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.debug("Could not raise the descriptor limit from %d: %s", soft, exc)
            return
        log.info("Raised the limit on open descriptors from %d to %d (ulimit -n; the hard "
                 "limit)", soft, target)
