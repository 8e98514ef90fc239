"""Microbenchmark: the `thread` worker's own cost per request, without the
kernel's reads and writes.

The real worker class serves 64 keep-alive connections from its leader's
request path (`_serve_event`, as the leader calls it for each event it
polls): each round feeds every connection one GET and serves it. The
sockets' reads and writes stay in memory; the epoll set is real (the
re-arming after each request is part of what the class decides), so this
is the figure to set beside `asgi_path_bench.py`'s, which leaves out the
same reads and writes.

    python benchmarks/thread_path_bench.py [--rounds 3000] [--repeats 5] [--app wsgi_plaintext]

`--app` names another WSGI app of `benchmarks/apps.py` (`flask_json`, say).
"""

from __future__ import annotations

import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import path_bench_cli  # noqa: E402
from hybrid.config import Config  # noqa: E402
from hybrid.heartbeat import Heartbeat  # noqa: E402
from hybrid.metrics import Counters  # noqa: E402
from hybrid.protocol import RequestParser  # noqa: E402
from hybrid.workers.thread import Client as _Client, ThreadWorker  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CONNECTIONS = 64


class MemorySocket:
    """A client socket whose reads and writes stay in memory; its descriptor
    is a real one, for the epoll set."""

    family = socket.AF_INET

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self.incoming = b""
        self.writes = 0

    def fileno(self) -> int:
        return self._descriptor

    def setblocking(self, flag: bool) -> None:
        pass

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.incoming:
            raise BlockingIOError
        data, self.incoming = self.incoming, b""
        return data

    def send(self, data: bytes) -> int:
        self.writes += 1
        return len(data)

    def close(self) -> None:
        raise AssertionError("a keep-alive connection was closed")


def measure(app: Any, rounds: int, repeats: int) -> list[float]:
    """Microseconds per request, one figure per repeat."""
    worker = ThreadWorker(age=0, ppid=0, listeners=[], cfg=Config(app="benchmarks.apps:x"),
                          heartbeat=Heartbeat(), status=None,  # type: ignore[arg-type]
                          counters=Counters(rows=0), app=app)
    worker.prepare()
    stats = worker.counters.row(1)
    pairs = [socket.socketpair() for _ in range(CONNECTIONS)]
    sockets = []
    for ours, _ in pairs:
        memory = MemorySocket(ours.fileno())
        client = _Client(memory, ("127.0.0.1", 50000), ("127.0.0.1", "8000"),  # type: ignore[arg-type]
                         RequestParser(worker.limits), stats, None, time.monotonic() + 60,
                         None, False)
        worker._clients[client.fd] = client
        worker._epoll.register(client.fd, 0)
        sockets.append(memory)
    figures = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(rounds):
            for memory in sockets:
                memory.incoming = REQUEST
                worker._serve_event(memory.fileno(), select.EPOLLIN, stats, time.monotonic())
        figures.append((time.perf_counter() - started) / (rounds * CONNECTIONS) * 1e6)
    answered = sum(memory.writes for memory in sockets)
    if answered != rounds * repeats * CONNECTIONS:
        raise AssertionError(f"{answered} responses for {rounds * repeats * CONNECTIONS} requests")
    return figures


def main() -> None:
    path_bench_cli.run(__doc__.splitlines()[0], "thread worker path", "wsgi_plaintext",
                       measure)


if __name__ == "__main__":
    main()
