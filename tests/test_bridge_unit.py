"""`WSGIBridge` called directly, as any ASGI server would call it: what the
pool's threads do when the server cancels a request or stops taking its
response."""

from __future__ import annotations

import asyncio
import threading

from hybrid.bridge import WSGIBridge

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"x")], "client": ("127.0.0.1", 5000),
         "server": ("127.0.0.1", 8000)}


def endless_app(closed: threading.Event):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def pieces():
            try:
                while True:
                    yield b"x" * 65536
            finally:
                closed.set()

        return pieces()

    return app


def receiver():
    """An ASGI receive(): the (empty) body, then nothing until the client leaves."""
    calls = []

    async def receive():
        calls.append(1)
        if len(calls) > 1:
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def test_a_request_cancelled_while_its_thread_is_ahead_lets_the_thread_go():
    closed = threading.Event()
    bridge = WSGIBridge(endless_app(closed), threads=1)

    async def send(message):
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()  # a transport that never drains

    async def main():
        try:
            await asyncio.wait_for(bridge(SCOPE, receiver(), send), 0.5)
        except asyncio.TimeoutError:
            pass

    asyncio.run(main())
    assert closed.wait(10), "the app's iterable was never closed"
    # The one thread is free again: the next request is served.
    second = threading.Event()
    bridge.app = endless_app(second)
    asyncio.run(main())
    assert second.wait(10)
    bridge.close()


def test_a_server_whose_send_fails_stops_the_iterable_within_a_piece():
    closed = threading.Event()
    bridge = WSGIBridge(endless_app(closed), threads=1)
    sent = []

    async def send(message):
        sent.append(message)
        if len(sent) > 3:
            raise OSError("the client left")

    asyncio.run(bridge(SCOPE, receiver(), send))
    assert closed.wait(10)
    assert len(sent) == 4
    bridge.close()
