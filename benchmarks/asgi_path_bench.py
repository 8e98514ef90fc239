"""Microbenchmark: the `asgi` worker's own cost per request, without sockets.

The real worker class and connection Protocol serve 64 keep-alive
connections whose transports live in memory: each round feeds every
connection one GET, then lets the event loop run the request tasks, as
one turn of the loop under `wrk -c64` would. What is left out is the
kernel's share (the read and write system calls, about a third of the
worker's CPU time under load), so this isolates the part our code decides:
parsing, routing, the scope, the task, the app's two sends, the framing.

    python benchmarks/asgi_path_bench.py [--rounds 3000] [--repeats 5] [--app asgi_plaintext]

`--app` names another app of `benchmarks/apps.py` (`starlette_json`, say).

Wall time on a shared machine is noisy; for a repeatable count, run it
under callgrind with two round counts and divide the difference:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/asgi_path_bench.py --rounds 100 --repeats 1
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import path_bench_cli  # noqa: E402
from hybrid.config import Config  # noqa: E402
from hybrid.metrics import Counters  # noqa: E402
from hybrid.workers.asgi.connection import HttpProtocol  # noqa: E402
from hybrid.workers.asgi.worker import AsgiWorker  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CONNECTIONS = 64


class _Socket:
    family = socket.AF_UNIX  # no TCP_NODELAY to set

    def getsockname(self) -> str:
        return "/tmp/bench.sock"

    def fileno(self) -> int:
        return 10  # far from the descriptor limit: libuv accepts


class MemoryTransport:
    """Counts the responses written; never pushes back."""

    def __init__(self) -> None:
        self.writes = 0
        self._extra = {"socket": _Socket(), "peername": ("127.0.0.1", 50000)}

    def get_extra_info(self, name: str) -> Any:
        return self._extra.get(name)

    def write(self, data: bytes) -> None:
        self.writes += 1

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("a keep-alive connection was closed")


async def measure(app: Any, rounds: int, repeats: int) -> list[float]:
    """Microseconds per request, one figure per repeat."""
    worker = AsgiWorker(age=0, ppid=0, listeners=[], cfg=Config(app="benchmarks.apps:x"),
                        heartbeat=None, status=None, counters=Counters(rows=0),  # type: ignore[arg-type]
                        app=app)
    worker.prepare(asyncio.get_running_loop())
    connections = []
    for _ in range(CONNECTIONS):
        protocol = HttpProtocol(worker)
        protocol.connection_made(MemoryTransport())  # type: ignore[arg-type]
        connections.append(protocol)
    figures = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(rounds):
            for protocol in connections:
                protocol.data_received(REQUEST)
            await asyncio.sleep(0)
        figures.append((time.perf_counter() - started) / (rounds * CONNECTIONS) * 1e6)
    answered = sum(p.transport.writes for p in connections)  # type: ignore[union-attr]
    if answered != rounds * repeats * CONNECTIONS:
        raise AssertionError(f"{answered} responses for {rounds * repeats * CONNECTIONS} requests")
    return figures


def main() -> None:
    path_bench_cli.run(__doc__.splitlines()[0], "asgi worker path", "asgi_plaintext",
                       lambda app, rounds, repeats: uvloop.new_event_loop().run_until_complete(
            measure(app, rounds, repeats)))


if __name__ == "__main__":
    main()
