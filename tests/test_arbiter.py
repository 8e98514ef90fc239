"""The supervisor as a real process tree: real signals, real sockets."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import signal
import stat
import threading
import time

import httpx
import psutil
import pytest

from hybrid import logs, process
from tests.conftest import run_hybrid, wait_for

APP = "tests.apps.basic:app"


def get(server, path: str = "/pid", timeout: float = 10) -> httpx.Response:
    return httpx.get(server.url + path, timeout=timeout)


def test_workers_share_the_socket(start_server):
    server = start_server(APP, "-w", "3")
    pids = server.wait_workers(3)
    served = set()
    wait_for(lambda: served.add(int(get(server).text)) or served == pids, timeout=30,
             interval=0, message="every worker to answer")


def test_killed_worker_is_respawned(start_server):
    server = start_server(APP, "-w", "2")
    before = server.wait_workers(2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (pids := server.booted_workers()) and len(pids) == 2
                     and victim not in pids and pids, message="a replacement worker")
    assert len(after & before) == 1
    assert get(server).status_code == 200
    assert f"Worker {victim} was killed by SIGKILL" in server.log()


def test_no_zombie_children_are_left(start_server):
    server = start_server(APP, "-w", "2")
    pids = server.wait_workers(2)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    server.wait_workers(2)
    children = psutil.Process(server.pid).children()
    assert all(child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_term_lets_an_in_flight_request_finish(start_server):
    server = start_server(APP, "-w", "1")
    server.wait_workers(1)
    result = {}

    def slow_request() -> None:
        result["response"] = get(server, "/sleep?s=2")

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_for(lambda: "sleep started" in server.log(), message="the request to reach the worker")
    assert server.stop(signal.SIGTERM) == 0
    thread.join()
    assert result["response"].status_code == 200
    assert result["response"].text == "slept"


def test_ttin_and_ttou_change_the_worker_count(start_server):
    server = start_server(APP, "-w", "2")
    server.wait_workers(2)
    server.send(signal.SIGTTIN)
    server.wait_workers(3)
    # The kernel merges a signal sent twice before it is handled: one at a time.
    server.send(signal.SIGTTOU)
    wait_for(lambda: len(server.worker_pids()) == 2, message="two workers left")
    server.send(signal.SIGTTOU)
    wait_for(lambda: len(server.worker_pids()) == 1, message="one worker left")
    assert get(server).status_code == 200


def test_ttou_never_goes_below_one_worker(start_server):
    server = start_server(APP, "-w", "1")
    only = server.wait_workers(1)
    server.send(signal.SIGTTOU)
    wait_for(lambda: "Received TTOU: 1 workers" in server.log(), message="the TTOU log line")
    assert server.worker_pids() == only


def test_silent_worker_is_killed_and_replaced(start_server):
    server = start_server(APP, "-w", "1", "--timeout", "2")
    (stuck,) = server.wait_workers(1)
    with pytest.raises(httpx.HTTPError):
        get(server, "/sleep?s=60", timeout=20)
    wait_for(lambda: (pids := server.booted_workers()) and stuck not in pids, message="a new worker")
    log = server.log()
    assert f"WORKER TIMEOUT: worker {stuck}" in log
    assert "while serving GET /sleep?s=60" in log
    assert get(server).status_code == 200


def test_quit_stops_at_once(start_server):
    server = start_server(APP, "-w", "2")
    workers = server.wait_workers(2)
    assert server.stop(signal.SIGQUIT) == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in workers)


def test_int_stops_like_ctrl_c(start_server):
    server = start_server(APP, "-w", "1")
    server.wait_workers(1)
    assert server.stop(signal.SIGINT) == 0


def test_pid_file_is_written_and_removed(start_server, tmp_path):
    pidfile = tmp_path / "hybrid.pid"
    server = start_server(APP, "--pid", str(pidfile))
    wait_for(pidfile.exists, message="the pid file")
    assert pidfile.read_text().strip() == str(server.pid)
    assert server.stop() == 0
    assert not pidfile.exists()


def test_preload_imports_the_app_once_in_the_arbiter(start_server):
    server = start_server(APP, "-w", "2", "--preload")
    server.wait_workers(2)
    assert get(server, "/imported-by").text == str(server.pid)


def test_without_preload_each_worker_imports_the_app(start_server):
    server = start_server(APP, "-w", "1")
    (worker,) = server.wait_workers(1)
    assert get(server, "/imported-by").text == str(worker)


def test_int_during_a_graceful_stop_stops_at_once(start_server):
    server = start_server(APP, "-w", "1")
    server.wait_workers(1)
    thread = threading.Thread(target=lambda: _ignore_errors(lambda: get(server, "/sleep?s=60", 90)))
    thread.start()
    wait_for(lambda: "sleep started" in server.log(), message="the request to start")
    server.send(signal.SIGTERM)
    wait_for(lambda: "stopping gracefully" in server.log(), message="the graceful stop")
    arbiter = psutil.Process(server.pid)
    cpu_before = sum(arbiter.cpu_times()[:2])
    time.sleep(1.0)  # the arbiter waits for the request; it must not spin meanwhile
    assert sum(arbiter.cpu_times()[:2]) - cpu_before < 0.5
    assert server.stop(signal.SIGINT, timeout=15) == 0
    thread.join()


def _ignore_errors(call) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass


def test_worker_exit_is_logged_and_replaced_when_the_arbiter_is_alive(start_server):
    server = start_server(APP, "-w", "1")
    (first,) = server.wait_workers(1)
    os.kill(first, signal.SIGTERM)  # a worker that leaves on its own is replaced too
    wait_for(lambda: (pids := server.booted_workers()) and first not in pids, message="a new worker")
    assert get(server).status_code == 200


def test_usr1_reopens_log_files(start_server, tmp_path):
    logfile = tmp_path / "error.log"
    server = start_server(APP, "--error-logfile", str(logfile))
    wait_for(lambda: logfile.exists() and "booted" in logfile.read_text(), message="the log file")
    rotated = tmp_path / "error.log.1"
    logfile.rename(rotated)
    server.send(signal.SIGUSR1)
    wait_for(lambda: logfile.exists() and "USR1" in logfile.read_text(), message="a fresh log file")
    assert "USR1" not in rotated.read_text()


def test_arbiter_survives_many_worker_deaths(start_server):
    server = start_server(APP, "-w", "1")
    for _ in range(5):
        (pid,) = server.wait_workers(1)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pid not in server.worker_pids(), message="the worker to go")
    server.wait_workers(1)
    assert get(server).status_code == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_workers_run_as_user_and_group_after_the_bind(start_server):
    # --preload: the app is imported by the arbiter, as root; this machine's Python
    # lives under /root, where nobody may not read the modules a worker would import.
    server = start_server(APP, "--preload", "--user", "nobody", "--group", "nogroup")
    uid, gid, _ = get(server, "/ids").text.split()
    assert (int(uid), int(gid)) == (pwd.getpwnam("nobody").pw_uid,
                                    grp.getgrnam("nogroup").gr_gid)
    assert os.getuid() == 0 and psutil.Process(server.pid).uids().real == 0  # the arbiter


def test_an_unknown_user_is_one_line_and_exit_1(tmp_path):
    result = run_hybrid("run", APP, "--user", "no-such-user-here", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "hybrid: error: --user: no such user 'no-such-user-here'"


def test_umask_applies_to_the_unix_socket_file(start_server, tmp_path):
    path = tmp_path / "served.sock"
    server = start_server(APP, "--bind", f"unix:{path}", "--umask", "077", ready=False)
    wait_for(path.exists, message="the socket file")
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport) as client:
        assert client.get("http://x/ids", timeout=10).text.split()[2] == "077"
    server.stop()


def _listening_on(pid: int, port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
               for c in psutil.Process(pid).net_connections(kind="tcp"))


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_reuse_port_gives_each_worker_a_listening_socket_of_its_own(start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "-w", "2", "--reuse-port", ready=False)
    wait_for(lambda: len(server.booted_workers()) == 2, message="two workers")
    pids = server.booted_workers()
    assert all(_listening_on(pid, server.port) for pid in pids)
    assert not _listening_on(server.pid, server.port)  # the arbiter only holds the address
    served: set[int] = set()
    wait_for(lambda: served.add(int(get(server).text)) or served == pids, timeout=30,
             interval=0, message="every worker to answer")


def test_workers_that_keep_dying_right_after_they_serve_are_respawned_ever_later(
        start_server, tmp_path):
    (tmp_path / "dies_soon.py").write_text(
        "import os, threading\n"
        "threading.Timer(0.2, os._exit, (1,)).start()  # a crash just after the boot\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'']\n")
    server = start_server("dies_soon:app", ready=False)
    wait_for(lambda: server.log().count("Workers keep dying right after they start serving") >= 3,
             timeout=30, message="the backoff said three times")
    log = server.log()
    assert "the next one starts in 0.1 s" in log and "the next one starts in 0.4 s" in log
    assert log.count("Booting worker") < 10  # (without the backoff: hundreds by now)
    server.stop()


class Said(logging.Handler):
    """The error log's lines, as a test reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_slow_preload_import_is_reported_while_it_goes_on(monkeypatch):
    # (Every 10 s in earnest; the import itself has no time limit, as in gunicorn.)
    monkeypatch.setattr(process, "IMPORT_REPORT_INTERVAL", 0.01)
    level = logs.error_log.level
    # (setLevel, not the attribute: it also clears the logger's cache of what is
    # enabled, which a test before this one in the same process may have filled.)
    logs.error_log.setLevel(logging.INFO)
    said = Said()
    logs.error_log.addHandler(said)
    try:
        with process.reporting_slow_import("slow:app"):
            wait_for(lambda: len(said.lines) >= 2, message="two reports")
    finally:
        logs.error_log.removeHandler(said)
        logs.error_log.setLevel(level)
    assert all(line.startswith("Still importing slow:app in the arbiter (--preload): ")
               for line in said.lines)
    assert "hybrid-import-report" not in [thread.name for thread in threading.enumerate()]
