"""Zero-downtime binary upgrade (USR2): the arbiter re-executes itself with its
listening sockets inherited, and hands over once the new arbiter's workers serve.

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
serving and says so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from dataclasses import dataclass

from hybrid.heartbeat import HANDLED_SIGNALS
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
