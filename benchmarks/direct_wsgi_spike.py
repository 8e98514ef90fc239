"""A spike, not hybrid's server: a WSGI app on an event loop with the request
built once and one hop back, to measure what the bridge's decision is worth.

issue 33's bridge floor (0.6x granian's WSGI mode) is not met: the bridge
builds each request twice (an ASGI scope, then an environ from it) and
crosses threads through an exchange of messages and generators. This is the
shortest path the same pieces allow: uvloop reads, hybrid's core parses,
`build_environ` makes the environ from the `Request` as the thread class
does, a pool of threads runs `wsgi.run` with the thread class's
`FramingResponder`, whose bytes go back to the loop in one
`call_soon_threadsafe`. It serves only what the benchmark sends (requests
without a body, answered in order one at a time per connection): no
backpressure, no bodies, no errors, no pipelining. Its figures are an upper
bound for a direct path, not a server.

    python benchmarks/direct_wsgi_spike.py --port 8000 [--threads 4] [APP]

hybrid now has such a path (workers/asgi/wsgi_cycle.py); the spike stays as
the measure of what its bodies, errors, backpressure and bookkeeping cost.
`benchmarks/load.py --group bridge-spike` runs it beside that path, the
bridge as an ASGI app, and granian.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (benchmarks.apps)

from hybrid import wsgi, wsgi_environ, wsgi_input  # noqa: E402
from hybrid.protocol import Request, RequestParser  # noqa: E402
from hybrid.protocol.persistence import may_persist  # noqa: E402
from hybrid.workers.wsgi_runner import FramingResponder  # noqa: E402


def _serve_jobs(jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
    while True:
        jobs.get()()


class _Protocol(asyncio.Protocol):
    def __init__(self, app: Any, jobs: queue.SimpleQueue[Callable[[], None]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.jobs, self.loop = app, jobs, loop
        self.parser = RequestParser()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.server = (str(host), str(port))
        host, port = transport.get_extra_info("peername")[:2]
        self.client = (str(host), str(port))

    def data_received(self, data: bytes) -> None:
        for event in self.parser.feed(data):
            if type(event) is Request:
                self.jobs.put(self._job(event))

    def _job(self, request: Request) -> Callable[[], None]:
        environ = wsgi_environ.build_environ(request, wsgi_input.EmptyInput(), self.server,
                                             self.client, multithread=True)
        out: list[bytes] = []
        responder = FramingResponder(request, out.append, None, may_persist=may_persist,
                                     server_willing=True)

        def job() -> None:
            wsgi.run(self.app, environ, responder)
            self.loop.call_soon_threadsafe(self.transport.write, b"".join(out))
        return job

    def connection_lost(self, exc: BaseException | None) -> None:
        self.parser.release()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("app", nargs="?", default="benchmarks.apps:wsgi_plaintext")
    options.add_argument("--port", type=int, required=True)
    options.add_argument("--threads", type=int, default=4)
    args = options.parse_args()
    module, _, name = args.app.partition(":")
    app = getattr(importlib.import_module(module), name)
    jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    for _ in range(args.threads):
        threading.Thread(target=_serve_jobs, args=(jobs,), daemon=True).start()
    loop = uvloop.new_event_loop()
    loop.run_until_complete(
        loop.create_server(lambda: _Protocol(app, jobs, loop), "127.0.0.1", args.port))
    print(f"direct WSGI spike on 127.0.0.1:{args.port}", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
