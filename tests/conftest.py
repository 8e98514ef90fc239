"""Fixtures that run a real `hybrid` process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from hybrid import cli
from hybrid.workers import WORKER_CLASSES, load_class

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.05,
             message: str = "condition") -> object:
    """Poll until `condition()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def platform_variable(name: str) -> bool:
    """A variable that would set hybrid's settings: a test gives them itself."""
    return name in ("PORT", "WEB_CONCURRENCY") or name.startswith("HYBRID_")


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """The environment for a hybrid process: ours, minus platform variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not platform_variable(k)}
    return {**env, "PYTHONPATH": str(ROOT), **(extra or {})}


class Server:
    """A `hybrid run` process; its error log goes to a file the test can read."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"hybrid-{port}.log"
        full_env = child_env(env)
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hybrid", "run", *args], cwd=workdir, env=full_env,
            stdout=self._log_file, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def accepts(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"hybrid exited with {self.proc.returncode}:\n{self.log()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def worker_pids(self) -> set[int]:
        """The arbiter's live children (a child exiting mid-scan makes psutil retry)."""
        while self.proc.poll() is None:
            try:
                return {child.pid for child in psutil.Process(self.pid).children()
                        if child.status() != psutil.STATUS_ZOMBIE}
            except psutil.NoSuchProcess:
                continue
        return set()

    def booted_workers(self) -> set[int]:
        """Workers that logged that they serve."""
        log = self.log()
        return {pid for pid in self.worker_pids() if f"Worker {pid} booted" in log}

    def wait_workers(self, count: int) -> set[int]:
        wait_for(lambda: len(self.booted_workers()) == count == len(self.worker_pids()),
                 message=f"{count} booted workers")
        return self.booted_workers()

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log_file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in self.worker_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


class Traffic:
    """Clients looping GET requests on `server` (each with its own keep-alive
    connection pool), recording each answer's body and every failure."""

    def __init__(self, server: Server, path: str = "/pid", clients: int = 4, *,
                 http2: bool = False) -> None:
        """`http2`: each client speaks HTTP/2 by prior knowledge (h2c)."""
        self.url = server.url + path
        self.http2 = http2
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(clients)]

    def _loop(self) -> None:
        with httpx.Client(timeout=10, http1=not self.http2, http2=self.http2) as http:
            while not self._stop.is_set():
                try:
                    response = http.get(self.url)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(str(response.status_code))
                self.answers.append(response.text)

    def more(self, count: int = 20, message: str = "more traffic") -> None:
        """Wait until `count` more requests are answered."""
        start = len(self.answers)
        wait_for(lambda: len(self.answers) >= start + count, message=message)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_server(app, *flags, env=..., ready=True): a running server; stopped with
    TERM at the end of the test, which must exit cleanly."""
    servers: list[Server] = []

    def start(app: str, *flags: str, env: dict[str, str] | None = None, ready: bool = True,
              port: int | None = None, bind: bool = True) -> Server:
        """`bind`: False when `flags` name the address (on `port`) themselves."""
        port = port or free_port()
        address = ["--bind", f"127.0.0.1:{port}"] if bind else []
        server = Server([app, *address, *flags], tmp_path, env, port)
        servers.append(server)
        if ready:
            wait_for(server.accepts, message="the server to accept connections")
        return server

    yield start
    failures = []
    for server in servers:
        if server.proc.poll() is not None:
            server._log_file.close()
            continue
        try:
            code = server.stop()
        except subprocess.TimeoutExpired:
            server.kill()
            failures.append(f"server on port {server.port} did not stop on TERM")
            continue
        if code != 0:
            failures.append(f"server on port {server.port} exited with {code}:\n{server.log()}")
    assert not failures, "\n".join(failures)


WSGI_CLASSES = sorted(name for name in WORKER_CLASSES if "wsgi" in load_class(name).interfaces)
# The same routes, written for each interface (tests/apps/basic.py and asgi_basic.py).
APP_FOR_INTERFACE = {"wsgi": "tests.apps.basic:app", "asgi": "tests.apps.asgi_basic:app"}


def app_for(worker_class: str) -> str:
    """The test app a worker class serves natively."""
    return APP_FOR_INTERFACE[load_class(worker_class).interfaces[0]]


def run_hybrid(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `hybrid ARGS` to completion (for commands that exit)."""
    return subprocess.run([sys.executable, "-m", "hybrid", *args], cwd=cwd, env=child_env(env),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(*flags: str) -> str:
    """The one line `hybrid run` of the test app with `flags` fails with (exit 1)."""
    done = run_hybrid("run", "tests.apps.basic:app", "--bind", "127.0.0.1:0", *flags)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def one_line_refusal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     tmp_path: Path) -> Callable[..., str]:
    """one_line_refusal(*argv, env=...): the one line `hybrid ARGV` fails with (exit 1),
    in this process: for settings refused as they load, before anything starts, as
    one_line_error sees them from a process, with its environment (no platform
    variables) in an empty directory. It fails the test if the settings are accepted
    (serving or checking them would go on in this process)."""

    def accepted(*args: object) -> int:
        raise AssertionError("the settings were accepted: hybrid would go on with them")

    def refuse(*argv: str, env: dict[str, str] | None = None) -> str:
        for name in filter(platform_variable, list(os.environ)):
            monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(cli, "serve", accepted)
        monkeypatch.setattr(cli, "check", accepted)
        status = cli.main(list(argv))
        err = capsys.readouterr().err
        assert status == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        return lines[0]

    return refuse


def launch(app: str, *flags: str, workdir: Path, env: dict[str, str] | None = None) -> Server:
    """Start a server outside the function-scoped fixture (for module-scoped ones)."""
    port = free_port()
    server = Server([app, "--bind", f"127.0.0.1:{port}", *flags], workdir, env, port)
    wait_for(server.accepts, message="the server to accept connections")
    return server


def read_response(sock: socket.socket) -> bytes:
    """One Content-Length-framed response from a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(split_response(data)[1]["content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def raw_exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 10) -> bytes:
    """Send exact bytes, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset ends it too)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body bytes exactly as sent) of one response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


# --- the tiers ----------------------------------------------------------------------
# pyproject.toml declares the marks; each test gets its marks here, from what it
# does, so that a new test lands in its tier without a mark of its own:
#   process  it starts a process (a server, a `hybrid` command, a fork, pip, docker,
#            a tool): the test, a fixture it uses, or a function of tests/ that they
#            call names one of PROCESS_STARTERS;
#   slow     it builds or runs an outside tool (TOOL_MODULES); or it is a process
#            test that starts a process of its own (the test or a function-scoped
#            fixture does: a second or so each, and most of the suite's time), not
#            one that shares a module's server; or it is marked slow where it is
#            written (a shared server made to wait out a timeout, say);
#   core     neither: it runs in this process.
# `make check` leaves out the tests that are both process and slow.
PROCESS_STARTERS = frozenset({"Server", "launch", "run_hybrid", "one_line_error", "subprocess",
                              "Popen", "fork"})
TOOL_MODULES = frozenset({"test_container", "test_packaging", "test_types", "test_deploy",
                          "test_docs"})


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names `code` uses, its nested functions' too."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def starts_a_process(function: object, seen: set[types.CodeType]) -> bool:
    """Whether `function`, or a function of tests/ it calls, names a PROCESS_STARTER."""
    code = getattr(function, "__code__", None)
    if code is None or code in seen or not getattr(function, "__module__", "").startswith("tests"):
        return False
    seen.add(code)
    names = _names(code)
    return bool(names & PROCESS_STARTERS) or any(
        starts_a_process(getattr(function, "__globals__", {}).get(name), seen) for name in names)


def _fixture_functions(item: pytest.Item, own: bool) -> Iterator[object]:
    """The functions of the fixtures `item` uses: its own (function-scoped) ones, or
    the ones it shares with other tests."""
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info else ()):
        for definition in definitions:
            if (definition.scope == "function") == own:
                yield definition.func


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        seen: set[types.CodeType] = set()
        own = [getattr(item, "function", None), *_fixture_functions(item, own=True)]
        starts_its_own = any(starts_a_process(function, seen) for function in own)
        process = starts_its_own or any(starts_a_process(function, seen)
                                        for function in _fixture_functions(item, own=False))
        slow = item.path.stem in TOOL_MODULES or starts_its_own
        if process:
            item.add_marker(pytest.mark.process)
        if slow:
            item.add_marker(pytest.mark.slow)
        if not (process or slow or item.get_closest_marker("slow")):
            item.add_marker(pytest.mark.core)
