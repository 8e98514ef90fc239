"""The `thread` worker: many keep-alive connections per process, a bounded
pool of threads running a WSGI app.

Who owns a connection, and when (one owner at a time):

  main thread   accepts; owns every connection that waits for a request head
                (new, or kept alive between requests) through a selector;
                feeds its bytes to the connection's parser without blocking;
                closes idle and too-slow connections; beats the heartbeat.
                A slowloris client costs a file descriptor, never a thread.
  pool thread   gets a connection whose next request head is complete; runs
                the app, reading the body and writing the response with
                blocking I/O; answers pipelined requests already received;
                then closes the connection or hands it back.

The hand-back deque (plus a byte on a wake-up pipe) and the in-flight table
(under `_lock`) are the only state both sides touch.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from hybrid.logs import error_log as log
from hybrid.protocol import ConnectionClosed, ProtocolError, Request, RequestParser, error_response
from workers.base import HEARTBEAT_INTERVAL, Worker
from workers.blocking import LINGER_SECONDS, RECV_SIZE, Connection, respond

DEFAULT_THREADS = 4
EXPIRY_CHECK_INTERVAL = 0.25

_LISTENER, _SIGNAL, _WAKE = "listener", "signal", "wake"


class _Client(Connection):
    """A connection plus what the main thread needs while it owns it."""

    def __init__(self, sock: socket.socket, addr: object, listener: socket.socket,
                 parser: RequestParser, deadline: float) -> None:
        super().__init__(sock, addr, listener, parser)
        self.deadline = deadline  # when the main thread stops waiting for it
        self.idle = False  # kept alive, no byte of a next request yet
        self.lingering = False  # answered with an error; draining before close
        self.in_pool = False
        self.closed = False  # by a pool thread; the main thread still has to forget it


class ThreadWorker(Worker):
    """Serves WSGI on a thread pool, with keep-alive and pipelining."""

    def run(self) -> None:
        cfg = self.cfg
        self.limits = cfg.request_limits()
        self.threads = cfg.threads or DEFAULT_THREADS
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="hybrid-request")
        self._lock = threading.Lock()
        self._in_flight: dict[_Client, tuple[float, str]] = {}  # under _lock
        self._handed_back: deque[_Client] = deque()  # appended by pool threads
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._clients: set[_Client] = set()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.wakeup_fd, selectors.EVENT_READ, _SIGNAL)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._accepting = False
        self._pace_accepting()
        next_expiry = 0.0
        try:
            while not self.parent_changed():
                if not self.alive:
                    self._stop_accepting_and_close_idle()
                    if not self._clients:
                        break
                self._beat()
                for key, _ in self._selector.select(HEARTBEAT_INTERVAL / 2):
                    if key.data is _LISTENER:
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                    elif key.data is _SIGNAL:
                        self.drain_wakeups()
                    elif key.data is _WAKE:
                        self._drain_wake_pipe()
                    else:
                        self._on_readable(key.data)
                self._take_back()
                now = time.monotonic()
                if now >= next_expiry:
                    self._expire(now)
                    next_expiry = now + EXPIRY_CHECK_INTERVAL
                self._pace_accepting()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def describe_work(self) -> str:
        with self._lock:
            return ", ".join(what for _, what in self._in_flight.values())

    # --- main thread ---------------------------------------------------------------

    def _beat(self) -> None:
        """Heartbeat: 'now' while a thread is free; once all are busy, the time the
        last one got its request, so threads all stuck past --timeout get the
        worker replaced even though this loop still turns."""
        with self._lock:
            busy = [started for started, _ in self._in_flight.values()]
        stamp = max(busy) if len(busy) >= self.threads else None
        self.tend(stamp)

    def _pace_accepting(self) -> None:
        """Listen while alive and below --worker-connections; other workers take the rest."""
        should = self.alive and len(self._clients) < self.cfg.worker_connections
        if should == self._accepting:
            return
        for listener in self.listeners:
            if should:
                listener.setblocking(False)
                self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
            else:
                self._selector.unregister(listener)
        self._accepting = should

    def _accept(self, listener: socket.socket) -> None:
        while len(self._clients) < self.cfg.worker_connections:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("Worker %d cannot accept more connections: %s", self.pid,
                                exc.strerror)
                    return
                raise
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, addr, listener, RequestParser(self.limits),
                             time.monotonic() + self.cfg.header_timeout)
            self._clients.add(client)
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _on_readable(self, client: _Client) -> None:
        try:
            data = client.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if client.lingering:
            if not data:
                self._close(client)
            return
        if client.idle and data:
            client.idle = False  # a new request begins: its head has --header-timeout
            client.deadline = time.monotonic() + self.cfg.header_timeout
        client.pending.extend(client.parser.feed(data) if data else client.parser.feed_eof())
        self._dispatch(client)

    def _dispatch(self, client: _Client) -> None:
        """Act on what the parser has: a request goes to the pool; errors are answered."""
        if not client.pending:
            return
        event = client.pending[0]
        if isinstance(event, Request):
            self._selector.unregister(client.sock)
            client.in_pool = True
            self._pool.submit(self._serve, client)
        elif isinstance(event, ProtocolError):
            log.debug("Rejected request from %s: %d %s", client.client[0], event.status,
                      event.detail)
            self._answer_and_linger(client, error_response(event.status, event.detail))
        elif isinstance(event, ConnectionClosed):
            self._close(client)

    def _answer_and_linger(self, client: _Client, response: bytes) -> None:
        """Send a short error answer, then read and drop input until the client closes:
        closing with unread input would send RST and could destroy the answer."""
        client.pending.clear()
        try:
            client.sock.send(response)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(client)
            return
        client.lingering = True
        client.deadline = time.monotonic() + LINGER_SECONDS

    def _take_back(self) -> None:
        while self._handed_back:
            client = self._handed_back.popleft()
            client.in_pool = False
            if client.closed:
                self._clients.discard(client)
                continue
            if not self.alive:
                self._close(client)
                continue
            client.sock.setblocking(False)
            client.idle = not client.parser.in_message
            client.deadline = time.monotonic() + (
                self.cfg.keep_alive if client.idle else self.cfg.header_timeout)
            self._selector.register(client.sock, selectors.EVENT_READ, client)
            self._dispatch(client)

    def _expire(self, now: float) -> None:
        for client in [c for c in self._clients if not c.in_pool and c.deadline <= now]:
            if client.lingering or client.idle:
                self._close(client)  # keep-alive timeout, or the drain is over
            else:
                log.debug("Client %s too slow to send its request head", client.client[0])
                self._answer_and_linger(client, error_response(
                    408, "the client was too slow to send the request"))

    def _stop_accepting_and_close_idle(self) -> None:
        self._pace_accepting()
        for client in [c for c in self._clients if not c.in_pool]:
            self._close(client)

    def _close(self, client: _Client) -> None:
        if not client.in_pool:
            try:
                self._selector.unregister(client.sock)
            except (KeyError, ValueError):
                pass
        self._clients.discard(client)
        client.sock.close()

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    # --- pool threads --------------------------------------------------------------

    def _serve(self, client: _Client) -> None:
        """Answer the requests `client` has ready, then close it or hand it back."""
        keep = False
        try:
            keep = self._answer_ready_requests(client)
        except Exception:
            log.exception("Error serving a connection from %s", client.client[0])
        finally:
            with self._lock:
                self._in_flight.pop(client, None)
        if not keep:
            client.close()
            client.closed = True
        self._handed_back.append(client)
        try:
            os.write(self._wake_w, b".")
        except BlockingIOError:
            pass  # the pipe is full: the main thread is awake anyway

    def _answer_ready_requests(self, client: _Client) -> bool:
        """Answer pipelined requests in order; True if the connection may stay open."""
        cfg = self.cfg
        while True:
            request = client.pending.popleft()
            assert isinstance(request, Request)
            started = time.perf_counter()
            with self._lock:
                self._in_flight[client] = (time.monotonic(),
                                           f"{request.method} {request.target.decode('latin-1')}")
            outcome = respond(self.app, client, request, cfg=cfg, access_log=self.access_log,
                              keep_alive=request.keep_alive and self.alive, multithread=True,
                              started=started)
            if not outcome.keep_alive or not self.alive:
                return False
            if not client.body_done:
                if request.expect_continue:
                    return False  # the client may or may not send the body now
                if not client.skip_body(cfg.body_timeout):
                    return False
            if request.upgrade:
                client.pending.extend(client.parser.resume())  # WSGI does not switch
            if not (client.pending and isinstance(client.pending[0], Request)):
                return True
