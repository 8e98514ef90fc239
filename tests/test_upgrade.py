"""USR2: the arbiter re-executes itself with the sockets inherited and hands
over once the new workers serve, failing no request; a new arbiter that
cannot boot leaves the old one serving. And systemd socket activation."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import Traffic, child_env, run_hybrid, wait_for

APP = "tests.apps.basic:app"
CLASSES = ["sync", "thread", "asgi"]


def stop_pid(pid: int) -> None:
    """TERM a process that is not our child (a new arbiter), and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    wait_for(lambda: not psutil.pid_exists(pid)
             or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=30,
             message=f"process {pid} to stop")


@pytest.mark.parametrize("worker_class", CLASSES)
def test_usr2_upgrades_without_failing_a_request(start_server, worker_class, tmp_path):
    pidfile = tmp_path / "hybrid.pid"
    server = start_server(APP, "-k", worker_class, "-w", "2", "--pid", str(pidfile))
    old_workers = server.wait_workers(2)
    new_arbiter = 0
    try:
        with Traffic(server) as traffic:
            traffic.more(message="traffic before the upgrade")
            server.send(signal.SIGUSR2)
            assert server.proc.wait(60) == 0  # the old arbiter handed over, then stopped
            new_arbiter = int(pidfile.read_text())
            traffic.more(message="traffic after the upgrade")
    finally:
        if not new_arbiter and pidfile.exists():
            new_arbiter = int(pidfile.read_text())
        if new_arbiter and new_arbiter != server.pid:
            stop_pid(new_arbiter)
    assert traffic.failures == []
    assert new_arbiter != server.pid
    assert not {int(pid) for pid in traffic.answers[-10:]} & old_workers
    assert not (tmp_path / "hybrid.pid.oldbin").exists()
    assert f"The new arbiter (pid {new_arbiter}) serves" in server.log()


def test_usr2_under_reuse_port_hands_the_address_to_the_new_workers(start_server, tmp_path):
    # (No traffic here: connections queued on the old workers' own sockets are
    # reset when they stop, unless the kernel migrates them: see --reuse-port.)
    pidfile = tmp_path / "hybrid.pid"
    server = start_server(APP, "-k", "thread", "--reuse-port", "--pid", str(pidfile))
    (old_worker,) = server.wait_workers(1)
    server.send(signal.SIGUSR2)
    try:
        assert server.proc.wait(60) == 0
        new_arbiter = int(pidfile.read_text())
        new_worker = int(httpx.get(server.url + "/pid", timeout=10).text)
        assert new_worker != old_worker
        assert psutil.Process(new_worker).ppid() == new_arbiter
    finally:
        if pidfile.exists() and int(pidfile.read_text()) != server.pid:
            stop_pid(int(pidfile.read_text()))


def test_an_upgrade_that_cannot_boot_leaves_the_old_arbiter_serving(start_server, tmp_path):
    (tmp_path / "changing.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'old code']\n")
    pidfile = tmp_path / "hybrid.pid"
    server = start_server("changing:app", "-k", "thread", "--pid", str(pidfile))
    server.wait_workers(1)
    (tmp_path / "changing.py").write_text("def app(:\n")  # a release with a syntax error
    server.send(signal.SIGUSR2)
    wait_for(lambda: "Upgrade failed" in server.log(), timeout=30, message="the failed upgrade")
    assert "this arbiter keeps serving" in server.log()
    assert httpx.get(server.url + "/", timeout=10).text == "old code"
    assert int(pidfile.read_text()) == server.pid  # renamed back from .oldbin
    assert server.proc.poll() is None


def test_systemd_socket_activation_serves_on_the_passed_sockets(tmp_path):
    tcp = socket.create_server(("127.0.0.1", 0))
    unix_path = str(tmp_path / "activated.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    # Plays systemd: the sockets at descriptors 3 and 4, LISTEN_PID the pid that execs.
    launcher = (f"import os, sys; os.dup2({tcp.fileno()}, 3); os.dup2({unix.fileno()}, 4); "
                f"os.environ.update(LISTEN_FDS='2', LISTEN_PID=str(os.getpid())); "
                f"os.execv(sys.executable, [sys.executable, '-m', 'hybrid', 'run', '{APP}', "
                f"'-k', 'thread'])")
    proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=tmp_path, env=child_env(None),
                            pass_fds=(tcp.fileno(), unix.fileno()),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        port = tcp.getsockname()[1]
        tcp.close()
        unix.close()
        wait_for(lambda: _answers(httpx.HTTPTransport(), f"http://127.0.0.1:{port}/"),
                 message="an answer on the TCP socket")
        assert _answers(httpx.HTTPTransport(uds=unix_path), "http://activated/")
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "from systemd (socket activation)" in output
    assert Path(unix_path).exists()  # systemd's socket file: not ours to remove


def test_socket_activation_meant_for_another_process_is_refused(tmp_path):
    result = run_hybrid("run", APP, cwd=tmp_path, env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    assert result.returncode == 1
    assert "LISTEN_FDS is set for process 1, not this one" in result.stderr


def _answers(transport: httpx.HTTPTransport, url: str) -> bool:
    try:
        with httpx.Client(transport=transport, timeout=5) as client:
            return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False
