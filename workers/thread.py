"""The `thread` worker: many keep-alive connections per process, a bounded
pool of threads running a WSGI app.

Theory of operation. Every pool thread waits on one shared epoll set in
which each socket is armed one-shot: a readiness event goes to exactly one
thread and disarms the socket, so that thread owns the connection until it
re-arms or closes it. The owner reads without blocking and feeds the
parser; a partial head only re-arms the socket (a slowloris client costs a
file descriptor, never a thread). A complete head is served right there:
the app runs, the body is read and the response written with blocking I/O,
pipelined requests already received are answered in order, and the socket
is re-armed for the next request. No request crosses threads, so there is
no hand-off, and no GIL ping-pong, per request.

The main thread beats the heartbeat, handles signals, closes connections
idle past --keep-alive or too slow with their head, and paces accepting
against --worker-connections. At that bound a new client takes the place of
the longest-idle keep-alive connection (nginx's "reusing connections");
accepting stops only while none is idle.

Shared state (`_clients`, `_in_flight`, each client's `busy` flag) is
guarded by `_lock`. A thread works on a client only after setting `busy`
under the lock; an event for a busy client is dropped, because its owner
re-arms the socket when done and level-triggered epoll reports any data
again. The main thread closes a client only by claiming it the same way.
"""

from __future__ import annotations

import select
import socket
import threading
import time

from hybrid import logs
from hybrid.logs import error_log as log
from hybrid.metrics import Row
from hybrid.protocol import (
    LINGER_SECONDS,
    ConnectionClosed,
    ProtocolError,
    Request,
    RequestParser,
    error_body,
    error_response,
)
from hybrid.workers.base import Worker
from hybrid.workers.blocking import RECV_SIZE, Acceptor, Connection, respond

if not hasattr(select, "epoll"):
    raise ImportError("the thread worker class needs Linux (epoll); use -k sync elsewhere")

HOUSEKEEPING_INTERVAL = 0.25
POLL_TIMEOUT = 0.5
ARMED = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT


class _Client(Connection):
    """A connection plus what the threads need to share it."""

    def __init__(self, sock: socket.socket, addr: object, listener: socket.socket,
                 parser: RequestParser, stats: Row, deadline: float) -> None:
        super().__init__(sock, addr, listener, parser, stats)
        self.fd = sock.fileno()
        self.deadline = deadline  # when waiting for this client's next bytes ends
        self.idle = False  # kept alive, no byte of a next request yet
        self.lingering = False  # answered with an error; dropping input until close
        self.busy = False  # a thread owns it (under _lock)
        self.closed = False


class ThreadWorker(Worker):
    """Serves WSGI on a pool of threads, with keep-alive and pipelining."""

    def run(self) -> None:
        cfg = self.cfg
        self.limits = cfg.request_limits()
        self.threads = cfg.threads
        self._epoll = select.epoll()
        self._lock = threading.Lock()
        self._clients: dict[int, _Client] = {}
        self._in_flight: dict[_Client, tuple[float, str]] = {}
        self._listeners = {listener.fileno(): listener for listener in self.listeners}
        self._accepting = False
        self._acceptor = Acceptor()
        self._done = False
        for fd, listener in self._listeners.items():
            listener.setblocking(False)
            self._epoll.register(fd, 0)  # disarmed; _pace_accepting arms it
        self._pace_accepting()
        pool = [threading.Thread(target=self._poll_loop, args=(self.counters.row(1 + n),),
                                 name=f"hybrid-request-{n}", daemon=True)
                for n in range(self.threads)]
        for thread in pool:
            thread.start()
        self.report_ready()
        wakeup = select.poll()
        wakeup.register(self.wakeup_fd, select.POLLIN)
        while not self.parent_changed():
            self._beat()
            if wakeup.poll(HOUSEKEEPING_INTERVAL * 1000):
                self.drain_wakeups()
            if not self.alive and self._stop_when_drained():
                break
            self._expire(time.monotonic())
            self._pace_accepting()
        self._done = True
        for thread in pool:
            thread.join(POLL_TIMEOUT * 2)

    def describe_work(self) -> str:
        with self._lock:
            return ", ".join(what for _, what in self._in_flight.values())

    # --- main thread ---------------------------------------------------------------

    def _beat(self) -> None:
        """Heartbeat: 'now' while a thread is free; once all are busy, the time the
        last one took its request, so threads all stuck past --timeout get the
        worker replaced although this loop still turns."""
        with self._lock:
            starts = [started for started, _ in self._in_flight.values()]
            connections = len(self._clients)
        self.tend(max(starts) if len(starts) >= self.threads else None)
        self.stats.set_gauges(len(starts), connections)

    def _pace_accepting(self) -> None:
        """Listen while alive, below --worker-connections and not resting (out of
        descriptors); other workers take the rest.

        `_accepting` says whether the listeners are armed; it changes only
        under `_lock`, together with the arming, here, in `_accept` and `_close`.
        """
        with self._lock:
            should = (self.alive and not self._acceptor.resting(time.monotonic())
                      and (len(self._clients) < self.cfg.worker_connections
                           or any(c.idle and not c.busy for c in self._clients.values())))
            if should != self._accepting:
                for fd in self._listeners:
                    self._epoll.modify(fd, ARMED if should else 0)
                self._accepting = should

    def _expire(self, now: float) -> None:
        with self._lock:
            due = [c for c in self._clients.values() if not c.busy and c.deadline <= now]
            for client in due:
                client.busy = True  # claimed: events for it are dropped from now on
        for client in due:
            if client.lingering or client.idle:
                self._close(client)  # keep-alive timeout, or the drain is over
            else:
                error = client.parser.timeout_error()
                logs.rejected(client.client[0], error)
                self.stats.refused(error.status, len(error_body(error.status, error.detail)))
                self._answer_and_linger(client, error_response(error.status, error.detail))
                self._release(client)

    def _stop_when_drained(self) -> bool:
        """Graceful stop: stop accepting, close idle connections; True once none is left."""
        self._pace_accepting()
        with self._lock:
            idle = [c for c in self._clients.values() if not c.busy]
            for client in idle:
                client.busy = True
        for client in idle:
            self._close(client)
        with self._lock:
            return not self._clients

    # --- pool threads --------------------------------------------------------------

    def _poll_loop(self, stats: Row) -> None:
        """One pool thread; `stats`: its own row of counters."""
        while not self._done:
            try:
                events = self._epoll.poll(POLL_TIMEOUT, 1)
            except OSError:
                return  # the epoll set was closed at exit
            for fd, _ in events:
                listener = self._listeners.get(fd)
                if listener is not None:
                    try:
                        self._accept(listener, stats)
                    except OSError as exc:
                        log.error("Worker %d failed to accept: %s", self.pid, exc)
                        with self._lock:
                            # The one-shot listener fired and is disarmed: let
                            # _pace_accepting arm it again.
                            self._accepting = False
                    continue
                with self._lock:
                    client = self._clients.get(fd)
                    if client is None or client.busy:
                        continue
                    client.busy = True
                client.stats = stats
                try:
                    self._on_readable(client)
                except Exception:
                    log.exception("Error serving a connection from %s", client.client[0])
                    self._close(client)

    def _accept(self, listener: socket.socket, stats: Row) -> None:
        while True:
            with self._lock:
                full = len(self._clients) >= self.cfg.worker_connections
                if not self.alive or (full and not any(
                        c.idle and not c.busy for c in self._clients.values())):
                    self._accepting = False  # left disarmed; the main thread re-arms it
                    return
            accepted = self._acceptor.accept(listener)
            if accepted is None:
                if self._acceptor.resting(time.monotonic()):
                    with self._lock:
                        self._accepting = False  # left disarmed; the main thread re-arms it
                    return
                break
            sock, peer = accepted
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, peer, listener, RequestParser(self.limits), stats,
                             time.monotonic() + self.cfg.header_timeout)
            with self._lock:
                self._clients[client.fd] = client
                reused = self._claim_longest_idle() if full else None
            self._epoll.register(client.fd, ARMED)
            if reused is not None:
                self._make_room(reused)  # (a moment over the bound, for the new one)
        with self._lock:
            if self._accepting:  # one-shot: arm it again, unless pacing disarmed it
                self._epoll.modify(listener.fileno(), ARMED)

    def _claim_longest_idle(self) -> _Client | None:
        """Under `_lock`: the idle keep-alive connection waiting longest, claimed."""
        idle = [c for c in self._clients.values() if c.idle and not c.busy]
        if not idle:
            return None
        longest = min(idle, key=lambda c: c.deadline)  # the same --keep-alive for each
        longest.busy = True
        return longest

    def _make_room(self, client: _Client) -> None:
        """Close an idle keep-alive connection for a new client, unless bytes of a
        next request came meanwhile (closing then would reset them)."""
        try:
            waiting = client.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            waiting = b""
        except OSError:
            waiting = b""  # the connection failed: closing it is all there is to do
        if waiting:
            # A request is coming: it is served, not closed (nor claimed again).
            client.idle = False
            client.deadline = time.monotonic() + self.cfg.header_timeout
            self._release(client)
            return
        self.connection_reused()
        self._close(client)

    def _on_readable(self, client: _Client) -> None:
        """This thread owns `client` (busy): read, and serve what is complete."""
        try:
            data = client.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            self._release(client)
            return
        except OSError:
            self._close(client)
            return
        if client.lingering:
            if data:
                self._release(client)
            else:
                self._close(client)
            return
        if client.idle and data:
            client.idle = False  # a new request begins: its head has --header-timeout
            client.deadline = time.monotonic() + self.cfg.header_timeout
        client.stats.received(len(data))
        client.pending.extend(client.parser.feed(data) if data else client.parser.feed_eof())
        self._act(client)

    def _act(self, client: _Client) -> None:
        """Serve, answer an error, close, or wait for more: whatever the parser says."""
        event = client.pending[0] if client.pending else None
        if isinstance(event, Request):
            keep = self._serve_ready_requests(client) and self.alive
            client.sock.setblocking(False)
            if not keep:
                self._finish(client)
                return
            client.idle = not client.parser.in_message
            client.deadline = time.monotonic() + (
                self.cfg.keep_alive if client.idle else self.cfg.header_timeout)
            if client.pending:
                self._act(client)  # an error or a close parsed ahead
                return
            self._release(client)
        elif isinstance(event, ProtocolError):
            logs.rejected(client.client[0], event)
            client.stats.refused(event.status, len(error_body(event.status, event.detail)))
            self._answer_and_linger(client, error_response(event.status, event.detail))
            self._release(client)
        elif isinstance(event, ConnectionClosed):
            self._close(client)
        else:
            self._release(client)

    def _serve_ready_requests(self, client: _Client) -> bool:
        """Answer the requests parsed so far, in order; True if the connection stays open."""
        cfg = self.cfg
        while client.pending and isinstance(client.pending[0], Request):
            request = client.pending.popleft()
            assert isinstance(request, Request)
            started = time.perf_counter()
            with self._lock:
                self._in_flight[client] = (time.monotonic(), request.summary())
            try:
                outcome = respond(self.app, client, request, cfg=cfg, access_log=self.access_log,
                                  proxy=self.proxy,
                                  keep_alive=self.keeps_alive and request.keep_alive and self.alive,
                                  multithread=True,
                                  started=started)
            except OSError:
                return False
            finally:
                with self._lock:
                    del self._in_flight[client]
            if not outcome.keep_alive or not self.alive:
                return False
            if not client.body_done:
                # The head promised to persist (Connection.may_persist): skip the rest.
                if not client.skip_body(cfg.body_timeout):
                    return False
            if request.upgrade:
                client.pending.extend(client.parser.resume())  # WSGI does not switch
        return True

    def _answer_and_linger(self, client: _Client, response: bytes) -> None:
        """Send a short error answer, then drop input until the client closes: closing
        with unread input would send RST and could destroy the answer."""
        client.pending.clear()
        try:
            client.sock.setblocking(False)
            client.sock.send(response)
        except OSError:
            pass
        self._linger(client)

    def _finish(self, client: _Client) -> None:
        """The connection is over: close it, lingering if the client may still send."""
        if client.parser.client_may_be_sending:
            self._linger(client)
            self._release(client)
        else:
            self._close(client)

    def _linger(self, client: _Client) -> None:
        try:
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        client.lingering = True
        client.deadline = time.monotonic() + LINGER_SECONDS

    # --- either side, on a client it owns --------------------------------------------

    def _release(self, client: _Client) -> None:
        """Give the client back to the epoll set, armed for its next bytes."""
        with self._lock:
            client.busy = False
        try:
            self._epoll.modify(client.fd, ARMED)
        except OSError:
            self._close(client)

    def _close(self, client: _Client) -> None:
        with self._lock:
            if client.closed:
                return
            client.closed = True
            self._clients.pop(client.fd, None)
            if not self._accepting and self.alive \
                    and not self._acceptor.resting(time.monotonic()):
                # Back below --worker-connections: listen again at once.
                for fd in self._listeners:
                    self._epoll.modify(fd, ARMED)
                self._accepting = True
        try:
            self._epoll.unregister(client.fd)
        except (OSError, ValueError):
            pass
        client.sock.close()
