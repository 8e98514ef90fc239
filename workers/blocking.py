"""Blocking-socket plumbing shared by the `sync` and `thread` workers.

`Connection` is one client socket with its parser and the events parsed
but not consumed yet. `respond()` runs one WSGI request on it: environ,
`wsgi.input` fed from the socket, the response written with sendall /
sendfile, the access log line. Both workers call it; they differ only in
how they wait for a request head (sync: a blocking read; thread: a
selector, so a slow client costs a file descriptor, not a thread).

The limits on skipping an unread body and on lingering, and
`may_skip_rest()`, are every worker class's policy (the asgi class too).
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from hybrid import wsgi
from hybrid.logs import AccessLog
from hybrid.proxy import ProxyHeaders
from hybrid.protocol import (
    CONTINUE,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    RequestParser,
)

RECV_SIZE = 65536
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
DRAIN_BYTES = 1 << 16  # unread body a kept-alive connection may skip; more closes it


def may_skip_rest(parser: RequestParser, held_back: bool, buffered: int) -> bool:
    """Whether the rest of a request body the app left unread will be skipped to keep
    the connection (the answer's head must say whether it will close).

    Not when the client holds the body back for a 100 Continue (whether it sends
    it now is its choice), nor when more than DRAIN_BYTES are left (`buffered`:
    parsed but not consumed), or an unknown amount (a chunked body).
    """
    if held_back:
        return False
    remaining = parser.body_remaining
    return remaining is not None and buffered + remaining <= DRAIN_BYTES


class Connection:
    """A client socket, its parser, and the events parsed ahead of use."""

    def __init__(self, sock: socket.socket, addr: object, listener: socket.socket,
                 parser: RequestParser) -> None:
        self.sock = sock
        self.parser = parser
        self.pending: deque[Event] = deque()
        self.client = client_address(addr)
        self.server = server_address(listener)
        self.body_done = True  # the last request's body was read to its end
        self.continue_due = False  # 100 Continue goes out at the first read, if still due
        self.peer_trusted: bool | None = None  # proxy headers from this peer believed

    def next_event(self, deadline: float, on_wait: Callable[[], None] | None = None) -> Event:
        """The next event, read with blocking I/O, or a 408 if none is complete by `deadline`.

        `on_wait` runs at least every second while waiting (the sync worker
        beats its heartbeat there).
        """
        pending = self.pending
        while not pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ProtocolError(408, "the client was too slow to send the request")
            self.sock.settimeout(min(remaining, 1.0))
            try:
                data = self.sock.recv(RECV_SIZE)
            except socket.timeout:
                data = None
            if on_wait is not None:
                on_wait()
            if data is not None:
                pending.extend(self.parser.feed(data) if data else self.parser.feed_eof())
        return pending.popleft()

    def body_receiver(self, request: Request, body_timeout: float) -> Callable[[], bytes]:
        """The `receive()` behind wsgi.input; sends 100 Continue before the first read,
        unless the response has started (`respond()` clears `continue_due` then)."""
        self.continue_due = request.expect_continue
        self.body_done = False

        def receive() -> bytes:
            if self.body_done:
                return b""
            if self.continue_due:
                self.continue_due = False
                self.sock.sendall(CONTINUE)
            event = self.next_event(time.monotonic() + body_timeout)
            if isinstance(event, Data):
                return event.data
            if isinstance(event, EndOfMessage):
                self.body_done = True
                return b""
            self.body_done = True  # nothing more will come; the connection closes
            if isinstance(event, ProtocolError):
                raise wsgi.BodyReadError(event.status, event.detail)
            raise wsgi.BodyReadError(400, "unexpected end of the request")

        return receive

    def may_persist(self) -> bool:
        """Asked when the response head is written: may the connection outlive it?"""
        if self.body_done:
            return True
        buffered = sum(len(event.data) for event in self.pending if type(event) is Data)
        return may_skip_rest(self.parser, self.continue_due, buffered)

    def skip_body(self, body_timeout: float) -> bool:
        """Read and drop what the app left of the request body; False if it is too much."""
        skipped = 0
        while not self.body_done:
            event = self.next_event(time.monotonic() + body_timeout)
            if isinstance(event, Data):
                skipped += len(event.data)
                if skipped > DRAIN_BYTES:
                    return False
            elif isinstance(event, EndOfMessage):
                self.body_done = True
            else:
                return False
        return True

    def close(self) -> None:
        """Close; if the client may still be sending, drain briefly first.

        Closing a socket with unread input makes the kernel send RST, which
        can destroy the response before the client reads it.
        """
        sock = self.sock
        if self.parser.in_message or self.parser.failed:
            try:
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + LINGER_SECONDS
                drained = 0
                while drained < LINGER_BYTES:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    sock.settimeout(remaining)
                    data = sock.recv(RECV_SIZE)
                    if not data:
                        break
                    drained += len(data)
            except OSError:
                pass
        sock.close()


def respond(app: Any, conn: Connection, request: Request, *, cfg: Any, access_log: AccessLog,
            proxy: ProxyHeaders, keep_alive: bool, multithread: bool,
            started: float) -> wsgi.Outcome:
    """Run one WSGI request on a blocking connection and log it."""
    client, scheme = conn.client, "http"
    if request.forwarded:
        if conn.peer_trusted is None:
            conn.peer_trusted = proxy.trusted(conn.client[0])
        client, scheme = proxy.resolve(request.headers, client, scheme, conn.peer_trusted)
    environ = wsgi.build_environ(
        request, wsgi.InputStream(conn.body_receiver(request, cfg.body_timeout)),
        server=conn.server, client=client, url_scheme=scheme, root_path=cfg.root_path,
        multithread=multithread)
    sock = conn.sock
    write_timeout = cfg.timeout or None

    def send(data: bytes) -> None:
        conn.continue_due = False  # no interim response once the final one has begun
        sock.settimeout(write_timeout)  # reads leave shorter timeouts behind
        sock.sendall(data)

    def sendfile(head: bytes, file: IO[bytes], count: int | None) -> int:
        send(head)
        return sock.sendfile(file, file.tell(), count)

    outcome = wsgi.run(app, environ, request, send, keep_alive=keep_alive, sendfile=sendfile,
                       may_persist=conn.may_persist)
    access_log.log(request, outcome.status, outcome.bytes_sent, client, started)
    return outcome


def client_address(addr: object) -> tuple[str, str]:
    if isinstance(addr, tuple):
        return str(addr[0]), str(addr[1])
    return "", ""  # UNIX socket peers have no address


def server_address(listener: socket.socket) -> tuple[str, str]:
    name = listener.getsockname()
    if isinstance(name, tuple):
        return str(name[0]), str(name[1])
    return str(name), ""
