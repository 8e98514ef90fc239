"""Microbenchmark: the HTTP/1.1 core against bare httptools callbacks.

Both sides parse the same stream of typical keep-alive requests (a request
line, 10 header fields, a 16-byte JSON body), one request per feed as a
socket would deliver them. The bare side is the least any server built on
httptools must do: collect the target, the header pairs and the body. The
core also finds message boundaries, lower-cases names, strips values,
checks limits and the RFC rules, and queues events.

Rounds alternate between the two so machine noise hits both; the report is
the median time per request of each and the median of the per-round ratios.

    python benchmarks/parser_bench.py [--requests 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httptools

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hybrid.protocol import RequestParser  # noqa: E402

REQUEST = (
    b"POST /api/items?id=42 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Accept: */*\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Connection: keep-alive\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 16\r\n"
    b"X-Request-Id: 7f3c2a9e\r\n"
    b"Cookie: session=abc123\r\n"
    b"\r\n"
    b'{"key": "value"}'
)


class BareCallbacks:
    """What any httptools-based server does at the least."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = 0

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        pass

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done += 1


def run_bare(count: int) -> float:
    callbacks = BareCallbacks()
    parser = httptools.HttpRequestParser(callbacks)
    feed = parser.feed_data
    start = time.perf_counter()
    for _ in range(count):
        feed(REQUEST)
    elapsed = time.perf_counter() - start
    assert callbacks.done == count
    return elapsed


def run_core(count: int) -> float:
    parser = RequestParser()
    feed = parser.feed
    events = 0
    start = time.perf_counter()
    for _ in range(count):
        for _event in feed(REQUEST):
            events += 1
    elapsed = time.perf_counter() - start
    assert events == 3 * count, events  # Request, Data, EndOfMessage
    return elapsed


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=20000)
    options.add_argument("--rounds", type=int, default=15)
    args = options.parse_args()
    run_bare(1000), run_core(1000)  # warm up
    bare, core, ratios = [], [], []
    for _ in range(args.rounds):
        b = run_bare(args.requests)
        c = run_core(args.requests)
        bare.append(b)
        core.append(c)
        ratios.append(c / b)
    per = 1e6 / args.requests
    print(f"requests per round: {args.requests}, rounds: {args.rounds}, python {sys.version.split()[0]}")
    print(f"bare httptools : {statistics.median(bare) * per:6.2f} us/request (median)")
    print(f"hybrid core    : {statistics.median(core) * per:6.2f} us/request (median)")
    print(f"ratio core/bare: {statistics.median(ratios):.2f}x (median of per-round ratios; "
          f"min {min(ratios):.2f}x, max {max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
