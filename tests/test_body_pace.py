"""--body-timeout is a wait per read; --body-min-rate is a budget for the
whole body (hybrid.protocol.pace), on every class, and only the client's
slowness counts against it."""

from __future__ import annotations

import socket
import time

import pytest

from hybrid.protocol import BodyPace
from tests.conftest import APP_FOR_INTERFACE, read_until_closed, split_response

# Every class with the app it serves natively, and asgi with the WSGI app (the bridge).
SERVINGS = [("sync", "wsgi"), ("thread", "wsgi"), ("asgi", "asgi"), ("asgi", "wsgi")]


def test_without_a_rate_each_wait_gets_the_whole_timeout():
    pace = BodyPace(per_read=1.0, min_rate=0)
    for _ in range(100):
        assert pace.allowance() == 1.0
        pace.waited(0.9, 1)
    assert pace.too_slow() is None


def test_the_first_timeout_of_waiting_is_granted_whatever_the_rate():
    pace = BodyPace(per_read=1.0, min_rate=1000)
    assert pace.allowance() == 1.0
    pace.waited(0.4, 1)
    assert pace.allowance() == pytest.approx(0.6)


def test_past_the_first_timeout_the_wait_ends_where_the_average_drops_below_the_rate():
    pace = BodyPace(per_read=1.0, min_rate=100)
    pace.waited(1.0, 150)  # 150 bytes: enough for 1.5 s of waiting at 100 B/s
    assert pace.allowance() == pytest.approx(0.5)
    pace.waited(0.5, 0)
    assert pace.allowance() == 0.0
    error = pace.too_slow()
    assert error is not None and error.status == 408


def test_a_fast_body_keeps_the_per_read_timeout():
    pace = BodyPace(per_read=1.0, min_rate=100)
    pace.waited(2.0, 1_000_000)
    assert pace.allowance() == 1.0
    assert pace.too_slow() is None


def trickle(port: int, body: bytes, interval: float) -> bytes:
    """POST `body` to /echo a byte every `interval` s; the answer (b"" if cut off)."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head % len(body))
        for byte in body:
            time.sleep(interval)
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # answered and closed meanwhile
        return read_until_closed(sock)


@pytest.mark.parametrize("worker_class, interface", SERVINGS)
def test_a_trickled_body_within_the_per_read_timeout_is_served(start_server, worker_class,
                                                                interface):
    server = start_server(APP_FOR_INTERFACE[interface], "-k", worker_class, "--body-timeout", "1")
    # 8 waits of 0.25 s: 2 s in all, twice --body-timeout, each well within it.
    status, _, body = split_response(trickle(server.port, b"trickled", 0.25))
    assert (status, body) == (200, b"trickled")


@pytest.mark.parametrize("worker_class, interface", SERVINGS)
def test_a_body_slower_than_the_minimum_rate_gets_408(start_server, worker_class, interface):
    server = start_server(APP_FOR_INTERFACE[interface], "-k", worker_class, "--body-timeout", "1",
                          "--body-min-rate", "100")
    status, headers, body = split_response(trickle(server.port, b"x" * 40, 0.25))
    assert status == 408
    assert headers["connection"] == "close"
    assert b"--body-min-rate" in body
