"""A fresh request's latency at --worker-connections, with N idle connections held.

At the bound, a new connection takes the place of the connection idle
longest. Round after round (the order rotating), each server starts afresh
with `--worker-connections N`, one client opens N keep-alive connections
that each carry one request and then idle, and then sends REQUESTS fresh
requests one after the other, each on a new connection that it keeps (so
every one of them makes room). The figure is the median and the maximum time
from connect to the whole answer; the report gives, per server and N, the
median of those over the rounds, with the min-max spread.

    python benchmarks/room_latency.py [--held 100 10000] [--rounds 5] [--requests 200]
    python benchmarks/room_latency.py --tree /tmp/old   # also hybrid from another checkout

Needs N + REQUESTS descriptors on each side (ulimit -n).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Server, from_tree, hybrid, in_turn, start, stop  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def servers(held: int) -> list[Server]:
    bound = str(held)
    return [
        Server(f"hybrid asgi, {held} held", hybrid("asgi_plaintext", "-k", "asgi",
                                                   "--worker-connections", bound,
                                                   "--keep-alive", "300")),
        Server(f"hybrid thread, {held} held", hybrid("wsgi_plaintext", "-k", "thread",
                                                     "--worker-connections", bound,
                                                     "--keep-alive", "300")),
    ]


def exchange(port: int) -> socket.socket:
    """One request on a new connection, answered whole; the connection is kept."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(REQUEST)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer")
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return sock


def measure(server: Server, held: int, requests: int) -> tuple[float, float]:
    """(median, max) milliseconds of a fresh request that makes room."""
    kept = [exchange(server.port) for _ in range(held)]
    latencies = []
    try:
        for _ in range(requests):
            began = time.perf_counter()
            kept.append(exchange(server.port))
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        for sock in kept:
            sock.close()
    return statistics.median(latencies), max(latencies)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--held", type=int, nargs="+", default=[100, 10000])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--requests", type=int, default=200)
    options.add_argument("--tree", type=Path, help="also hybrid from this checkout")
    args = options.parse_args()
    candidates = [server for held in args.held for server in servers(held)]
    if args.tree:
        candidates += [from_tree(s, args.tree.resolve()) for s in list(candidates)]
    held_by = {s.name: int(s.name.split(", ")[1].split()[0]) for s in candidates}
    results: dict[str, list[tuple[float, float]]] = {s.name: [] for s in candidates}
    for round_number in range(args.rounds):
        for server in in_turn(candidates, round_number):
            if not start(server):
                continue
            try:
                results[server.name].append(measure(server, held_by[server.name], args.requests))
                median, worst = results[server.name][-1]
                print(f"round {round_number + 1}, {server.name}: median {median:.2f} ms, "
                      f"max {worst:.2f} ms", file=sys.stderr, flush=True)
            finally:
                stop(server)
    print(f"{args.requests} fresh requests per round, each making room at the bound; "
          f"{args.rounds} rounds; median over rounds (min-max)")
    print("| server | median ms | max ms |")
    print("|---|---|---|")
    for name, values in results.items():
        if not values:
            continue
        medians = [m for m, _ in values]
        worst = [w for _, w in values]
        print(f"| {name} | {statistics.median(medians):.2f} ({min(medians):.2f}-"
              f"{max(medians):.2f}) | {statistics.median(worst):.2f} ({min(worst):.2f}-"
              f"{max(worst):.2f}) |")


if __name__ == "__main__":
    main()
