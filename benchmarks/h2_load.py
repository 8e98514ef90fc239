"""HTTP/2 load: hybrid against its peers, with h2load, in the same run.

Every server starts once, one worker each, serving the same plaintext ASGI
app over h2c (HTTP/2 without TLS, by prior knowledge); then, round after
round (the order rotates), h2load drives each in every shape: 1 and 64
connections, with 1 and 100 streams in flight on each. hybrid also serves
the same load over HTTP/1.1 (`h2load --h1`, one request in flight per
connection), so that its users see what HTTP/2 costs them. The report is
the median requests per second over the rounds, the min-max, the ratio to
the baseline (hypercorn) and the CPU time per request of the server's
processes. Only ratios mean something: this machine is noisy.

    python benchmarks/h2_load.py [--rounds 5] [--duration 4]
    python benchmarks/h2_load.py --only "hybrid asgi" --only hypercorn

h2load comes from Debian's nghttp2-client; the peers from
benchmarks/requirements.txt (hypercorn, granian, gunicorn, uvicorn).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import (  # noqa: E402
    BIN,
    Server,
    _cpu_seconds,
    _target,
    from_tree,
    granian,
    gunicorn,
    hybrid,
    in_turn,
    start,
    stop,
)

APP = "asgi_plaintext"
SHAPES = [(1, 1), (1, 100), (64, 1), (64, 100)]  # (connections, streams in flight on each)
BASELINE = "hypercorn"


def hypercorn(app: str) -> list[str]:
    return [str(BIN / "hypercorn"), _target(app), "--bind", "127.0.0.1:{port}",
            "--workers", "1", "--log-level", "warning",
            "--config", str(Path(__file__).parent / "hypercorn_h2.toml")]


@dataclass
class Line:
    """One server under one protocol: what h2load measured, per shape."""

    server: Server
    h1: bool = False
    rps: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    cpu_us: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    failed: int = 0

    @property
    def name(self) -> str:
        return self.server.name + (" (HTTP/1.1)" if self.h1 else "")


SERVERS = [
    Server("hybrid asgi", hybrid(APP, "-k", "asgi", "--http2-cleartext", "prior-knowledge")),
    Server("hypercorn", hypercorn(APP)),
    # (gunicorn takes h2c only from the peers --forwarded-allow-ips names.)
    Server("gunicorn asgi", gunicorn(APP, "-k", "asgi", "--http-protocols", "h2,h1",
                                     "--http2-cleartext", "prior-knowledge",
                                     "--forwarded-allow-ips", "127.0.0.1")),
    Server("granian asgi", granian(APP, "asgi", "--http", "auto")),
    Server("uvicorn", [str(BIN / "uvicorn"), _target(APP), "--host", "127.0.0.1", "--port",
                       "{port}", "--workers", "1", "--log-level", "warning", "--no-access-log",
                       "--http", "zttp", "--http2"]),
]


def answers_h2c(server: Server) -> bool:
    """One request by h2c prior knowledge answered (some peers serve h2c only)."""
    out = subprocess.run(["h2load", "-n", "1", "-c", "1", f"http://127.0.0.1:{server.port}/"],
                         capture_output=True, text=True).stdout
    return "1 succeeded" in out


def drive(line: Line, shape: tuple[int, int], duration: float) -> None:
    server = line.server
    assert server.proc is not None
    connections, streams = shape
    if line.h1 and streams > 1:
        return  # (HTTP/1.1 has one request in flight per connection)
    root = psutil.Process(server.proc.pid)
    processes = [root, *root.children(recursive=True)]
    cpu_before = _cpu_seconds(processes)
    out = subprocess.run(
        ["h2load", *(["--h1"] if line.h1 else []), "-c", str(connections), "-m", str(streams),
         "-t", "1", "-D", f"{duration:g}", "--warm-up-time", "1",
         f"http://127.0.0.1:{server.port}/"], capture_output=True, text=True).stdout
    cpu = _cpu_seconds(processes) - cpu_before
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    if done is None or rate is None:
        line.failed += 1
        print(f"{line.name} -c{connections} -m{streams}: h2load gave no figures:\n{out}",
              file=sys.stderr)
        return
    succeeded = int(done.group(2))
    line.failed += int(done.group(3)) + int(done.group(4))
    line.rps.setdefault(shape, []).append(float(rate.group(1)))
    line.cpu_us.setdefault(shape, []).append(cpu / max(succeeded, 1) * 1e6)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def report(lines: list[Line], rounds: int, duration: float) -> None:
    print(f"h2load -t1 -D{duration:g} per shape, {rounds} interleaved rounds, medians "
          f"(min-max); python {sys.version.split()[0]}, {os.cpu_count()} cpus; h2c by prior "
          "knowledge unless marked HTTP/1.1")
    base = next((line for line in lines if line.name == BASELINE and not line.h1), None)
    for shape in SHAPES:
        connections, streams = shape
        print(f"\n{connections} connection(s) x {streams} stream(s)")
        print(f"| server | requests/s | vs {BASELINE} | CPU us/request | failed |")
        print("|---|---|---|---|---|")
        for line in lines:
            values = line.rps.get(shape)
            if not values:
                continue
            ratio = "-"
            if base is not None and base.rps.get(shape):
                ratios = [a / b for a, b in zip(values, base.rps[shape])]
                ratio = (f"{statistics.median(values) / statistics.median(base.rps[shape]):.2f}x "
                         f"({min(ratios):.2f}-{max(ratios):.2f})")
            cpu = line.cpu_us[shape]
            print(f"| {line.name} | {spread(values)} | {ratio} | "
                  f"{statistics.median(cpu):.1f} ({min(cpu):.1f}-{max(cpu):.1f}) | {line.failed} |")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--duration", type=float, default=4.0)
    options.add_argument("--only", action="append", metavar="NAME",
                         help="drive only the servers named so (repeatable)")
    options.add_argument("--tree", type=Path,
                         help="also run hybrid from this checkout of another commit (git "
                              "worktree add /tmp/old REV): its ratio is the change's cost")
    options.add_argument("--shape", action="append", metavar="CxM",
                         help="only these shapes, e.g. 64x1 (repeatable)")
    args = options.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: apt-get install -y nghttp2-client")
    servers = [s for s in SERVERS if not args.only or s.name in args.only]
    if args.tree:
        servers += [from_tree(s, args.tree.resolve()) for s in servers if s.name == "hybrid asgi"]
    if args.shape:
        SHAPES[:] = [tuple(map(int, shape.split("x"))) for shape in args.shape]
    running = [s for s in servers if start(s, answers_h2c)]
    lines = [Line(s) for s in running]
    lines += [Line(s, h1=True) for s in running if s.name == "hybrid asgi" and not args.tree]
    try:
        for round_number in range(args.rounds):
            for shape in SHAPES:
                for line in in_turn(lines, round_number):
                    drive(line, shape, args.duration)
    finally:
        for server in running:
            stop(server)
    report(lines, args.rounds, args.duration)
    if args.tree:
        compare_trees(lines)


def compare_trees(lines: list[Line]) -> None:
    """This checkout's hybrid against the other tree's, per shape, round by round."""
    ours = next(line for line in lines if line.name == "hybrid asgi")
    theirs = next(line for line in lines if line.name.startswith("hybrid asgi @ "))
    for shape in SHAPES:
        if not ours.rps.get(shape) or not theirs.rps.get(shape):
            continue
        ratios = [a / b for a, b in zip(ours.rps[shape], theirs.rps[shape])]
        cpu = [a / b for a, b in zip(ours.cpu_us[shape], theirs.cpu_us[shape])]
        print(f"{shape[0]}x{shape[1]}: {ours.name} / {theirs.name}: "
              f"{statistics.median(ratios):.3f}x requests/s ({min(ratios):.3f}-"
              f"{max(ratios):.3f}), {statistics.median(cpu):.3f}x CPU per request "
              f"({min(cpu):.3f}-{max(cpu):.3f})")


if __name__ == "__main__":
    main()
