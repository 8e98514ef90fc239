"""How evenly new connections spread over the workers, with and without
--reuse-port (issue 14).

For each worker class, hybrid runs with -w 4 on one shared listening socket,
and again with --reuse-port (a socket per worker, the kernel choosing);
round after round (the order alternating), a client opens `--clients`
connections at once, again and again for `--duration` seconds, one request
each (`Connection: close`), and counts which worker (pid) answered. The
report: each worker's share of the answers (sorted), the busiest worker's
share over the idlest's, and the coefficient of variation, as medians over
the rounds with their min-max.

    python benchmarks/spread.py [--rounds 5] [--duration 3] [--classes sync,thread,asgi]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(worker_class: str, reuse_port: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "hybrid", "run", "benchmarks.apps:wsgi_pid", "-k", worker_class,
            "-w", "4", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    if reuse_port:
        argv.append("--reuse-port")
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    seen: set[str] = set()
    while len(seen) < 4 and time.monotonic() < deadline:  # every worker up
        try:
            seen.add(asyncio.run(_one("127.0.0.1", port)))
        except OSError:
            time.sleep(0.1)
    if len(seen) < 4:
        os.killpg(proc.pid, signal.SIGKILL)
        sys.exit(f"{worker_class}: 4 workers did not answer")
    return proc, port


async def _one(host: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(REQUEST)
    raw = await reader.read()
    writer.close()
    return raw.rpartition(b"\r\n\r\n")[2].decode()


async def _drive(port: int, clients: int, duration: float) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    end = time.monotonic() + duration

    async def client() -> None:
        while time.monotonic() < end:
            try:
                counts[await _one("127.0.0.1", port)] += 1
            except OSError:
                counts["error"] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return counts


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--duration", type=float, default=3.0)
    options.add_argument("--clients", type=int, default=32)
    options.add_argument("--classes", default="sync,thread,asgi")
    args = options.parse_args()
    print(f"-w 4, {args.clients} clients, a new connection per request, {args.rounds} rounds "
          f"of {args.duration:g} s; {os.cpu_count()} cpus; medians (min-max over the rounds)")
    print("| class | listening | worker shares, % (sorted) | busiest / idlest | CV | req/s |")
    print("|---|---|---|---|---|---|")
    for worker_class in args.classes.split(","):
        results: dict[bool, list[tuple[list[float], float, float, float]]] = {False: [], True: []}
        servers = {mode: start(worker_class, mode) for mode in (False, True)}
        try:
            for round_number in range(args.rounds):
                order = (False, True) if round_number % 2 == 0 else (True, False)
                for mode in order:
                    counts = asyncio.run(_drive(servers[mode][1], args.clients, args.duration))
                    answers = [n for pid, n in counts.items() if pid != "error"]
                    answers += [0] * (4 - len(answers))
                    total = sum(answers)
                    shares = sorted((100 * n / total for n in answers), reverse=True)
                    cv = statistics.pstdev(answers) / statistics.mean(answers)
                    results[mode].append((shares, shares[0] / max(shares[-1], 1e-9), cv,
                                          total / args.duration))
        finally:
            for proc, _ in servers.values():
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
        for mode in (False, True):
            rows = results[mode]
            shares = [statistics.median(r[0][i] for r in rows) for i in range(4)]
            ratio = [r[1] for r in rows]
            cv = [r[2] for r in rows]
            rate = [r[3] for r in rows]
            print(f"| {worker_class} | {'a socket per worker (--reuse-port)' if mode else 'one shared socket'} "
                  f"| {' / '.join(f'{s:.0f}' for s in shares)} "
                  f"| {statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}) "
                  f"| {statistics.median(cv):.2f} ({min(cv):.2f}-{max(cv):.2f}) "
                  f"| {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) |")


if __name__ == "__main__":
    main()
