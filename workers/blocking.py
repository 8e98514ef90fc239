"""A blocking client connection, shared by the `sync` and `thread` workers.

`Connection` is one accepted client socket with its parser and the events
parsed but not consumed yet (accepting is `hybrid.workers.accept`'s, running
a WSGI request on it `hybrid.workers.wsgi_runner`'s). The two workers differ
only in how they wait for a request head (sync: a blocking read; thread: a
selector, so a slow client costs a file descriptor, not a thread). What HTTP
decides (100 Continue, skipping an unread body, lingering) is the parser's to
answer; this only moves bytes. `time_out` is --request-timeout's 504.

On TLS (--certfile), `Connection` wraps the accepted socket in an
`ssl.SSLSocket` and does the handshake step by step (`handshake()`), so the
thread worker can drive it from its selector; everything else reads and
writes the SSLSocket as it would the plain one, TLS's want-read and
want-write counting as "would block".

Client sockets stay non-blocking from accept to close. A read or write is
tried first and waited for (poll) only when the kernel has nothing to give
or no room to take: a socket with a Python timeout would poll before every
call, and switching modes costs an ioctl each way, three system calls per
request that the common case does not need.
"""

from __future__ import annotations

import math
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Final

from hybrid import wsgi_input
from hybrid.config import Config
from hybrid.logs import error_log as log
from hybrid.metrics import Row
from hybrid.protocol import persistence
from hybrid.protocol import (
    LINGER_BYTES,
    BodyPace,
    LINGER_SECONDS,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    RequestParser,
    error_response,
)
from hybrid.protocol.proxy_protocol import ProxyHeader, ProxyHeaderError
from hybrid.addresses import client_address
from hybrid.tls_facts import ServerTLS
from hybrid.tls_facts import describe as describe_tls
from hybrid.workers.accept import PARTIAL, PARTIAL_PAUSE, take_proxy_header

RECV_SIZE: Final = 65536
# A non-blocking read or write that cannot go on now (TLS's want-read and
# want-write are no BlockingIOError).
WOULD_BLOCK: Final = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def send_all(sock: socket.socket, data: bytes, timeout: float | None) -> None:
    """Write all of `data` on a non-blocking socket within `timeout` seconds in
    all (None: no limit), as `sendall` on a socket with that timeout would."""
    try:
        sent = sock.send(data)
    except WOULD_BLOCK:
        sent = 0
    if sent < len(data):
        _send_rest(sock, memoryview(data)[sent:], timeout)


def _send_rest(sock: socket.socket, rest: memoryview, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    events = select.POLLOUT
    while rest:
        if not _wait_for(sock, events, deadline):
            raise TimeoutError("timed out writing to the client")
        events = select.POLLOUT
        try:
            rest = rest[sock.send(rest):]
        except ssl.SSLWantReadError:
            events = select.POLLIN  # (TLS: a record from the client must come first)
        except WOULD_BLOCK:
            pass


def recv_within(sock: socket.socket, seconds: float,
                guard: threading.Lock | None = None) -> bytes | None:
    """What a non-blocking socket has to read (b"" at its end), waiting up to
    `seconds` for it; None if nothing came in that time. `guard`, when given,
    is held while reading (a TLS connection's: see `time_out`)."""
    try:
        return _recv_now(sock, guard)
    except ssl.SSLWantWriteError:
        events = select.POLLOUT  # (TLS: our answer to a key update must go first)
    except WOULD_BLOCK:
        events = select.POLLIN
    if not _wait_for(sock, events, time.monotonic() + seconds):
        return None
    try:
        return _recv_now(sock, guard)
    except WOULD_BLOCK:
        return None  # (a readiness that went away: the caller asks again)


def _recv_now(sock: socket.socket, guard: threading.Lock | None) -> bytes:
    # One read takes at most one TLS record (16 KiB) off the socket: nothing
    # decrypted is left behind where polling the socket cannot see it.
    if guard is None:
        return sock.recv(RECV_SIZE)
    with guard:
        return sock.recv(RECV_SIZE)


def _wait_for(sock: socket.socket, events: int, deadline: float | None) -> bool:
    """Wait until `sock` is ready for `events` (or failed); False at `deadline`."""
    poller = select.poll()
    poller.register(sock, events)
    if deadline is None:
        return bool(poller.poll())
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(poller.poll(math.ceil(remaining * 1000)))


def shut_writing(sock: socket.socket) -> None:
    """Our side of the connection is done: on TLS, close_notify first (sent,
    not waited for: a client reading a body that runs to the close can then
    tell its end from a cut), then the TCP FIN."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock.unwrap()
        except (OSError, ValueError):
            pass  # (the client's close_notify is not awaited; a broken connection)
    socket.socket.shutdown(sock, socket.SHUT_WR)  # (SSLSocket's would drop the TLS state)


def bytes_waiting(sock: socket.socket) -> bool:
    """Whether the client has sent anything not read yet (on TLS: any record)."""
    try:
        # socket.socket's own recv: SSLSocket's refuses flags.
        return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:
        return False  # nothing (BlockingIOError), or a failed connection: nothing to serve


class Connection:
    """A client socket, its parser, and the events parsed ahead of use."""

    def __init__(self, sock: socket.socket, addr: object, server: tuple[str, str],
                 parser: RequestParser, stats: Row, write_timeout: float | None,
                 tls: ServerTLS | None = None, proxied: bool = False) -> None:
        sock.setblocking(False)  # for good: see send_all and recv_within
        self.sock = sock
        self.server_tls = tls
        # A PROXY protocol header comes first (--proxy-protocol, from an allowed peer).
        self.awaiting_proxy_header = proxied
        self.handshaking = tls is not None and not proxied  # TLS is due and not done
        self.tls: dict[str, Any] | None = None  # the ASGI TLS extension's facts, once done
        self.scheme = "http"
        self.write_timeout = write_timeout  # bounds writing one piece of a response
        self.parser = parser
        self.stats = stats  # the counters of the thread that serves it now
        self.pending: deque[Event] = deque()
        self.client = client_address(addr)
        self.server = server  # the listener's address (see hybrid.addresses.server_address)
        self.body_done = True  # the last request's body was read to its end
        self.had_body = False  # the last request had a body to read (see body_input)
        self.responding = False  # the answer to the current request has begun
        self.peer_trusted: bool | None = None  # proxy headers from this peer believed
        self.write_lock = threading.Lock()  # held while the answer is written
        self.timed_out = False  # --request-timeout passed: the app's writes fail
        # On TLS, reads hold the write lock too: OpenSSL takes no two calls at once on
        # one connection, and `time_out` may write from another thread.
        self._read_guard = self.write_lock if tls is not None else None

    def read_proxy_header(self) -> int:
        """One try at the PROXY protocol header, without waiting: 0 once it is
        read (then TLS, if on, begins), POLLIN while nothing has come, PARTIAL
        while part of it has; ProxyHeaderError (or OSError) if it is no header.

        (take_proxy_header)"""
        header = take_proxy_header(self.sock)
        if not isinstance(header, ProxyHeader):
            return header
        if header.client is not None:
            self.client = header.client
        self.awaiting_proxy_header = False
        self.handshaking = self.server_tls is not None
        return 0

    def handshake(self) -> int:
        """One step of the TLS handshake: 0 once it is done, else the poll event
        (POLLIN or POLLOUT) it waits for; OSError (ssl.SSLError) if it failed
        (the client may have reset the connection before it was wrapped, too)."""
        assert self.server_tls is not None
        if not isinstance(self.sock, ssl.SSLSocket):
            self.sock = self.server_tls.context.wrap_socket(self.sock, server_side=True,
                                                            do_handshake_on_connect=False)
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            return select.POLLIN
        except ssl.SSLWantWriteError:
            return select.POLLOUT
        self.handshaking = False
        self.tls = describe_tls(self.sock, self.server_tls)
        self.scheme = "https"
        return 0

    def complete_opening(self, deadline: float, on_wait: Callable[[], None]) -> bool:
        """What comes before the first request head, with blocking I/O until
        `deadline` (the head's: it counts against --header-timeout): the PROXY
        protocol header if one is expected, then the TLS handshake if TLS is on.
        False, logged at debug level, if either failed or did not end in time.
        `on_wait` as for next_event."""
        while self.awaiting_proxy_header or self.handshaking:
            if self.awaiting_proxy_header:
                step, what = self.read_proxy_header, "PROXY protocol header"
            else:
                step, what = self.handshake, "TLS handshake"
            try:
                wanted = step()
            except (ProxyHeaderError, OSError) as exc:
                log.debug("Connection from %s closed: %s: %s", self.client[0], what, exc)
                return False
            if not wanted:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.debug("No %s from %s within --header-timeout", what, self.client[0])
                return False
            if wanted == PARTIAL:
                time.sleep(PARTIAL_PAUSE)  # (readable still: poll would not wait)
            else:
                _wait_for(self.sock, wanted, time.monotonic() + min(remaining, 1.0))
            on_wait()
        return True

    def next_event(self, deadline: float, on_wait: Callable[[], None] | None = None) -> Event:
        """The next event, read with blocking I/O, or a 408 if none is complete by `deadline`.

        `on_wait` runs at least every second while waiting (the sync worker
        beats its heartbeat there).
        """
        pending = self.pending
        while not pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.parser.timeout_error()
            data = recv_within(self.sock, min(remaining, 1.0), self._read_guard)
            if on_wait is not None:
                on_wait()
            if data is not None:
                self.stats.received(len(data))
                pending.extend(self.parser.feed(data) if data else self.parser.feed_eof())
        return pending.popleft()

    def body_input(self, cfg: Config) -> wsgi_input.Input:
        """`wsgi.input` for the request just taken from `pending`, read as the
        app asks, at the pace --body-timeout and --body-min-rate allow."""
        self.responding = False
        pending = self.pending
        if pending and type(pending[0]) is EndOfMessage:
            # No body (most requests: its end is parsed with its head): nothing to
            # wait for, pace or skip.
            pending.popleft()
            self.body_done = True
            self.had_body = False
            return wsgi_input.EmptyInput()
        self.body_done = False
        self.had_body = True
        return wsgi_input.InputStream(self.body_receiver(BodyPace(cfg.body_timeout, cfg.body_min_rate)))

    def body_receiver(self, pace: BodyPace) -> Callable[[], bytes]:
        """The `receive()` behind wsgi.input; sends 100 Continue before the first
        read when the parser says one is due; `pace` times its waits."""

        def receive() -> bytes:
            if self.body_done:
                return b""
            # Nothing parsed ahead: the parser is still inside this request, whose
            # body has not begun (any Data would have cancelled a due 100 Continue).
            if not self.pending:
                interim = self.parser.continue_response(self.responding)
                if interim:
                    with self.write_lock:  # (time_out may write from another thread)
                        send_all(self.sock, interim, self.write_timeout)
            started = time.monotonic()
            event = self.next_event(started + pace.allowance())
            pace.waited(time.monotonic() - started, len(event.data) if type(event) is Data else 0)
            if type(event) is ProtocolError and event.status == 408:
                event = pace.too_slow() or event
            if isinstance(event, Data):
                return event.data
            if isinstance(event, EndOfMessage):
                self.body_done = True
                return b""
            self.body_done = True  # nothing more will come; the connection closes
            if isinstance(event, ProtocolError):
                raise wsgi_input.BodyReadError(event.status, event.detail)
            raise wsgi_input.BodyReadError(400, "unexpected end of the request")

        return receive

    def send(self, data: bytes) -> None:
        """Write a piece of the answer (the app's thread), unless --request-timeout passed."""
        with self.write_lock:
            if self.timed_out:
                raise TimeoutError("--request-timeout passed")
            self.responding = True  # no interim response once the final one has begun
            send_all(self.sock, data, self.write_timeout)

    def sendfile(self, file: IO[bytes], count: int | None) -> int:
        """Send `count` bytes of `file` (None: to its end) from where it stands."""
        sock = self.sock
        with self.write_lock:
            if self.timed_out:
                raise TimeoutError("--request-timeout passed")
            sock.settimeout(self.write_timeout)  # socket.sendfile refuses non-blocking sockets
            try:
                return sock.sendfile(file, file.tell(), count)
            finally:
                sock.setblocking(False)

    def may_persist(self, request: Request, server_willing: bool) -> bool:
        """Asked when the answer's head is written: may the connection outlive it?"""
        if self.body_done:
            return persistence.may_persist(request, server_willing)
        unread, rest = persistence.unread_body(self.pending, self.parser.body_rest)
        return persistence.may_persist(request, server_willing, unread, rest)

    def skip_body(self, body_timeout: float) -> bool:
        """Read and drop what the app left of the request body; False if it is too much."""
        skipped = 0
        while not self.body_done:
            event = self.next_event(time.monotonic() + body_timeout)
            if isinstance(event, Data):
                skipped += len(event.data)
                if not persistence.may_keep_skipping(skipped):
                    return False
            elif isinstance(event, EndOfMessage):
                self.body_done = True
            else:
                return False
        return True

    def close(self) -> None:
        """Close; if the client may still be sending, drain briefly first (a
        lingering close: see `RequestParser.client_may_be_sending`)."""
        sock = self.sock
        if self.parser.client_may_be_sending:
            try:
                shut_writing(sock)
                deadline = time.monotonic() + LINGER_SECONDS
                drained = 0
                while drained < LINGER_BYTES:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    data = recv_within(sock, remaining)
                    if not data:
                        break
                    drained += len(data)
            except OSError:
                pass
        elif self.tls is not None:
            try:
                shut_writing(sock)
            except OSError:
                pass
        sock.close()
        self.parser.release()


def time_out(conn: Connection) -> None:
    """--request-timeout passed while the app runs the request on `conn` (in
    another thread, or interrupted by a signal): answer 504 if nothing of the
    answer went out, and shut the connection down both ways, so that the app's
    next read or write fails. Never waits: the app may be writing right now
    (then its answer is cut)."""
    writing = not conn.write_lock.acquire(blocking=False)
    try:
        conn.timed_out = True
        if not writing and not conn.responding:
            try:
                conn.sock.send(error_response(504, "the app took longer than --request-timeout"))
            except OSError:
                pass
        try:
            # (socket.socket's own: SSLSocket's would drop the TLS state under the app)
            socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
        except OSError:
            pass
    finally:
        if not writing:
            conn.write_lock.release()
