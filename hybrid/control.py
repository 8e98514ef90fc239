"""The arbiter's control endpoint (`--control-bind`): `/livez`, `/readyz`
and `/metrics`, answered by the arbiter itself, so a probe gets its answer
while every worker is busy, booting or draining.

`ControlServer` is a small non-blocking HTTP/1.1 server driven by the
arbiter's loop: the arbiter selects on `read_fds()` / `write_fds()` with it
and calls `handle()` with what is ready. It never runs app code and never
blocks: a request head is parsed by the shared core (`hybrid.protocol`),
with small limits and CLIENT_TIMEOUT seconds to arrive; one answer, then the
connection closes. At most MAX_CLIENTS connections are open at once: a new
one closes the oldest of those still waiting for a head (a probe sends its
head at once, so idle connections cannot starve probes), and out of file
descriptors the listener rests a moment instead of spinning.

What the answers say comes from a `Probe` (the arbiter implements it):
`/metrics` is its text (Prometheus exposition format 0.0.4); `/livez` and
`/readyz` are 200 or 503 with a one-line reason.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from typing import Protocol

from hybrid.logs import error_log as log
from hybrid.protocol import (
    Limits,
    ProtocolError,
    Request,
    RequestParser,
    error_response,
    http_date,
)

RECV_SIZE = 8192
CLIENT_TIMEOUT = 2.0  # to send a whole head (kubelet's probes time out after 1 s)
MAX_CLIENTS = 64
EMFILE_REST = 0.5  # seconds the listener rests when the arbiter is out of descriptors
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_LIMITS = Limits(request_line=1024, fields=32, field_size=1024)


class Probe(Protocol):
    """What the control endpoint reports on."""

    def liveness(self) -> tuple[bool, str]:
        """(alive, reason): the arbiter runs and a worker beats within --timeout."""

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): every configured worker serves, and no stop has begun."""

    def metrics(self) -> str:
        """The metrics, in Prometheus text format."""


class _Client:
    """One connection to the control port: its parser, deadline and answer."""

    __slots__ = ("sock", "parser", "deadline", "output")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.parser = RequestParser(_LIMITS)
        self.deadline = deadline
        self.output = b""  # the answer, while it does not fit in the socket at once


class ControlServer:
    """The control listener and its connections, for the arbiter's loop."""

    def __init__(self, listener: socket.socket, probe: Probe) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.probe = probe
        self._clients: dict[int, _Client] = {}
        self._rest_until = 0.0
        self._routes: dict[bytes, Callable[[], tuple[int, bytes, bytes]]] = {
            b"/livez": lambda: _health(*probe.liveness()),
            b"/readyz": lambda: _health(*probe.readiness()),
            b"/metrics": lambda: (200, METRICS_TYPE, probe.metrics().encode()),
        }

    def read_fds(self) -> list[int]:
        fds = [fd for fd, client in self._clients.items() if not client.output]
        if time.monotonic() >= self._rest_until:
            fds.append(self.listener.fileno())
        return fds

    def write_fds(self) -> list[int]:
        return [fd for fd, client in self._clients.items() if client.output]

    def next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self._clients.values()]
        if self._rest_until > time.monotonic():
            deadlines.append(self._rest_until)
        return min(deadlines, default=None)

    def handle(self, readable: list[int], writable: list[int]) -> None:
        """Accept, read, answer and write what the arbiter's select found ready;
        close connections past their deadline."""
        if self.listener.fileno() in readable:
            self._accept()
        for fd in readable:
            client = self._clients.get(fd)
            if client is not None:
                self._read(client)
        for fd in writable:
            client = self._clients.get(fd)
            if client is not None:
                self._write(client)
        now = time.monotonic()
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._close(client)

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._close(client)
        self.listener.close()

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._rest_until = time.monotonic() + EMFILE_REST
                return  # (or the peer gave up before we took it)
            if len(self._clients) >= MAX_CLIENTS:
                waiting = [c for c in self._clients.values() if not c.output]
                self._close(min(waiting or self._clients.values(), key=lambda c: c.deadline))
            sock.setblocking(False)
            self._clients[sock.fileno()] = _Client(sock, time.monotonic() + CLIENT_TIMEOUT)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        events = client.parser.feed(data) if data else client.parser.feed_eof()
        for event in events:
            if type(event) is Request:
                self._answer(client, self._response(event))
                return
            if isinstance(event, ProtocolError):
                self._answer(client, error_response(event.status, event.detail))
                return
            self._close(client)  # the client closed before a whole head
            return

    def _response(self, request: Request) -> bytes:
        route = self._routes.get(request.path)
        if route is None:
            return error_response(404, "the control endpoint serves /livez, /readyz, /metrics")
        if request.method not in ("GET", "HEAD"):
            return error_response(405, "GET or HEAD", ((b"allow", b"GET, HEAD"),))
        try:
            status, content_type, body = route()
        except Exception:  # a bug of ours, or the arbiter short of a resource: not fatal
            log.exception("The control endpoint failed to answer %s", request.path.decode())
            return error_response(500)
        reason = b"OK" if status == 200 else b"Service Unavailable"
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"cache-control: no-store\r\nconnection: close\r\ndate: %s\r\n\r\n"
                % (status, reason, content_type, len(body), http_date()))
        return head if request.method == "HEAD" else head + body

    def _answer(self, client: _Client, response: bytes) -> None:
        client.output = response
        self._write(client)

    def _write(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.output)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        client.output = client.output[sent:]
        if not client.output:
            self._close(client)

    def _close(self, client: _Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        client.sock.close()
        client.parser.release()


def _health(ok: bool, reason: str) -> tuple[int, bytes, bytes]:
    return (200 if ok else 503), b"text/plain; charset=utf-8", reason.encode() + b"\n"
