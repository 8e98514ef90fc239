"""A worker out of file descriptors rests accepting instead of spinning on a
listener that stays readable, says so once, and serves again once
descriptors are free (the blocking classes; see blocking.Acceptor). Other
accept() failures: a connection that failed on its way in is skipped."""

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

from hybrid.workers.blocking import Acceptor
from tests.conftest import child_env, free_port, wait_for

LIMIT = 128  # descriptors the server may open
HOLD = 3.0  # seconds the app keeps every free descriptor taken


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@pytest.mark.parametrize("worker_class", ["sync", "thread"])
def test_out_of_descriptors_rests_accepting_then_serves_again(tmp_path: Path, worker_class):
    port = free_port()
    log_path = tmp_path / "hybrid.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybrid", "run", "tests.apps.basic:app", "-k", worker_class,
             "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path, env=child_env(None), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_limit_descriptors)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), message="the server to serve")
        worker = psutil.Process(int(httpx.get(url + "/pid").text))
        assert httpx.get(url + "/hold-fds", params={"s": HOLD}).text == "holding"
        wait_for(lambda: worker.num_fds() >= LIMIT, message="every descriptor to be taken")
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
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log_path.read_text()


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
