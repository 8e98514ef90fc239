"""The `sync` worker: one connection at a time, blocking I/O, one request per
connection (it answers with `Connection: close`, as gunicorn's does: a
kept-alive idle client would hold the only thread).

recv -> hybrid.protocol parser -> hybrid.wsgi -> send. While it waits for
a request head the worker beats its heartbeat, so a slow client is not
mistaken for a hung app; the whole head must arrive within --header-timeout
(a client dripping header bytes cannot hold the worker; on TLS the handshake
comes first, within the same time). From then on the
request is the app's, and --timeout bounds it as a whole, as in gunicorn.

Under load the next client is already queued: after each connection the
worker accepts again at once (ACCEPT_BURST at most in a row, so a second
listener and signals are looked at), and waits on the listeners only when
none is there: one `epoll_wait` per burst, not per connection.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time
from types import FrameType

from hybrid import logs
from hybrid.heartbeat import HEARTBEAT_INTERVAL
from hybrid.logs import error_log as log
from hybrid.protocol import ProtocolError, Request, RequestParser, error_body, error_response
from hybrid.addresses import server_address
from hybrid.workers.accept import Acceptor
from hybrid.workers.base import Worker
from hybrid.workers.blocking import Connection, send_all, time_out
from hybrid.workers.wsgi_runner import RequestRunner, failed_body

ACCEPT_BURST = 64


class SyncWorker(Worker):
    """Serves WSGI, one connection at a time."""

    keeps_alive = False

    def run(self) -> None:
        self.limits = self.cfg.request_limits()
        self._serving: Connection | None = None  # the connection whose request runs
        self._runner = RequestRunner(self.app, self.cfg, self.access_log, self.proxy,
                                     multithread=False, hooked=self.request_hooked)
        signal.signal(signal.SIGALRM, self._on_request_timeout)
        self.settle_heap()
        self.report_ready()
        acceptor = Acceptor()
        selector = selectors.DefaultSelector()
        selector.register(self.wakeup_fd, selectors.EVENT_READ)
        for listener in self.listeners:
            listener.setblocking(False)
        self._servers = {listener: server_address(listener) for listener in self.listeners}
        listening = False
        orphan_check_at = 0.0
        while self.alive:
            self.tend()
            now = time.monotonic()
            if now >= orphan_check_at:  # (a system call: not once per connection)
                orphan_check_at = now + HEARTBEAT_INTERVAL
                if self.parent_changed():
                    break
            resting = acceptor.resting(now)
            if listening == resting:  # watch the listeners only while accepting
                listening = not resting
                for listener in self.listeners:
                    if listening:
                        selector.register(listener, selectors.EVENT_READ)
                    else:
                        selector.unregister(listener)
            wait = min(HEARTBEAT_INTERVAL, acceptor.rest_until - now) if resting \
                else HEARTBEAT_INTERVAL
            for key, _ in selector.select(wait):
                if key.fileobj == self.wakeup_fd:
                    self.drain_wakeups()
                    continue
                if not self.alive:
                    break
                ready = key.fileobj
                assert isinstance(ready, socket.socket)  # (the rest are listeners)
                self._serve_queued(acceptor, ready)
        selector.close()

    def _serve_queued(self, acceptor: Acceptor, listener: socket.socket) -> None:
        """Accept and serve the connections queued on `listener`, ACCEPT_BURST at most."""
        for _ in range(ACCEPT_BURST):
            accepted = acceptor.accept(listener)
            if accepted is None:
                return
            sock, peer = accepted
            self.serve(Connection(sock, peer, self._servers[listener], RequestParser(self.limits),
                                  self.stats, self.cfg.timeout or None, self.tls,
                                  self.expects_proxy_header(peer)))
            self.tend()
            if not self.alive:
                return

    def _on_request_timeout(self, signum: int, frame: FrameType | None) -> None:
        """--request-timeout passed: a call that runs on this worker's only thread
        cannot be stopped, so the worker is replaced (uWSGI's harakiri)."""
        log.error("Worker %d: %s has run for %g s, over --request-timeout: answered 504 "
                  "(or cut); replacing this worker", self.pid, self.current_request,
                  self.cfg.request_timeout)
        if self._serving is not None:
            time_out(self._serving)
        self.ask_for_replacement("request-timeout")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(1)  # (not an exception: the app could catch it and carry on)

    def serve(self, conn: Connection) -> None:
        """Read one request from `conn`, answer it and close the connection."""
        self.stats.set_gauges(in_flight=0, connections=1)
        try:
            deadline = time.monotonic() + self.cfg.header_timeout
            if not conn.complete_opening(deadline, self.notify):
                return
            event = conn.next_event(deadline, self.notify)
            if isinstance(event, Request) and (failure := failed_body(conn.pending)) is not None:
                event = failure  # (its body failed before the app could run)
            if isinstance(event, Request):
                started = time.monotonic()  # from its head, as the other classes count
                self.stats.set_gauges(in_flight=1, connections=1)
                self.current_request = event.summary()
                self._serving = conn
                if self.cfg.request_timeout:
                    signal.setitimer(signal.ITIMER_REAL, self.cfg.request_timeout)
                try:
                    self._runner.respond(conn, event, self.keeps_alive, started)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    self._serving = None
                self.request_served()
            elif isinstance(event, ProtocolError):
                logs.rejected(conn.client[0], event, logs.HTTP2_ON_ASGI)
                self.stats.refused(event.status, len(error_body(event.status, event.detail)))
                send_all(conn.sock, error_response(event.status, event.detail),
                         conn.write_timeout)
        except OSError as exc:
            log.debug("Connection from %s failed: %s", conn.client[0], exc)
        finally:
            self.current_request = ""
            conn.close()
            self.stats.set_gauges(in_flight=0, connections=0)
