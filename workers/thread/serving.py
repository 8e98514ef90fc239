"""The `thread` class's request path: what a pool thread does with an event
(accept on a listener; read, parse and serve on a client), and what either
side does with a client it owns (give it back, close it).

Shared state (`_clients`, each client's `busy` flag, whether the listeners
are armed) is guarded by `_lock`. A thread works on a client only after
setting `busy` under the lock. An event for a busy client mutes it (MUTED)
and is dropped: its owner, done, has epoll look at the socket anew, which
reports whatever came meanwhile; so does an owner whose reads may have left
bytes that no event will report (`unread`). The main thread closes a client
only by claiming it the same way (worker.py).

`Serving` is the base of `ThreadWorker` (worker.py), which adds the loop, the
pool and the main thread's housekeeping: one object, so that the request
path reads the worker's state with no hop between objects.
"""

from __future__ import annotations

import itertools
import select
import socket
import ssl
import threading
import time
from typing import Final

from hybrid import logs
from hybrid.addresses import server_address
from hybrid.logs import error_log as log
from hybrid.metrics import Row
from hybrid.protocol import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    RequestParser,
    error_body,
    error_response,
)
from hybrid.protocol.proxy_protocol import ProxyHeaderError
from hybrid.workers.accept import PARTIAL, Acceptor
from hybrid.workers.base import Worker
from hybrid.workers.blocking import RECV_SIZE, WOULD_BLOCK, bytes_waiting, shut_writing
from hybrid.workers.thread.client import CLOSED, FRESH, GATHERING, IDLE, LINGERING, REQUEST, Client
from hybrid.workers.thread.gather import BodyGathering
from hybrid.workers.wsgi_runner import RequestRunner, failed_body

# A listener, or a TLS client, is armed one-shot: an event disarms it, and its
# owner arms it again when done (OpenSSL may hold what the kernel no longer
# shows, so readiness is looked at anew each time).
ARMED: Final = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT
ARMED_TO_WRITE: Final = select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLONESHOT
# A plain client is watched edge-triggered, for good: each arrival of bytes is
# one event, and a request served needs no system call to re-arm its socket.
WATCHED: Final = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
# A plain client whose event came while a thread owns it: no more events until
# the owner is done (a one-shot with nothing armed: a hang-up is reported once,
# never again and again while the app runs).
MUTED: Final = select.EPOLLONESHOT
_ENDED: Final = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR


class Serving(Worker):
    """Serves WSGI requests on the clients of an epoll set, with keep-alive and
    pipelining, on whichever thread an event reaches."""

    def prepare(self) -> None:
        """What the worker's threads share, set up before any runs (a benchmark
        drives the request path of a prepared worker directly)."""
        cfg = self.cfg
        self.limits = cfg.request_limits()
        self._runner = RequestRunner(self.app, cfg, self.access_log, self.proxy,
                                     multithread=True, hooked=self.request_hooked)
        self._epoll = select.epoll()
        self._lock = threading.Lock()
        self._clients: dict[int, Client] = {}
        # What each thread serves, since when. Changed by one thread at a time per
        # key and read as list(...values()), each atomic under the GIL: no lock.
        self._in_flight: dict[Client, tuple[float, Request]] = {}
        self._listeners = {listener.fileno(): listener for listener in self.listeners}
        self._servers = {listener: server_address(listener) for listener in self.listeners}
        # Whether the listeners are armed; it changes only under `_lock`, together
        # with the arming (ThreadWorker._pace_accepting, `_accept`, `_close`).
        self._accepting = False
        self._acceptor = Acceptor()
        self._gathering = BodyGathering(cfg)

    # --- pool threads: a listener's event ----------------------------------------------

    def _accept_on(self, listener: socket.socket, stats: Row) -> None:
        try:
            self._accept(listener, stats)
        except OSError as exc:
            log.error("Worker %d failed to accept: %s", self.pid, exc)
            with self._lock:
                # The one-shot listener fired and is disarmed: let
                # _pace_accepting arm it again.
                self._accepting = False

    def _accept(self, listener: socket.socket, stats: Row) -> None:
        while True:
            with self._lock:
                full = len(self._clients) >= self.cfg.worker_connections
                if not self.alive or (full and not any(
                        c.phase is IDLE and not c.busy for c in self._clients.values())):
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
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = Client(sock, peer, self._servers[listener], RequestParser(self.limits), stats,
                            self.cfg.timeout or None, time.monotonic() + self.cfg.header_timeout,
                            self.tls, self.expects_proxy_header(peer))
            with self._lock:
                if not self._clients:
                    self.wake()  # the main thread now watches the leader closely
                self._clients[client.fd] = client
                reused = self._claim_longest_idle() if full else None
            self._epoll.register(client.fd, WATCHED if client.edge else ARMED)
            if reused is not None:
                self._make_room(reused)  # (a moment over the bound, for the new one)
        with self._lock:
            if self._accepting:  # one-shot: arm it again, unless pacing disarmed it
                self._epoll.modify(listener.fileno(), ARMED)

    def _claim_longest_idle(self) -> Client | None:
        """Under `_lock`: the IDLE keep-alive connection waiting longest, claimed."""
        idle = [c for c in self._clients.values() if c.phase is IDLE and not c.busy]
        if not idle:
            return None
        longest = min(idle, key=lambda c: c.deadline)  # the same --keep-alive for each
        longest.busy = True
        return longest

    def _make_room(self, client: Client) -> None:
        """Close an idle keep-alive connection for a new client, unless bytes of a
        next request came meanwhile (closing then would reset them)."""
        if bytes_waiting(client.sock):
            # A request is coming: it is served, not closed (nor claimed again).
            client.expect_request(self.cfg.header_timeout)
            self._release(client, recheck=True)
            return
        self.connection_reused()
        self._close(client)

    # --- pool threads: a client's event ------------------------------------------------

    def _serve_event(self, fd: int, events: int, stats: Row, started: float) -> bool:
        """Serve what a client's event (`events`, as epoll gave them) says, taken
        at `started` (a monotonic reading); False if it served nothing (the
        client is gone, or another thread owns it)."""
        with self._lock:
            client = self._clients.get(fd)
            if client is None:
                return False
            if client.busy:
                # Its owner looks again when done. Until then, quiet: a client
                # sending on while the app runs would wake the leader each time.
                if client.edge and not client.muted:
                    client.muted = True
                    try:
                        self._epoll.modify(fd, MUTED)
                    except OSError:
                        pass  # (its owner is closing it)
                return False
            client.busy = True
            if events & _ENDED and client.edge:
                # The client's end had come when the event was made: after the bytes
                # read now, it comes with no event of its own.
                client.unread = True
        client.stats = stats
        try:
            self._on_readable(client, started)
        except Exception:
            log.exception("Error serving a connection from %s", client.client[0])
            self._close(client)
        return True

    def _on_readable(self, client: Client, now: float) -> None:
        """This thread owns `client` (busy): read, and serve what is complete;
        `now`: a time.monotonic() reading taken when its event was."""
        if client.awaiting_proxy_header and not self._read_proxy_header(client):
            return
        if client.handshaking and not self._handshake(client):
            return
        try:
            data = client.sock.recv(RECV_SIZE)
        except ssl.SSLWantWriteError:
            self._release(client, ARMED_TO_WRITE)
            return
        except WOULD_BLOCK:
            self._release(client)
            return
        except OSError:
            self._close(client)
            return
        if len(data) == RECV_SIZE and client.edge:
            client.unread = True
        phase = client.phase
        if phase is LINGERING:
            if data:
                self._release(client)
            else:
                self._close(client)
            return
        if data:
            if phase is IDLE:  # (Client.expect_request, inline: nearly every read)
                client.phase = REQUEST
                client.deadline = now + self.cfg.header_timeout
            elif phase is FRESH:
                client.phase = REQUEST  # (its head's --header-timeout runs from the accept)
        client.stats.received(len(data))
        client.pending.extend(client.parser.feed(data) if data else client.parser.feed_eof())
        self._act(client, now)

    def _read_proxy_header(self, client: Client) -> bool:
        """A try at the PROXY protocol header, without waiting; True once read."""
        try:
            wanted = client.read_proxy_header()
        except (ProxyHeaderError, OSError) as exc:
            log.debug("Connection from %s closed: %s", client.client[0], exc)
            self._close(client)
            return False
        if wanted == PARTIAL:
            # Readable still: re-armed, it would fire at once. Housekeeping re-arms it.
            client.parked = True
            with self._lock:
                client.busy = False
            return False
        if wanted:
            self._release(client)
            return False
        return True

    def _handshake(self, client: Client) -> bool:
        """A step of the TLS handshake, without waiting; True once it is done (then
        the client's first bytes may be there already)."""
        try:
            wanted = client.handshake()
        except OSError as exc:
            log.debug("TLS handshake with %s failed: %s", client.client[0], exc)
            self._close(client)
            return False
        if wanted:
            self._release(client, wanted | select.EPOLLRDHUP | select.EPOLLONESHOT)
            return False
        return True

    def _act(self, client: Client, now: float) -> None:
        """Serve, answer an error, close, or wait for more: whatever the parser
        says; `now`: a time.monotonic() reading taken when the bytes were read."""
        event = client.pending[0] if client.pending else None
        if isinstance(event, Request) and len(client.pending) > 1 \
                and type(client.pending[1]) is not EndOfMessage \
                and (failure := failed_body(itertools.islice(client.pending, 1, None))):
            event = failure  # (its body failed before the app could run)
        if isinstance(event, Request):
            pending = client.pending
            if (client.phase is GATHERING or len(pending) < 2 or type(pending[1]) is Data) \
                    and self._gathering.waits(client):  # (no body: decided at once)
                self._release(client)
                return
            # (Stopping does not end a connection whose answer promised it would
            # persist: it turns IDLE, and the stop's grace and lingering close end it.)
            keep = self._serve_ready_requests(client, now)
            if not keep:
                self._finish(client)
                return
            idle = not client.parser.in_message
            client.phase = IDLE if idle else REQUEST
            client.deadline = time.monotonic() + (
                self.cfg.keep_alive if idle else self.cfg.header_timeout)
            if client.pending:
                self._act(client, time.monotonic())  # an error or a close parsed ahead
                return
            self._release(client)
        elif isinstance(event, ProtocolError):
            logs.rejected(client.client[0], event, logs.HTTP2_ON_ASGI)
            client.stats.refused(event.status, len(error_body(event.status, event.detail)))
            client.answer_and_linger(error_response(event.status, event.detail))
            self._release(client)
        elif isinstance(event, ConnectionClosed):
            self._close(client)
        else:
            self._release(client)

    def _serve_ready_requests(self, client: Client, arrived: float) -> bool:
        """Answer the requests parsed so far, in order; True if the connection stays
        open. `arrived`: a time.monotonic() reading taken when they were read."""
        cfg = self.cfg
        # The first request begins at once; one behind it, once that one is done.
        started: float | None = arrived
        while client.pending and isinstance(client.pending[0], Request):
            request = client.pending.popleft()
            assert isinstance(request, Request)
            if started is None:
                started = time.monotonic()
            self._in_flight[client] = (started, request)
            try:
                outcome = self._runner.respond(client, request, self.keeps_alive and self.alive,
                                               started)
            except OSError:
                return False
            finally:
                del self._in_flight[client]
                self.request_served()
            if client.had_body:
                client.unread = True  # the reads of its body may leave bytes no event reports
            if not outcome.keep_alive:
                return False
            if not client.body_done:
                # The head promised to persist (persistence.may_persist): skip the rest.
                if not client.skip_body(cfg.body_timeout):
                    return False
            if request.upgrade:
                client.pending.extend(client.parser.resume())  # WSGI does not switch
            started = None
        return True

    def _finish(self, client: Client) -> None:
        """The connection is over: close it, lingering if the client may still send
        (or has sent more: pipelined requests left unanswered)."""
        if client.parser.client_may_be_sending or client.pending or bytes_waiting(client.sock):
            client.linger()
            self._release(client)
        else:
            self._close(client)

    # --- either side, on a client it owns --------------------------------------------

    def _release(self, client: Client, events: int = 0, recheck: bool = False) -> None:
        """Give the client back: its owner is done with it for now.

        A TLS client is armed again, for `events` if given (TLS may have to
        write before it can read on). A plain one, watched for every arrival,
        is looked at again only where an arrival may have gone unreported:
        it was muted while owned, bytes may wait unread, or `recheck` (the
        main thread's claims, and a PROXY header looked at later).
        """
        with self._lock:
            client.busy = False
            if client.edge and not (client.muted or client.unread or recheck or events):
                return
            client.muted = client.unread = False
            try:
                # (Under the lock: once it is free, another thread may claim and
                # close the client, and a new one may get its descriptor.)
                self._epoll.modify(client.fd, events or (WATCHED if client.edge else ARMED))
                return
            except OSError:
                pass
        self._close(client)

    def _close(self, client: Client) -> None:
        self._gathering.end(client)
        with self._lock:
            was = client.phase
            if was is CLOSED:
                return
            client.phase = CLOSED
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
        if client.tls is not None and was is not LINGERING:
            try:
                shut_writing(client.sock)  # (TLS's close_notify)
            except OSError:
                pass
        client.sock.close()
        client.parser.release()
