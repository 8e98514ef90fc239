"""The `sync` worker: one connection at a time, blocking I/O, one request per
connection (it answers with `Connection: close`, as gunicorn's does: a
kept-alive idle client would hold the only thread).

recv -> hybrid.protocol parser -> hybrid.wsgi -> sendall. While it waits on
a client the worker beats its heartbeat, so a slow client is not mistaken
for a hung app; the whole request head must arrive within --header-timeout
(a client dripping header bytes cannot hold the worker), and each piece of
the body within --body-timeout.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from typing import IO

from hybrid import wsgi
from hybrid.logs import error_log as log
from hybrid.protocol import (
    CONTINUE,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    RequestParser,
    error_response,
)
from workers.base import HEARTBEAT_INTERVAL, Worker

LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
RECV_SIZE = 65536


class SyncWorker(Worker):
    """Serves WSGI, one connection at a time."""

    keeps_alive = False

    def run(self) -> None:
        self.limits = self.cfg.request_limits()
        selector = selectors.DefaultSelector()
        for listener in self.listeners:
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ)
        selector.register(self.wakeup_fd, selectors.EVENT_READ)
        while self.alive and not self.parent_changed():
            self.tend()
            for key, _ in selector.select(HEARTBEAT_INTERVAL):
                if key.fileobj == self.wakeup_fd:
                    self.drain_wakeups()
                    continue
                if not self.alive:
                    break
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                try:
                    conn, addr = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue  # another worker took it, or the client left already
                self.serve(listener, conn, addr)
        selector.close()

    def serve(self, listener: socket.socket, conn: socket.socket, addr: object) -> None:
        """Read one request from `conn`, answer it and close the connection."""
        started = time.perf_counter()
        client = _client_address(addr)
        reader = _Reader(conn, RequestParser(self.limits), self)
        try:
            event = reader.next_event(time.monotonic() + self.cfg.header_timeout, beat=True)
            if isinstance(event, Request):
                self._respond(listener, conn, reader, event, client, started)
            elif isinstance(event, ProtocolError):
                log.debug("Rejected request from %s: %d %s", client[0], event.status, event.detail)
                conn.sendall(error_response(event.status, event.detail))
        except OSError as exc:
            log.debug("Connection from %s failed: %s", client[0], exc)
        finally:
            self.current_request = ""
            _close(conn, unread=reader.parser.in_message)

    def _respond(self, listener: socket.socket, conn: socket.socket, reader: _Reader,
                 request: Request, client: tuple[str, str], started: float) -> None:
        self.current_request = f"{request.method} {request.target.decode('latin-1')}"
        environ = wsgi.build_environ(
            request, wsgi.InputStream(reader.body_receiver(request)),
            server=_server_address(listener), client=client, root_path=self.cfg.root_path)

        write_timeout = self.cfg.timeout or None

        def send(data: bytes) -> None:
            conn.settimeout(write_timeout)  # reads leave shorter timeouts behind
            conn.sendall(data)

        def sendfile(head: bytes, file: IO[bytes], count: int | None) -> int:
            send(head)
            return conn.sendfile(file, file.tell(), count)

        outcome = wsgi.run(self.app, environ, request, send, keep_alive=False, sendfile=sendfile)
        self.access_log.log(request, outcome.status, outcome.bytes_sent, client, started)


class _Reader:
    """Pulls parser events off a blocking socket."""

    def __init__(self, conn: socket.socket, parser: RequestParser, worker: Worker) -> None:
        self.conn = conn
        self.parser = parser
        self.worker = worker
        self.pending: deque[Event] = deque()

    def next_event(self, deadline: float, beat: bool) -> Event:
        """The next event, or a 408 ProtocolError if none is complete by `deadline`.

        `beat`: keep the heartbeat going while waiting (for the head, whose
        wait --header-timeout bounds). Body reads happen inside the app's
        request, which --timeout bounds as a whole, as in gunicorn.
        """
        parser = self.parser
        pending = self.pending
        while not pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ProtocolError(408, "the client was too slow to send the request")
            self.conn.settimeout(min(remaining, HEARTBEAT_INTERVAL))
            try:
                data = self.conn.recv(RECV_SIZE)
            except socket.timeout:
                data = None
            if beat:
                self.worker.notify()
            if data is not None:
                pending.extend(parser.feed(data) if data else parser.feed_eof())
        return pending.popleft()

    def body_receiver(self, request: Request):  # type: ignore[no-untyped-def]
        """The `receive()` behind wsgi.input; sends 100 Continue on the first read."""
        pending_continue = request.expect_continue

        def receive() -> bytes:
            nonlocal pending_continue
            if pending_continue:
                pending_continue = False
                self.conn.sendall(CONTINUE)
            event = self.next_event(time.monotonic() + self.worker.cfg.body_timeout, beat=False)
            if isinstance(event, Data):
                return event.data
            if isinstance(event, EndOfMessage):
                return b""
            status, detail = (event.status, event.detail) if isinstance(event, ProtocolError) \
                else (400, "unexpected end of the request")
            raise wsgi.BodyReadError(status, detail)

        return receive


def _client_address(addr: object) -> tuple[str, str]:
    if isinstance(addr, tuple):
        return str(addr[0]), str(addr[1])
    return "", ""  # UNIX socket peers have no address


def _server_address(listener: socket.socket) -> tuple[str, str]:
    name = listener.getsockname()
    if isinstance(name, tuple):
        return str(name[0]), str(name[1])
    return str(name), ""


def _close(conn: socket.socket, unread: bool) -> None:
    """Close; if the client may still be sending, drain briefly first.

    Closing a socket with unread input makes the kernel send RST, which can
    destroy the response before the client reads it.
    """
    if unread:
        try:
            conn.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                conn.settimeout(remaining)
                data = conn.recv(RECV_SIZE)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass
    conn.close()
