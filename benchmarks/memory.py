"""Memory per open connection, hybrid against its peers, in one run.

Round after round, each server in turn starts afresh (1 worker: memory a
previous round freed would be reused, and hide the cost), and one client
process opens N connections to it and holds them: idle keep-alive
HTTP connections (each has carried one request), or WebSockets (each has
echoed one message, with permessage-deflate or without). The figure is the
growth of the server's resident memory (all its processes) divided by N,
with the connections held; the report is the median over the rounds and the
min-max spread.

    python benchmarks/memory.py [--connections 10000] [--rounds 3] [--kind http|ws|ws-deflate]

Needs twice N file descriptors in all (ulimit -n), and the peers of
benchmarks/requirements.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Server, granian, hybrid, in_turn, start, stop, uvicorn  # noqa: E402

GRACE = 1.0  # seconds for the server to settle once every connection is open
PATIENCE = 5.0  # seconds one connection may take to be answered; then the server is full
BUDGET = 180.0  # seconds the N connections may take to open in all; then the figure is
# what was held by then (uvicorn's WebSockets open more slowly one after the other:
# here 500 in 28 s, the next 500 in 73 s, where hybrid and granian take about 1 s each)
BIG = "20000"  # a --worker-connections above any N this script opens


def servers(kind: str) -> list[Server]:
    found = [
        Server("hybrid asgi", hybrid("asgi_echo", "-k", "asgi", "--worker-connections", BIG,
                                     "--ws-ping-interval", "0")),
        Server("uvicorn", uvicorn("asgi_echo", "--http", "httptools", "--loop", "uvloop",
                                  "--ws", "websockets", "--ws-ping-interval", "0")),
        Server("granian asgi", granian("asgi_echo", "asgi", "--backpressure", BIG)),
    ]
    if kind == "http":
        found.insert(1, Server("hybrid thread", hybrid("wsgi_plaintext", "-k", "thread",
                                                         "--worker-connections", BIG)))
    return found


def resident(server: Server) -> int:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


async def hold_http(port: int, count: int, held: list) -> None:
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        held.append(writer)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)


async def hold_websockets(port: int, count: int, compression: str | None, held: list) -> None:
    import websockets

    for _ in range(count):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/", compression=compression,
                                      max_queue=1, ping_interval=None, open_timeout=PATIENCE)
        held.append(ws)
        await ws.send("hello hybrid " * 50)
        await asyncio.wait_for(ws.recv(), PATIENCE)


async def measure(server: Server, kind: str, count: int) -> float | str:
    """KiB per connection, or what stopped the server from holding `count`."""
    before = resident(server)
    held: list = []
    started = time.monotonic()
    try:
        if kind == "http":
            opening = hold_http(server.port, count, held)
        else:
            opening = hold_websockets(server.port, count,
                                      "deflate" if kind == "ws-deflate" else None, held)
        await asyncio.wait_for(opening, BUDGET)
    except (OSError, asyncio.TimeoutError, Exception) as error:  # noqa: B014 (websockets' own)
        grown = resident(server) - before
        per = f", {grown / max(len(held), 1) / 1024:.1f} KiB each" if held else ""
        return (f"held {len(held)} of {count} in {time.monotonic() - started:.0f} s"
                f"{per} ({type(error).__name__})")
    finally:
        await asyncio.sleep(GRACE)
        grown = resident(server) - before
        for connection in held:  # (a StreamWriter or a websockets connection)
            connection.transport.abort()
        await asyncio.sleep(GRACE)
    return grown / count / 1024


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--connections", type=int, default=10000)
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--kind", choices=["http", "ws", "ws-deflate"], default="http")
    args = options.parse_args()
    candidates = servers(args.kind)
    results: dict[str, list[float | str]] = {s.name: [] for s in candidates}
    for round_number in range(args.rounds):
        for server in in_turn(candidates, round_number):
            if not start(server):
                continue
            try:
                results[server.name].append(asyncio.run(measure(server, args.kind,
                                                                 args.connections)))
                print(f"round {round_number + 1}, {server.name}: {results[server.name][-1]}",
                      file=sys.stderr, flush=True)
            finally:
                stop(server)
            time.sleep(GRACE)
    print(f"{args.kind}: {args.connections} connections held, {args.rounds} rounds, "
          f"resident memory of the server's processes, per connection (median, min-max)")
    print("| server | KiB per connection |")
    print("|---|---|")
    for name, values in results.items():
        if not values:
            continue
        kib = [v for v in values if isinstance(v, float)]
        failures = "; ".join(v for v in values if isinstance(v, str))
        figure = (f"{statistics.median(kib):.1f} ({min(kib):.1f}-{max(kib):.1f})" if kib else "-")
        print(f"| {name} | {figure}{' — ' + failures if failures else ''} |")


if __name__ == "__main__":
    main()
