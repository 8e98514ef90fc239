"""The HTTP/2 engine spike: `h2` against `ngh2`, each behind the same narrow seam.

Each engine is driven by the same minimal h2c server (uvloop, one process,
prior knowledge, a fixed 2-byte answer per stream), so what differs
between the two lines is the engine and its adapter only: no ASGI, no
app. `h2load` drives each in turn, round after round (the order rotates),
in the two shapes the issue names: 64 connections x 1 stream, and 8
connections x 100 streams. The report is medians with the min-max spread
and the ratio ngh2/h2.

    python benchmarks/h2_engine_spike.py [--rounds 5] [--duration 4]
    python benchmarks/h2_engine_spike.py --serve ngh2 --port 8000   # one server

h2load comes from Debian's nghttp2-client.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Protocol

Headers = list[tuple[bytes, bytes]]
ANSWER_HEADERS: Headers = [(b":status", b"200"), (b"content-type", b"text/plain"),
                           (b"content-length", b"2")]


class Engine(Protocol):
    """The seam: the least a server needs of an HTTP/2 engine. Events come out
    as plain tuples: ("request", stream, headers, ended), ("data", stream,
    data, ended, flow_length), ("reset", stream), ("window", stream)."""

    def start(self) -> None: ...
    def receive(self, data: bytes) -> Iterator[tuple[object, ...]]: ...
    def answer(self, stream: int, headers: Headers, body: bytes) -> None: ...
    def credit(self, stream: int, amount: int) -> None: ...
    def outgoing(self) -> bytes: ...


class H2Engine:
    def __init__(self) -> None:
        import h2.config
        import h2.connection
        import h2.events
        self.events = h2.events
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None))

    def start(self) -> None:
        self.conn.initiate_connection()

    def receive(self, data: bytes) -> Iterator[tuple[object, ...]]:
        ev = self.events
        for event in self.conn.receive_data(data):
            kind = type(event)
            if kind is ev.RequestReceived:
                yield ("request", event.stream_id, event.headers,
                       event.stream_ended is not None)
            elif kind is ev.DataReceived:
                yield ("data", event.stream_id, event.data, event.stream_ended is not None,
                       event.flow_controlled_length)
            elif kind is ev.StreamReset:
                yield ("reset", event.stream_id)
            elif kind is ev.WindowUpdated:
                yield ("window", event.stream_id)

    def answer(self, stream: int, headers: Headers, body: bytes) -> None:
        self.conn.send_headers(stream, headers)
        self.conn.send_data(stream, body, end_stream=True)

    def credit(self, stream: int, amount: int) -> None:
        self.conn.acknowledge_received_data(amount, stream)

    def outgoing(self) -> bytes:
        return self.conn.data_to_send()


class Ngh2Engine:
    def __init__(self) -> None:
        import ngh2
        self.ngh2 = ngh2
        self.conn = ngh2.Connection(ngh2.Role.SERVER,
                                    ngh2.Configuration(auto_window_update=False))

    def start(self) -> None:
        self.conn.initiate_connection()

    def receive(self, data: bytes) -> Iterator[tuple[object, ...]]:
        ng = self.ngh2
        self.conn.receive_data(data)
        for event in self.conn.events():
            kind = type(event)
            if kind is ng.RequestReceived:
                yield ("request", event.stream_id, event.headers, event.end_stream)
            elif kind is ng.DataReceived:
                yield ("data", event.stream_id, event.data, event.end_stream, len(event.data))
            elif kind is ng.StreamReset:
                yield ("reset", event.stream_id)
            elif kind is ng.WindowUpdated:
                yield ("window", event.stream_id)

    def answer(self, stream: int, headers: Headers, body: bytes) -> None:
        self.conn.send_response(stream, headers)
        self.conn.send_data(stream, body, end_stream=True)

    def credit(self, stream: int, amount: int) -> None:
        self.conn.acknowledge_received_data(amount, stream)

    def outgoing(self) -> bytes:
        return self.conn.data_to_send()


ENGINES = {"h2": H2Engine, "ngh2": Ngh2Engine}


class SpikeProtocol(asyncio.Protocol):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.engine.start()
        self.transport.write(self.engine.outgoing())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            self._serve(data)
        except Exception:  # (h2 refuses to answer once the client's GOAWAY came: done)
            self.transport.close()

    def _serve(self, data: bytes) -> None:
        engine = self.engine
        for event in engine.receive(data):
            kind = event[0]
            if kind == "request":
                if event[3]:
                    engine.answer(event[1], ANSWER_HEADERS, b"ok")  # type: ignore[arg-type]
            elif kind == "data":
                engine.credit(event[1], event[4])  # type: ignore[arg-type]
                if event[3]:
                    engine.answer(event[1], ANSWER_HEADERS, b"ok")  # type: ignore[arg-type]
        out = engine.outgoing()
        if out:
            self.transport.write(out)  # type: ignore[attr-defined]


def serve(engine: str, port: int) -> None:
    import uvloop
    uvloop.install()
    loop = asyncio.new_event_loop()
    factory = ENGINES[engine]
    server = loop.run_until_complete(loop.create_server(
        lambda: SpikeProtocol(factory()), "127.0.0.1", port))
    loop.run_until_complete(server.serve_forever())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def h2load(port: int, clients: int, streams: int, duration: int) -> float:
    out = subprocess.run(
        ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(duration),
         "--warm-up-time", "1", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    failed = re.search(r"(\d+) failed", out)
    if failed is None or int(failed.group(1)):
        raise SystemExit(f"h2load saw failures:\n{out}")
    return float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--serve", choices=ENGINES)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    ports = {name: free_port() for name in ENGINES}
    procs = [subprocess.Popen([sys.executable, __file__, "--serve", name,
                               "--port", str(port)]) for name, port in ports.items()]
    time.sleep(1.5)
    shapes = [(64, 1), (8, 100)]
    results: dict[tuple[str, int, int], list[float]] = {}
    try:
        names = list(ENGINES)
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for clients, streams in shapes:
                for name in order:
                    rps = h2load(ports[name], clients, streams, args.duration)
                    results.setdefault((name, clients, streams), []).append(rps)
                    print(f"round {round_ + 1} {name} -c{clients} -m{streams}: {rps:,.0f} req/s",
                          flush=True)
    finally:
        for proc in procs:
            proc.terminate()
    print("\nengine  shape        median req/s   (min-max)")
    for clients, streams in shapes:
        medians = {}
        for name in ENGINES:
            values = results[(name, clients, streams)]
            medians[name] = statistics.median(values)
            print(f"{name:6}  -c{clients} -m{streams:<4} {medians[name]:>12,.0f}   "
                  f"({min(values):,.0f}-{max(values):,.0f})")
        print(f"        ngh2/h2: {medians['ngh2'] / medians['h2']:.2f}x")


if __name__ == "__main__":
    main()
