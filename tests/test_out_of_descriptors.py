"""A worker out of file descriptors rests accepting instead of spinning on a
listener that stays readable (or, on asgi, resetting what libuv accepts with
its reserve descriptor), says so once, and serves again once descriptors
are free (workers.accept.Acceptor; workers.asgi.listener). Other accept()
failures: a connection that failed on its way in is skipped."""

from __future__ import annotations

import errno
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from hybrid.workers.accept import Acceptor
from tests.conftest import child_env, free_port, wait_for

LIMIT = 128  # descriptors the server may open
HOLD = 3.0  # seconds the app keeps every free descriptor taken
# With a queue this short, an asgi worker under LIMIT_HIGHER begins with libuv's
# accepting: LIMIT_HIGHER - 16 - DESCRIPTOR_MARGIN descriptors are far from the limit.
QUEUE = "16"
LIMIT_HIGHER = 256


def _limit_descriptors(limit: int = LIMIT) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _start(tmp_path: Path, worker_class: str, port: int, *flags: str,
           limit: int = LIMIT) -> subprocess.Popen:
    with open(tmp_path / "hybrid.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hybrid", "run", "tests.apps.basic:app", "-k", worker_class,
             "--bind", f"127.0.0.1:{port}", *flags],
            cwd=tmp_path, env=child_env(None), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: _limit_descriptors(limit))


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_out_of_descriptors_rests_accepting_then_serves_again(tmp_path: Path, worker_class):
    port = free_port()
    proc = _start(tmp_path, worker_class, port)
    try:
        _served_once_descriptors_are_free(tmp_path, port)
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, (tmp_path / "hybrid.log").read_text()


def test_asgi_accepts_itself_once_connections_near_the_descriptor_limit(tmp_path: Path):
    port = free_port()
    proc = _start(tmp_path, "asgi", port, "--backlog", QUEUE, limit=LIMIT_HIGHER)
    log_path = tmp_path / "hybrid.log"
    held: list[socket.socket] = []
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}"), message="the server to serve")
        assert "accepts connections itself" not in log_path.read_text()
        for _ in range(LIMIT_HIGHER - int(QUEUE)):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            if "accepts connections itself" in log_path.read_text():
                break
        wait_for(lambda: "accepts connections itself" in log_path.read_text(),
                 message="the worker to say it accepts connections itself")
        for sock in held:
            sock.close()
        _served_once_descriptors_are_free(tmp_path, port)
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        assert proc.wait(30) == 0, log_path.read_text()


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(tmp_path: Path):
    port = free_port()
    with open(tmp_path / "hybrid.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybrid", "run", "tests.apps.basic:app", "-k", "thread",
             "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path, env=child_env(None), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, 2 * LIMIT)))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), message="the server to serve")
        worker = psutil.Process(int(httpx.get(url + "/pid").text))
        assert worker.rlimit(psutil.RLIMIT_NOFILE) == (2 * LIMIT, 2 * LIMIT)
        assert f"Raised the limit on open descriptors from {LIMIT} to {2 * LIMIT}" in \
            (tmp_path / "hybrid.log").read_text()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def _served_once_descriptors_are_free(tmp_path: Path, port: int) -> None:
    """Take every free descriptor of the worker for HOLD seconds; a client that
    connects meanwhile is served afterwards, and the worker neither spun nor said
    so more than once."""
    log_path = tmp_path / "hybrid.log"
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url), message="the server to serve")
    worker = psutil.Process(int(httpx.get(url + "/pid").text))
    assert httpx.get(url + "/hold-fds", params={"s": HOLD}).text == "holding"
    limit = worker.rlimit(psutil.RLIMIT_NOFILE)[0]
    wait_for(lambda: worker.num_fds() >= limit, message="every descriptor to be taken")
    with socket.create_connection(("127.0.0.1", port), timeout=HOLD + 10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        before = worker.cpu_times()
        time.sleep(HOLD / 2)  # the worker cannot accept it meanwhile
        after = worker.cpu_times()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    busy = (after.user + after.system) - (before.user + before.system)
    assert busy < HOLD / 4, f"the worker spun: {busy:.2f} s of CPU in {HOLD / 2} s"
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"hello")
    assert log_path.read_text().count("Cannot accept connections") == 1


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/").status_code == 200
    except httpx.HTTPError:
        return False


class _FailingListener:
    def __init__(self, errno_value: int) -> None:
        self.errno_value = errno_value

    def accept(self):
        raise OSError(self.errno_value, os.strerror(self.errno_value))


def test_out_of_descriptors_the_acceptor_rests():
    acceptor = Acceptor()
    assert acceptor.accept(_FailingListener(errno.EMFILE)) is None
    assert acceptor.resting(time.monotonic())


def test_a_connection_that_failed_in_accept_is_skipped_without_resting():
    acceptor = Acceptor()
    assert acceptor.accept(_FailingListener(errno.EPROTO)) is None
    assert not acceptor.resting(time.monotonic())


def test_an_unexpected_accept_error_is_raised():
    with pytest.raises(OSError):
        Acceptor().accept(_FailingListener(errno.EBADF))
