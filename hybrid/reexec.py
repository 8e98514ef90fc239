"""Zero-downtime binary upgrade (USR2): the arbiter re-executes itself with its
listening sockets inherited, and hands over once the new arbiter's workers serve.
(A re-exec of the arbiter: HTTP's Upgrade is the workers' business, not this.)

The old arbiter forks; the child goes back to the directory the server was
started in and executes the same command line (`sys.orig_argv`) with the
same environment, plus:

    HYBRID_FDS          the listening sockets' descriptors, in --bind order
    HYBRID_CONTROL_FD   the control endpoint's socket, when there is one
    HYBRID_UPGRADE_FD   the write end of a pipe back to the old arbiter
    HYBRID_UPGRADE_PATHS  the UNIX socket files the old arbiter made (JSON), which
                        the new one removes at its exit once it has taken over

The new arbiter adopts the sockets instead of binding (`sockets.inherited`),
boots its workers, and writes "ready" on the pipe once all of them serve.
Both generations accept on the same sockets meanwhile, so no connection is
refused. On "ready" the old arbiter stops gracefully; if the pipe closes
without it (the new arbiter failed to boot and exited), the old one keeps
serving and says so. Meanwhile the old arbiter's pid file is FILE.oldbin, and
the new one writes FILE; a failure renames the old one's back.

`Usr2` is the arbiter's side of all this, old or new; `start` and `HandOver`
are the mechanism underneath.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from hybrid.heartbeat import HANDLED_SIGNALS
from hybrid.logs import error_log as log
from hybrid.process import describe_exit
from hybrid.sockets import FDS_VARIABLE

CONTROL_FD_VARIABLE = "HYBRID_CONTROL_FD"
READY_FD_VARIABLE = "HYBRID_UPGRADE_FD"
PATHS_VARIABLE = "HYBRID_UPGRADE_PATHS"
READY = b"ready\n"


@dataclass
class Upgrade:
    """The old arbiter's view of an upgrade under way."""

    pid: int  # the new arbiter
    ready_fd: int  # the pipe's read end (non-blocking)

    def poll(self) -> bool | None:
        """True once the new arbiter said it serves, False if the pipe closed
        without that, None while it boots."""
        try:
            data = os.read(self.ready_fd, 64)
        except BlockingIOError:
            return None
        return data.startswith(READY)

    def close(self) -> None:
        os.close(self.ready_fd)


def start(listeners: list[socket.socket], control: socket.socket | None, start_dir: str,
          owned_paths: list[str]) -> Upgrade:
    """Fork and execute the new arbiter; OSError if it cannot be started."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    passed = [sock.fileno() for sock in listeners]
    env = dict(os.environ)
    env[FDS_VARIABLE] = ",".join(map(str, passed))
    if control is not None:
        env[CONTROL_FD_VARIABLE] = str(control.fileno())
        passed.append(control.fileno())
    env[READY_FD_VARIABLE] = str(write_fd)
    env[PATHS_VARIABLE] = json.dumps(owned_paths)
    argv = [sys.executable, *sys.orig_argv[1:]]
    # Blocked across fork, so that no signal runs the arbiter's handlers in the
    # child; the child unblocks them just before exec (exec keeps the mask).
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:
        _execute(argv, env, [*passed, write_fd], start_dir)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
    os.close(write_fd)
    return Upgrade(pid, read_fd)


def _execute(argv: list[str], env: dict[str, str], passed: list[int], start_dir: str) -> None:
    """In the forked child: become the new arbiter, or exit 127."""
    try:
        signal.set_wakeup_fd(-1)  # (the old arbiter's pipe)
        for fd in passed:
            os.set_inheritable(fd, True)
        os.chdir(start_dir)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.execve(argv[0], argv, env)
    except BaseException as exc:
        print(f"hybrid: error: the upgrade could not execute {argv[0]}: {exc}",
              file=sys.stderr, flush=True)
    finally:
        os._exit(127)


def owned_paths_from_environment() -> list[str]:
    """The socket files the upgrading arbiter made (and so would have removed)."""
    try:
        paths = json.loads(os.environ.pop(PATHS_VARIABLE, "[]"))
    except ValueError:
        return []
    return [path for path in paths if isinstance(path, str)] if isinstance(paths, list) else []


class HandOver:
    """The new arbiter's end of the pipe: tell the old one when we serve."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def from_environment(cls) -> HandOver | None:
        value = os.environ.pop(READY_FD_VARIABLE, "")
        if not value.isdigit():
            return None
        fd = int(value)
        try:
            os.set_inheritable(fd, False)  # (not to the workers' exec'd children)
        except OSError:
            return None  # not open here: this process was not started by an upgrade
        return cls(fd)

    def serving(self) -> None:
        try:
            os.write(self.fd, READY)
        except OSError:
            pass  # the old arbiter is gone already
        self.close()

    def close(self) -> None:
        os.close(self.fd)


class Usr2:
    """USR2 as one arbiter lives it. The old one: its pid file moved aside, the new
    arbiter started and followed until it serves (then this one stops) or fails
    (then this one serves on). The new one: the old one told once this one serves."""

    def __init__(self, pidfile: str | None) -> None:
        self.pidfile = pidfile  # renamed to .oldbin while an upgrade is under way
        self.upgrade: Upgrade | None = None  # a new arbiter booting
        self.hand_over: HandOver | None = None  # the old arbiter, when we are new
        self.upgraded_paths: list[str] = []  # socket files the upgrading arbiter made

    def begin(self, listeners: list[socket.socket], control: socket.socket | None,
              start_dir: str, owned_paths: list[str], configured_pidfile: str | None,
              shutting_down: bool, pre_exec: Callable[[], None]) -> None:
        """USR2 received: start the new arbiter, unless one boots already, this one
        is itself a new one not serving yet, or it is shutting down."""
        if self.hand_over is not None:
            log.warning("Received USR2 while this arbiter is itself an upgrade that does not "
                        "serve yet: no upgrade")
            return
        if self.upgrade is not None:
            log.warning("Received USR2: an upgrade is under way already (new arbiter pid %d)",
                        self.upgrade.pid)
            return
        if shutting_down:
            log.warning("Received USR2 while shutting down: no upgrade")
            return
        if self.pidfile:
            oldbin = self.pidfile + ".oldbin"
            try:
                os.replace(self.pidfile, oldbin)
                self.pidfile = oldbin
            except OSError as exc:
                log.warning("Cannot rename the pid file %s: %s", self.pidfile, exc.strerror)
        pre_exec()
        try:
            self.upgrade = start(listeners, control, start_dir, owned_paths)
        except OSError as exc:
            log.error("Received USR2: cannot start the new arbiter: %s", exc)
            self._restore_pidfile(configured_pidfile)
            return
        log.info("Received USR2: upgrading; the new arbiter is pid %d, and this one serves "
                 "until the new one's workers do", self.upgrade.pid)

    def read_fds(self) -> list[int]:
        return [self.upgrade.ready_fd] if self.upgrade is not None else []

    def new_one_serves(self, readable: list[int], configured_pidfile: str | None) -> bool:
        """Whether the new arbiter has said it serves (this one is to stop gracefully
        now, its socket files the new one's); a pipe closed without it is a failure."""
        if self.upgrade is None or self.upgrade.ready_fd not in readable:
            return False
        outcome = self.upgrade.poll()
        if outcome is None:
            return False
        if not outcome:
            self._failed("stopped before its workers served", configured_pidfile)
            return False
        log.info("The new arbiter (pid %d) serves: stopping this one gracefully",
                 self.upgrade.pid)
        self.upgrade.close()
        self.upgrade = None
        return True

    def reaped(self, pid: int, status: int, configured_pidfile: str | None) -> None:
        """A child that is no worker exited: the new arbiter, if it is that one."""
        if self.upgrade is not None and pid == self.upgrade.pid:
            self._failed(describe_exit(os.waitstatus_to_exitcode(status)), configured_pidfile)

    def serving(self) -> list[str]:
        """We are the new arbiter and serve: tell the old one to stop. Returns the
        socket files it made, which are ours to remove from now on."""
        assert self.hand_over is not None
        log.info("Serving: telling the arbiter this one upgrades (pid %d) to stop",
                 os.getppid())
        self.hand_over.serving()
        self.hand_over = None
        return self.upgraded_paths

    def _failed(self, why: str, configured_pidfile: str | None) -> None:
        assert self.upgrade is not None
        log.error("Upgrade failed: the new arbiter (pid %d) %s; this arbiter keeps serving",
                  self.upgrade.pid, why)
        self.upgrade.close()
        self.upgrade = None
        self._restore_pidfile(configured_pidfile)

    def _restore_pidfile(self, configured: str | None) -> None:
        if self.pidfile and configured and self.pidfile != configured:
            try:
                os.replace(self.pidfile, configured)
                self.pidfile = configured
            except OSError as exc:
                log.warning("Cannot rename the pid file back to %s: %s", configured,
                            exc.strerror)
