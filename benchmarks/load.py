"""Load harness: hybrid against its peers, measured in the same run.

Every server of a group starts once on its own free port (1 worker each);
then, round after round, `wrk` drives each in turn (the order rotates every
round) with keep-alive connections. The report is the median requests per
second and p99 latency over the rounds, each server's ratio to the group's
baseline, and the CPU time its processes (all threads, user and system)
spent per request. Only these ratios mean something: this machine is noisy.
Where the load generator shares the server's few cores, a server that moves
I/O to threads of its own (granian) can use more than one core: CPU per
request tells efficiency apart from that.

    python benchmarks/load.py --group thread [--rounds 5] [--duration 5]
    python benchmarks/load.py --group thread-json|thread-io|flask|django
    python benchmarks/load.py --group sync
    python benchmarks/load.py --group bridge|bridge-io   # a WSGI app on an event loop
    python benchmarks/load.py --group bridge-spike       # its direct path, the bridge, a spike
    python benchmarks/load.py --group asgi|asgi-json|starlette
    python benchmarks/load.py --group tls   # HTTPS keep-alive, one ECDSA P-256 certificate
    python benchmarks/load.py --group asgi --pin   # one core for the servers, one for wrk
    python benchmarks/load.py --group asgi --close # a new connection per request
    python benchmarks/load.py --group asgi-accept --close [--connections 1]
    python benchmarks/load.py --group asgi --tree /tmp/old   # also hybrid from another
                                                   # checkout (git worktree add /tmp/old REV)
    python benchmarks/load.py --group thread --only "hybrid thread" --tree /tmp/old --rounds 12
    python benchmarks/load.py --group thread --both-builds   # compiled and interpreted
    python benchmarks/load.py --group asgi --save benchmarks/results/asgi.json
                                                   # for benchmarks/chart.py

Peers come from `benchmarks/requirements.txt`; wrk from Debian (`apt-get
install -y wrk`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from hybrid.native import build

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Server:
    name: str
    argv: list[str]  # "{port}" is replaced by the port
    port: int = 0
    proc: subprocess.Popen | None = None
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # CPU time per request
    root: Path = ROOT  # the checkout whose code (and benchmarks.apps) it serves
    scheme: str = "http"  # "https": argv names {certfile} and {keyfile}
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment


def _target(app: str) -> str:
    """An app of benchmarks.apps by name, or any "module:attribute"."""
    return app if ":" in app else f"benchmarks.apps:{app}"


def hybrid(app: str, *flags: str) -> list[str]:
    return [str(BIN / "hybrid"), "run", _target(app), "-w", "1",
            "-b", "127.0.0.1:{port}", "--log-level", "warning", *flags]


def gunicorn(app: str, *flags: str) -> list[str]:
    # Its C parser (gunicorn-h1c), as `gunicorn[fast]` users run it: required here.
    return [str(BIN / "gunicorn"), _target(app), "-w", "1", "-b", "127.0.0.1:{port}",
            "--log-level", "warning", "--http-parser", "fast", *flags]


def granian(app: str, interface: str, *flags: str) -> list[str]:
    return [str(BIN / "granian"), "--interface", interface, "--host", "127.0.0.1",
            "--port", "{port}", "--workers", "1", "--log-level", "warning", *flags,
            _target(app)]


def waitress(app: str, threads: int) -> list[str]:
    return [str(BIN / "waitress-serve"), "--listen=127.0.0.1:{port}", f"--threads={threads}",
            _target(app)]


def uvicorn(app: str, *flags: str) -> list[str]:
    return [str(BIN / "uvicorn"), _target(app), "--host", "127.0.0.1",
            "--port", "{port}", "--workers", "1", "--log-level", "warning", "--no-access-log",
            *flags]


def _wsgi_on_threads(app: str, a2wsgi_app: str, threads: int) -> tuple[str, list[Server]]:
    """A WSGI app on a pool of `threads`, under every server that has one."""
    count = str(threads)
    return ("uvicorn + a2wsgi", [
        Server("hybrid asgi (WSGI app)", hybrid(app, "-k", "asgi", "--threads", count)),
        Server("hybrid thread", hybrid(app, "-k", "thread", "--threads", count)),
        Server("uvicorn + a2wsgi", uvicorn(a2wsgi_app, "--http", "httptools", "--loop", "uvloop")),
        Server("gunicorn gthread", gunicorn(app, "-k", "gthread", "--threads", count)),
        Server("granian wsgi", granian(app, "wsgi", "--blocking-threads", count)),
    ])


def _blocking_wsgi(app: str, asgi_twin: str) -> tuple[str, list[Server]]:
    """A WSGI app under every blocking-I/O WSGI server (4 threads where there is a
    pool), granian's WSGI mode as the baseline, and the same bytes from an ASGI
    app on hybrid's asgi class for the CPU a request costs there."""
    return ("granian wsgi", [
        Server("hybrid thread", hybrid(app, "-k", "thread")),
        Server("hybrid thread --threads 1", hybrid(app, "-k", "thread", "--threads", "1")),
        Server("hybrid sync", hybrid(app, "-k", "sync")),
        Server("hybrid asgi (ASGI app)", hybrid(asgi_twin, "-k", "asgi")),
        Server("gunicorn gthread", gunicorn(app, "-k", "gthread", "--threads", "4")),
        Server("gunicorn sync", gunicorn(app, "-k", "sync")),
        Server("granian wsgi", granian(app, "wsgi", "--blocking-threads", "4")),
        Server("waitress", waitress(app, 4)),
    ])


def _framework(app: str) -> tuple[str, list[Server]]:
    """A framework's WSGI app on 4 threads."""
    return ("gunicorn gthread", [
        Server("hybrid thread", hybrid(app, "-k", "thread")),
        Server("gunicorn gthread", gunicorn(app, "-k", "gthread", "--threads", "4")),
        Server("granian wsgi", granian(app, "wsgi", "--blocking-threads", "4")),
    ])


def _tls() -> tuple[str, list[Server]]:
    """HTTPS keep-alive, the same certificate (and TLS 1.3, which wrk and every
    server here agree on) for all."""
    files = ("{certfile}", "{keyfile}")
    return ("uvicorn", [
        Server("hybrid asgi", hybrid("asgi_plaintext", "-k", "asgi", "--certfile", files[0],
                                     "--keyfile", files[1]), scheme="https"),
        Server("uvicorn", uvicorn("asgi_plaintext", "--http", "httptools", "--loop", "uvloop",
                                  "--ssl-certfile", files[0], "--ssl-keyfile", files[1]),
               scheme="https"),
        Server("granian asgi", granian("asgi_plaintext", "asgi", "--ssl-certificate", files[0],
                                       "--ssl-keyfile", files[1]), scheme="https"),
        Server("hybrid thread (WSGI app)", hybrid("wsgi_plaintext", "-k", "thread", "--certfile",
                                                  files[0], "--keyfile", files[1]),
               scheme="https"),
    ])


GROUPS: dict[str, tuple[str, list[Server]]] = {
    # (baseline, servers)
    "thread": _blocking_wsgi("wsgi_plaintext", "asgi_plaintext"),
    "thread-json": _blocking_wsgi("wsgi_json", "asgi_json"),
    # An app that waits 20 ms per call, on 16 threads: the ideal is 800 requests/s.
    "thread-io": ("gunicorn gthread", [
        Server("hybrid thread", hybrid("wsgi_io", "-k", "thread", "--threads", "16")),
        Server("gunicorn gthread", gunicorn("wsgi_io", "-k", "gthread", "--threads", "16")),
        Server("granian wsgi", granian("wsgi_io", "wsgi", "--blocking-threads", "16")),
        Server("waitress", waitress("wsgi_io", 16)),
    ]),
    "flask": _framework("flask_page"),
    "django": _framework("benchmarks.django_app:application"),
    # A WSGI app on an event loop: hybrid's bridge against uvicorn + a2wsgi.
    "bridge": _wsgi_on_threads("wsgi_plaintext", "a2wsgi_plaintext", 4),
    # The same, with an app that waits 20 ms per request, on 16 threads: the
    # ideal is 16 / 20 ms = 800 requests/s.
    "bridge-io": _wsgi_on_threads("wsgi_io", "a2wsgi_io", 16),
    # A WSGI app on the asgi class (the direct path), the same app through the
    # bridge's ASGI messages, and the spike that measured a direct path first
    # (benchmarks/direct_wsgi_spike.py: no bodies, errors or backpressure).
    "bridge-spike": ("granian wsgi", [
        Server("hybrid asgi (WSGI app)", hybrid("wsgi_plaintext", "-k", "asgi", "--threads", "4")),
        Server("hybrid asgi (bridge as ASGI app)", hybrid("bridged_plaintext", "-k", "asgi")),
        Server("direct WSGI spike", [sys.executable, str(ROOT / "benchmarks" / "direct_wsgi_spike.py"),
                                     "--port", "{port}", "--threads", "4"]),
        Server("granian wsgi", granian("wsgi_plaintext", "wsgi", "--blocking-threads", "4")),
    ]),
    "asgi": ("uvicorn", [
        Server("hybrid asgi", hybrid("asgi_plaintext", "-k", "asgi")),
        Server("uvicorn", uvicorn("asgi_plaintext", "--http", "httptools", "--loop", "uvloop")),
        Server("granian asgi", granian("asgi_plaintext", "asgi")),
    ]),
    "asgi-json": ("uvicorn", [
        Server("hybrid asgi", hybrid("asgi_json", "-k", "asgi")),
        Server("uvicorn", uvicorn("asgi_json", "--http", "httptools", "--loop", "uvloop")),
        Server("granian asgi", granian("asgi_json", "asgi")),
    ]),
    "starlette": ("uvicorn", [
        Server("hybrid asgi", hybrid("starlette_json", "-k", "asgi")),
        Server("uvicorn", uvicorn("starlette_json", "--http", "httptools", "--loop", "uvloop")),
        Server("granian asgi", granian("starlette_json", "asgi")),
    ]),
    "tls": _tls(),
    # The asgi class's two ways of accepting (workers/asgi/listener.py): libuv's,
    # and its own, which a descriptor limit under a burst of queued connections
    # selects from the start. Meant for --close, where accepting is in every request.
    "asgi-accept": ("hybrid asgi", [
        Server("hybrid asgi", hybrid("asgi_plaintext", "-k", "asgi")),
        Server("hybrid asgi accepting itself", [
            shutil.which("prlimit") or "/usr/bin/prlimit", "--nofile=2000",
            *hybrid("asgi_plaintext", "-k", "asgi")]),
    ]),
    "sync": ("gunicorn sync", [
        Server("hybrid sync", hybrid("wsgi_plaintext", "-k", "sync")),
        Server("gunicorn sync", gunicorn("wsgi_plaintext", "-k", "sync")),
    ]),
}


def from_tree(server: Server, tree: Path) -> Server:
    """`server`, a hybrid one, running the code of the checkout `tree` instead."""
    layout = tree / "hybrid" / "workers"
    if (tree / "workers").is_dir() and not layout.exists():
        # The checkout is not installed: its workers/ becomes hybrid.workers as
        # the installed package maps it (pyproject's package-dir).
        layout.symlink_to("../workers")
    argv = [sys.executable, "-m", "hybrid", *server.argv[1:]]
    return Server(f"{server.name} @ {tree.name}", argv, root=tree, scheme=server.scheme)


def interpreted(server: Server) -> Server:
    """`server`, a hybrid one, on the interpreted build (HYBRID_NO_EXTENSIONS=1)."""
    return Server(f"{server.name} (interpreted)", server.argv, root=server.root,
                  scheme=server.scheme, env={**server.env, "HYBRID_NO_EXTENSIONS": "1"})


def in_turn(servers: list[Server], round_number: int) -> list[Server]:
    """`servers` in this round's order: each round starts one further on, so that
    none is always first (or always follows the same one)."""
    turn = round_number % len(servers)
    return servers[turn:] + servers[:turn]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `--pin`: taskset prefixes confining the servers and the load generator to
# different cores, so that no server gets more than one core of CPU time.
PIN_SERVER: list[str] = []
PIN_LOAD: list[str] = []
# The TLS group's certificate and key (made once per run, self-signed).
TLS_FILES: dict[str, str] = {}


def make_certificate(directory: Path) -> None:
    TLS_FILES["{certfile}"] = str(directory / "cert.pem")
    TLS_FILES["{keyfile}"] = str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", TLS_FILES["{keyfile}"], "-out", TLS_FILES["{certfile}"]],
                   check=True, capture_output=True)


def start(server: Server, answers: Callable[[Server], bool] | None = None) -> bool:
    """Start `server` and wait until it answers (`answers`: by default, an HTTP/1.1
    GET with a 200)."""
    answers = answers or answers_http_1_1
    server.port = free_port()
    argv = [TLS_FILES.get(part, part).replace("{port}", str(server.port))
            for part in server.argv]
    if not Path(argv[0]).exists():
        print(f"skip {server.name}: {argv[0]} is not installed", file=sys.stderr)
        return False
    argv = PIN_SERVER + argv
    server.proc = subprocess.Popen(argv, cwd=server.root,
                                   env={**os.environ, "PYTHONPATH": str(server.root),
                                        **server.env},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            print(f"skip {server.name}: exited with {server.proc.returncode}", file=sys.stderr)
            return False
        if answers(server):
            return True
        time.sleep(0.2)
    print(f"skip {server.name}: no answer", file=sys.stderr)
    return False


def answers_http_1_1(server: Server) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1) as plain:
            sock = _UNVERIFIED.wrap_socket(plain) if server.scheme == "https" else plain
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


_UNVERIFIED = ssl.create_default_context()
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


def stop(server: Server) -> None:
    if server.proc and server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def drive(server: Server, connections: int, duration: float, close: bool) -> None:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    processes = [root, *root.children(recursive=True)]
    cpu_before = _cpu_seconds(processes)
    out = subprocess.run(
        [*PIN_LOAD, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency",
         *(["-H", "Connection: close"] if close else []),
         f"{server.scheme}://127.0.0.1:{server.port}/"], capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(processes) - cpu_before
    answered = int(re.search(r"(\d+) requests in", out).group(1))
    server.cpu_us.append(cpu / max(answered, 1) * 1e6)
    server.rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
    server.p99_ms.append(_millis(re.search(r"99%\s+([\d.]+\w+)", out).group(1)))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    server.errors.append(sum(map(int, errors.groups())) if errors else 0)
    if non2xx:
        server.errors[-1] += int(non2xx.group(1))


def wrk_parameters(connections: int, duration: float, close: bool) -> str:
    """The load as wrk's own flags, for the report and the saved results alike."""
    return (f"wrk -t1 -c{connections} -d{duration:g}s"
            + (" -H 'Connection: close'" if close else ""))


def saved_run(group: str, baseline: str, wrk: str, rounds: int,
              servers: list[Server]) -> dict[str, object]:
    """A run as `--save` writes it (and benchmarks/chart.py reads it): what was run,
    where and when, and every round's figures, so a chart shows the spread."""
    return {
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "hybrid_build": build().describe(),
        "group": group,
        "baseline": baseline,
        "wrk": wrk,
        "rounds": rounds,
        "servers": [{"name": server.name, "rps": server.rps, "p99_ms": server.p99_ms,
                     "cpu_us": server.cpu_us, "errors": server.errors} for server in servers],
    }


def save(path: Path, run: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2) + "\n")


def _millis(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--group", choices=sorted(GROUPS), required=True)
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--duration", type=float, default=5.0)
    options.add_argument("--connections", type=int, default=64)
    options.add_argument("--close", action="store_true",
                         help="a new connection for every request (Connection: close)")
    options.add_argument("--pin", action="store_true",
                         help="run the servers on the last CPU and wrk on the first (taskset)")
    options.add_argument("--tree", type=Path,
                         help="also run each hybrid server from this checkout of another "
                              "commit (its ratio to this checkout's is the change's cost)")
    options.add_argument("--only", action="append", metavar="NAME",
                         help="drive only the servers named so (repeatable; with --tree, each "
                              "hybrid one with its twin): more rounds in the same minutes")
    options.add_argument("--both-builds", action="store_true",
                         help="also run each hybrid server on the interpreted build "
                              "(HYBRID_NO_EXTENSIONS=1), when this install is compiled")
    options.add_argument("--save", type=Path, metavar="PATH",
                         help="also write every round's figures as JSON (benchmarks/chart.py "
                              "draws them)")
    args = options.parse_args()
    if args.pin:
        cpus = os.cpu_count() or 1
        if cpus < 2 or not shutil.which("taskset"):
            sys.exit("--pin needs two CPUs and taskset (util-linux)")
        PIN_SERVER.extend(["taskset", "-c", str(cpus - 1)])
        PIN_LOAD.extend(["taskset", "-c", "0"])
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    baseline, servers = GROUPS[args.group]
    if args.only:
        unknown = set(args.only) - {server.name for server in servers}
        if unknown:
            sys.exit(f"--only: no server named {', '.join(sorted(unknown))} in --group "
                     f"{args.group}")
        servers = [server for server in servers if server.name in args.only]
    certificates = tempfile.TemporaryDirectory()
    if any(server.scheme == "https" for server in servers):
        make_certificate(Path(certificates.name))
    if args.tree:
        servers = [*servers, *(from_tree(s, args.tree.resolve()) for s in servers
                               if s.name.startswith("hybrid"))]
    if args.both_builds:
        servers = [*servers, *(interpreted(s) for s in servers if s.name.startswith("hybrid"))]
    running = [s for s in servers if start(s)]
    try:
        for round_number in range(args.rounds):
            for server in in_turn(running, round_number):
                drive(server, args.connections, args.duration, args.close)
    finally:
        for server in running:
            stop(server)
    base = next((s for s in running if s.name == baseline), None)
    base_rps = statistics.median(base.rps) if base else None
    wrk = wrk_parameters(args.connections, args.duration, args.close)
    if args.save:
        save(args.save, saved_run(args.group, baseline, wrk, args.rounds, running))
    print(f"group {args.group}: {wrk}, "
          f"{args.rounds} interleaved rounds, medians; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus" + (", servers and wrk pinned to a core each" if args.pin else "")
          + f"; hybrid's build: {build().describe()}")
    print("Each cell: the median, then the min-max over the rounds.")
    print(f"| server | requests/s | p99 ms | vs {baseline} | CPU us/request | errors |")
    print("|---|---|---|---|---|---|")
    for server in running:
        rps = statistics.median(server.rps)
        ratio = "-"
        if base is not None and base_rps:
            # Per round, against the baseline's run in the same round.
            ratios = [a / b for a, b in zip(server.rps, base.rps)]
            ratio = f"{rps / base_rps:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"| {server.name} | {rps:,.0f} ({min(server.rps):,.0f}-{max(server.rps):,.0f}) "
              f"| {statistics.median(server.p99_ms):.2f} ({min(server.p99_ms):.2f}-"
              f"{max(server.p99_ms):.2f}) | {ratio} | {statistics.median(server.cpu_us):.1f} "
              f"({min(server.cpu_us):.1f}-{max(server.cpu_us):.1f}) | {sum(server.errors)} |")
    by_name = {server.name: server for server in running}
    for server in running:
        twin = by_name.get(f"{server.name} @ {args.tree.resolve().name}") if args.tree else None
        if twin is not None:
            ratios = [a / b for a, b in zip(server.rps, twin.rps)]
            cpu = [a / b for a, b in zip(server.cpu_us, twin.cpu_us)]
            print(f"{server.name} / {twin.name}: {statistics.median(ratios):.3f}x requests/s "
                  f"(per-round min-max {min(ratios):.3f}-{max(ratios):.3f}), "
                  f"{statistics.median(cpu):.3f}x CPU per request ({min(cpu):.3f}-{max(cpu):.3f})")


if __name__ == "__main__":
    main()
