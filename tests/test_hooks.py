"""A gunicorn.conf.py's server hooks run at gunicorn's moments with gunicorn's
arguments, and a hook that fails does what hybrid.hooks says."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import textwrap
import threading
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import run_hybrid, wait_for

# A config file as real deployments write them: a connection opened per
# worker after fork, a log line per request, a file written when ready.
CONFIG = textwrap.dedent('''
    import os
    import socket

    workers = 2
    EVENTS = os.path.join(os.environ["HOOK_DIR"], "events")


    def note(*words):
        with open(EVENTS, "a") as events:
            events.write(" ".join(str(word) for word in words) + "\\n")


    def on_starting(server):
        server.log.info("on_starting in %s", server.pid)
        note("on_starting", server.pid)


    def when_ready(server):
        with open(os.path.join(os.environ["HOOK_DIR"], "ready"), "w") as ready:
            ready.write(str(server.pid))
        note("when_ready", server.num_workers)


    def pre_fork(server, worker):
        note("pre_fork", worker.age)


    def post_fork(server, worker):
        worker.database = socket.create_connection(("127.0.0.1", int(os.environ["DB_PORT"])))
        note("post_fork", worker.pid, worker.age)


    def post_worker_init(worker):
        note("post_worker_init", worker.pid, worker.wsgi is not None)


    def pre_request(worker, req):
        worker.log.info("pre_request %s %s", req.method, req.path)
        if req.path == "/refused-by-hook":
            raise RuntimeError("not this path")


    def post_request(worker, req, environ, resp):
        note("post_request", req.method, req.path, resp.status_code, environ["PATH_INFO"])


    def worker_int(worker):
        note("worker_int", worker.pid)


    def worker_abort(worker):
        note("worker_abort", worker.pid)


    def nworkers_changed(server, new_value, old_value):
        note("nworkers_changed", old_value, new_value)


    def on_reload(server):
        note("on_reload")


    def child_exit(server, worker):
        note("child_exit", worker.pid)


    def worker_exit(server, worker):
        note("worker_exit", worker.pid)


    def on_exit(server):
        note("on_exit")
''')


class Database:
    """A listener standing in for a database: counts the connections made to it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for sock in self.connections:
            sock.close()


@pytest.fixture
def database():
    db = Database()
    yield db
    db.close()


def hooked(tmp_path: Path, database: Database, extra: str = "") -> tuple[Path, dict[str, str]]:
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(CONFIG + textwrap.dedent(extra))
    return path, {"HOOK_DIR": str(tmp_path), "DB_PORT": str(database.port)}


def events(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "events"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def named(tmp_path: Path, name: str) -> list[list[str]]:
    return [event[1:] for event in events(tmp_path) if event[0] == name]


@pytest.mark.parametrize("klass", ["sync", "thread"])
def test_the_hooks_of_a_gunicorn_conf_py_run_at_gunicorns_moments(start_server, tmp_path,
                                                                  database, klass):
    path, env = hooked(tmp_path, database)
    server = start_server("tests.apps.basic:app", "-c", str(path), "-k", klass, env=env)
    pids = server.wait_workers(2)
    assert (tmp_path / "ready").read_text() == str(server.pid)
    assert named(tmp_path, "on_starting") == [[str(server.pid)]]
    assert named(tmp_path, "when_ready") == [["2"]]
    assert sorted(named(tmp_path, "pre_fork")) == [["1"], ["2"]]
    wait_for(lambda: len(named(tmp_path, "post_worker_init")) == 2, message="post_worker_init")
    assert {event[0] for event in named(tmp_path, "post_fork")} == {str(pid) for pid in pids}
    assert sorted(named(tmp_path, "post_worker_init")) == sorted([str(p), "True"] for p in pids)
    wait_for(lambda: len(database.connections) == 2, message="a connection from each post_fork")

    assert httpx.get(server.url + "/path/a%20b?x=1", timeout=10).status_code == 200
    wait_for(lambda: named(tmp_path, "post_request"), message="post_request")
    assert named(tmp_path, "post_request") == [["GET", "/path/a%20b", "200", "/path/a", "b"]]
    assert "pre_request GET /path/a%20b" in server.log()

    server.send(signal.SIGTTIN)
    # (As gunicorn: once as the arbiter sets up, from None.)
    wait_for(lambda: named(tmp_path, "nworkers_changed") == [["None", "2"], ["2", "3"]],
             message="nworkers_changed")
    server.wait_workers(3)
    server.send(signal.SIGHUP)
    wait_for(lambda: named(tmp_path, "on_reload"), message="on_reload")

    assert server.stop() == 0
    exited = {event[0] for event in named(tmp_path, "worker_exit")}
    assert exited and exited == {event[0] for event in named(tmp_path, "child_exit")}
    assert named(tmp_path, "on_exit") == [[]]


def test_a_pre_request_hook_that_fails_answers_500_and_the_worker_serves_on(start_server,
                                                                            tmp_path, database):
    path, env = hooked(tmp_path, database)
    server = start_server("tests.apps.basic:app", "-c", str(path), "-k", "thread", env=env)
    assert httpx.get(server.url + "/refused-by-hook", timeout=10).status_code == 500
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    assert "RuntimeError: not this path" in server.log()


def test_a_post_request_hook_that_fails_is_logged_and_the_answer_stands(start_server, tmp_path,
                                                                        database):
    path, env = hooked(tmp_path, database, '''
        def post_request(worker, req, environ, resp):
            raise ValueError("metrics backend down")
    ''')
    server = start_server("tests.apps.basic:app", "-c", str(path), "-k", "sync", env=env)
    assert httpx.get(server.url + "/", timeout=10).text == "hello"
    wait_for(lambda: "The post_request hook failed" in server.log(), message="the log line")
    assert httpx.get(server.url + "/", timeout=10).text == "hello"


def test_a_worker_killed_for_its_timeout_calls_worker_abort(start_server, tmp_path, database):
    path, env = hooked(tmp_path, database)
    server = start_server("tests.apps.basic:app", "-c", str(path), "-k", "sync", "-w", "1",
                          "--timeout", "1", env=env)
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/sleep?s=30", timeout=20)
    wait_for(lambda: named(tmp_path, "worker_abort"), message="worker_abort")


def test_int_to_a_worker_calls_worker_int(start_server, tmp_path, database):
    path, env = hooked(tmp_path, database)
    server = start_server("tests.apps.basic:app", "-c", str(path), "-k", "thread", "-w", "1",
                          env=env)
    (pid,) = server.wait_workers(1)
    os.kill(pid, signal.SIGINT)
    wait_for(lambda: named(tmp_path, "worker_int") == [[str(pid)]], message="worker_int")


def test_an_on_starting_hook_that_fails_stops_the_start(tmp_path, database):
    path, env = hooked(tmp_path, database, '''
        def on_starting(server):
            raise RuntimeError("secrets not mounted")
    ''')
    done = run_hybrid("run", "tests.apps.basic:app", "-c", str(path), "--bind", "127.0.0.1:0",
                      env=env)
    assert done.returncode == 1
    assert "the on_starting hook failed: RuntimeError: secrets not mounted" in done.stderr


def test_a_post_fork_hook_that_fails_is_a_worker_that_cannot_boot(tmp_path, database):
    path, env = hooked(tmp_path, database, '''
        def post_fork(server, worker):
            raise ConnectionRefusedError("database unreachable")
    ''')
    done = run_hybrid("run", "tests.apps.basic:app", "-c", str(path), "--bind", "127.0.0.1:0",
                      env=env)
    assert done.returncode == 3  # (BOOT_ERROR: as an app that cannot be imported)
    assert "the post_fork hook failed: ConnectionRefusedError: database unreachable" in \
        done.stderr


def test_an_ssl_context_hook_makes_the_context(start_server, tmp_path, database):
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    path, env = hooked(tmp_path, database, '''
        import ssl

        def ssl_context(config, default_ssl_context_factory):
            context = default_ssl_context_factory()
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            note("ssl_context", config.certfile is not None)
            return context
    ''')
    server = start_server("tests.apps.basic:app", "-c", str(path), "--certfile", str(cert),
                          "--keyfile", str(key), env=env)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    url = server.url.replace("http://", "https://")
    assert httpx.get(url + "/", verify=client, timeout=10).text == "hello"
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", verify=client, timeout=10)
    assert named(tmp_path, "ssl_context") == [["True"]]
