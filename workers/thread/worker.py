"""The `thread` worker: many keep-alive connections per process, a bounded
pool of threads running a WSGI app.

Theory of operation: a leader/follower pool. One pool thread at a time, the
leader, waits on the epoll set, in which each plain client socket is watched
edge-triggered (every arrival of bytes is one event, and nothing re-arms it
after a request) and each TLS one armed one-shot (an event disarms it until
its owner arms it again). The leader serves what it finds itself: it reads
without blocking and feeds the parser; a partial head only gives the socket
back (a slowloris client costs a file descriptor, never a thread; on TLS the
handshake advances the same way, one step per event, within
--header-timeout); a complete head is served right there: the app runs, the
body is read and the response written, pipelined requests already received
are answered in order, and the socket is given back. A fast app call therefore
runs on the thread that did the read, and wakes no other thread: no
hand-off and no GIL ping-pong per request. The other threads, followers,
sleep on a condition.

When the leader has spent PROMOTE_AFTER on one connection (the app blocks,
or is slow, or the body is slow to come), the main thread promotes a
follower: it takes over the events already fetched and the epoll set, while
the old leader finishes its connection and then leads again if the post is
free, or follows. So N blocking calls still run at once (--threads bounds
them), and no request ever crosses threads.

The main thread beats the heartbeat, handles signals, watches the leader
(while there are connections: every WATCH_CALM, and every WATCH_CLOSELY for
a while after it found one stuck), closes connections idle
past --keep-alive or too slow with their head, and paces accepting against
--worker-connections. At that bound a new client takes the place of the
longest-idle keep-alive connection (nginx's "reusing connections");
accepting stops only while none is idle.

Shared state (`_clients`, each client's `busy` flag, who leads) is guarded
by `_lock`. A thread works on a client only after setting `busy` under the
lock. An event for a busy client mutes it (MUTED) and is dropped: its owner,
done, has epoll look at the socket anew, which reports whatever came
meanwhile; so does an owner whose reads may have left bytes that no event
will report (`unread`). The main thread closes a client only by claiming it
the same way.
"""

from __future__ import annotations

import itertools
import select
import socket
import ssl
import threading
import time
from collections import deque

from hybrid import logs
from hybrid.logs import error_log as log
from hybrid.metrics import Row
from hybrid.protocol import (
    GATHER_BUDGET,
    LINGER_SECONDS,
    STOP_IDLE_GRACE,
    UNKNOWN_LENGTH,
    BodyPace,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    RequestParser,
    error_body,
    error_response,
)
from hybrid.addresses import server_address
from hybrid.workers.accept import PARTIAL, Acceptor
from hybrid.workers.base import Worker
from hybrid.tls_facts import ServerTLS
from hybrid.protocol.proxy_protocol import ProxyHeaderError
from hybrid.workers.blocking import (
    RECV_SIZE,
    WOULD_BLOCK,
    Connection,
    bytes_waiting,
    shut_writing,
    time_out,
)
from hybrid.workers.wsgi_runner import RequestRunner, failed_body

if not hasattr(select, "epoll"):
    raise ImportError("the thread worker class needs Linux (epoll); use -k sync elsewhere")

HOUSEKEEPING_INTERVAL = 0.25
POLL_TIMEOUT = 0.5
# How long the leader may serve one connection before a follower polls in its
# place: far above a fast call (tens of microseconds), short enough that a
# blocking call barely delays the requests behind it.
PROMOTE_AFTER = 0.001
# How often the main thread looks at the leader while there are connections.
# Each look takes the GIL from the thread serving and gives it back (a futex
# hand-off each way, and a wake-up on a busy machine), and on a loaded machine
# a leader that was only descheduled for a moment was promoted, waking a
# follower: looking every millisecond cost a fast app on 4 threads about a
# sixth of its requests per second (benchmarks/RESULTS.md). So it looks
# every WATCH_CALM until it finds a leader stuck, and then every WATCH_CLOSELY
# until CLOSE_WATCH_SPAN has passed without one (while some calls block, a
# blocking call is taken over within PROMOTE_AFTER plus a millisecond).
WATCH_CALM = 0.01
WATCH_CLOSELY = 0.001
CLOSE_WATCH_SPAN = 1.0
EVENTS_PER_POLL = 64
# A body up to --gather-body is gathered by the poller before the request
# reaches a thread (a slow client then costs a descriptor and the bytes, not a
# thread), within GATHER_BUDGET (the core's) for the worker's bodies in all: one
# of a known length if it fits, a chunked one while it does. A larger one (a
# chunked one from the read that passes the bound on), or one past the budget,
# is read by the app as it comes.
# A listener, or a TLS client, is armed one-shot: an event disarms it, and its
# owner arms it again when done (OpenSSL may hold what the kernel no longer
# shows, so readiness is looked at anew each time).
ARMED = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT
ARMED_TO_WRITE = select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLONESHOT
# A plain client is watched edge-triggered, for good: each arrival of bytes is
# one event, and a request served needs no system call to re-arm its socket.
WATCHED = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
# A plain client whose event came while a thread owns it: no more events until
# the owner is done (a one-shot with nothing armed: a hang-up is reported once,
# never again and again while the app runs).
MUTED = select.EPOLLONESHOT
_ENDED = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR


class _Client(Connection):
    """A connection plus what the threads need to share it."""

    def __init__(self, sock: socket.socket, addr: object, server: tuple[str, str],
                 parser: RequestParser, stats: Row, write_timeout: float | None,
                 deadline: float, tls: ServerTLS | None, proxied: bool) -> None:
        super().__init__(sock, addr, server, parser, stats, write_timeout, tls, proxied)
        self.fd = self.sock.fileno()
        self.deadline = deadline  # when waiting for this client's next bytes ends
        self.idle = False  # kept alive, no byte of a next request yet
        self.lingering = False  # answered with an error; dropping input until close
        self.busy = False  # a thread owns it (under _lock)
        self.stop_noticed = False  # idle when the worker began to stop: given its grace
        self.fresh = True  # no byte received yet
        self.parked = False  # part of a PROXY protocol header came: looked at again later
        self.gathering: BodyPace | None = None  # the body is gathered before the request runs
        self.gathered = 0  # its bytes received so far
        self.gathered_at = 0.0  # when the last of them came (time.monotonic())
        self.reserved = 0  # its share of GATHER_BUDGET
        self.closed = False
        self.edge = tls is None  # watched edge-triggered (plain), or armed one-shot (TLS)
        self.muted = False  # an event came while owned: MUTED until released (under _lock)
        # Bytes may wait in the socket that no event will report: more than one read
        # took, what a request body's reads left, or an end that came before its event
        # (its owner has epoll look again when done).
        self.unread = False


class ThreadWorker(Worker):
    """Serves WSGI on a pool of threads, with keep-alive and pipelining."""

    def prepare(self) -> None:
        """What the worker's threads share, set up before any runs (a benchmark
        drives the request path of a prepared worker directly)."""
        cfg = self.cfg
        self.limits = cfg.request_limits()
        self.threads = cfg.threads
        self._runner = RequestRunner(self.app, cfg, self.access_log, self.proxy,
                                     multithread=True, hooked=self.request_hooked)
        self._epoll = select.epoll()
        self._lock = threading.Lock()
        self._clients: dict[int, _Client] = {}
        # What each thread serves, since when. Changed by one thread at a time per
        # key and read as list(...values()), each atomic under the GIL: no lock.
        self._in_flight: dict[_Client, tuple[float, Request]] = {}
        self._listeners = {listener.fileno(): listener for listener in self.listeners}
        self._servers = {listener: server_address(listener) for listener in self.listeners}
        self._accepting = False
        self._acceptor = Acceptor()
        self._done = False
        self._leader: threading.Thread | None = None
        self._leading_since = 0.0  # when the leader took what it serves; 0.0: it polls
        self._vacancy = threading.Condition(self._lock)
        self._following = 0  # threads waiting for the post (under _lock)
        self._calls_block = False  # the last client served took PROMOTE_AFTER or more
        self._fetched: deque[tuple[int, int]] = deque()  # events polled, not yet served
        self._gather_left = GATHER_BUDGET  # (under _lock)
        for fd, listener in self._listeners.items():
            listener.setblocking(False)
            self._epoll.register(fd, 0)  # disarmed; _pace_accepting arms it
        self._pace_accepting()

    def run(self) -> None:
        cfg = self.cfg
        self.prepare()
        pool = [threading.Thread(target=self._pool_thread, args=(self.counters.row(1 + n),),
                                 name=f"hybrid-request-{n}", daemon=True)
                for n in range(self.threads)]
        for thread in pool:
            thread.start()
        self.report_ready()
        wakeup = select.poll()
        wakeup.register(self.wakeup_fd, select.POLLIN)
        housekeeping_at = 0.0
        watch_closely_until = 0.0
        stop_by: float | None = None  # the end of a graceful stop
        while True:
            now = time.monotonic()
            if now >= housekeeping_at:
                housekeeping_at = now + HOUSEKEEPING_INTERVAL
                if self.alive and self.parent_changed():
                    self.alive = False  # orphaned: stop as on TERM, finishing what runs
                self._beat()
                if not self.alive:
                    stop_by = stop_by or now + cfg.graceful_timeout
                    if self._stop_when_drained():
                        break
                    if now >= stop_by:
                        log.warning("Worker %d: --graceful-timeout (%g s) is over; cutting %s",
                                    self.pid, cfg.graceful_timeout,
                                    self.describe_work() or "idle connections")
                        break
                self._expire(now)
                if cfg.request_timeout:
                    self._time_out_requests(now)
                self._pace_accepting()
            if self._clients:
                wait = WATCH_CLOSELY if now < watch_closely_until else WATCH_CALM
                wait = min(wait, housekeeping_at - now)
            else:
                wait = housekeeping_at - now
            if wakeup.poll(max(wait, 0.0) * 1000):
                self.drain_wakeups()
                housekeeping_at = 0.0  # a signal (a stop, a log reopening): act on it now
            if self._promote_if_stuck():
                watch_closely_until = time.monotonic() + CLOSE_WATCH_SPAN
        with self._lock:
            self._done = True
            self._vacancy.notify_all()
        for thread in pool:
            thread.join(POLL_TIMEOUT * 2)

    def describe_work(self) -> str:
        return ", ".join(request.summary() for _, request in list(self._in_flight.values()))

    # --- main thread ---------------------------------------------------------------

    def _beat(self) -> None:
        """Heartbeat: 'now' while a thread is free; once all are busy, the time the
        last one took its request, so threads all stuck past --timeout get the
        worker replaced although this loop still turns."""
        starts = [started for started, _ in list(self._in_flight.values())]
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
            parked = [c for c in self._clients.values() if c.parked and not c.busy]
            for client in parked:
                client.busy = True  # (watched still: its next bytes could reach a thread)
        for client in parked:
            client.parked = False
            self._release(client, recheck=True)
        for client in due:
            if client.lingering:
                self._close(client)  # the drain is over
            elif client.awaiting_proxy_header or client.handshaking:
                log.debug("No %s from %s within --header-timeout", "PROXY protocol header"
                          if client.awaiting_proxy_header else "TLS handshake", client.client[0])
                self._close(client)
            elif (client.idle or client.fresh) and not self.alive:
                self._end_idle(client)
            elif client.idle:
                self._close(client)  # the keep-alive timeout
            elif bytes_waiting(client.sock):
                # What it sent waits unread: every thread was busy, which is no
                # delay of the client's. It is served once a thread is free.
                client.deadline = now + self.cfg.header_timeout
                self._release(client, recheck=True)
            else:  # a head, or a gathered body, too slow to come
                pace = client.gathering
                error = (pace.too_slow() if pace else None) or client.parser.timeout_error()
                self._end_gathering(client)
                logs.rejected(client.client[0], error)
                self.stats.refused(error.status, len(error_body(error.status, error.detail)))
                self._answer_and_linger(client, error_response(error.status, error.detail))
                self._release(client, recheck=True)

    def _stop_when_drained(self) -> bool:
        """Graceful stop: stop accepting; True once no connection is left.

        A connection with a request on its way is served, with `Connection:
        close`. An idle keep-alive connection, or one accepted that has sent
        nothing yet, waits STOP_IDLE_GRACE for a request (served too), then
        ends with a lingering close (`_end_idle`).
        """
        self._pace_accepting()
        grace = min(STOP_IDLE_GRACE, self.cfg.keep_alive)
        with self._lock:
            for client in self._clients.values():
                if (client.idle or client.fresh) and not client.busy and not client.stop_noticed:
                    client.stop_noticed = True
                    client.deadline = min(client.deadline, time.monotonic() + grace)
            return not self._clients

    def _time_out_requests(self, now: float) -> None:
        """Requests past --request-timeout: 504 (or cut) and the connection shut;
        the thread is left to the app. Once every thread is stuck so, the worker
        asks for a replacement."""
        limit = self.cfg.request_timeout
        stuck = 0
        for client, (started, request) in list(self._in_flight.items()):
            if now - started < limit:
                continue
            stuck += 1
            if not client.timed_out:
                log.error("Worker %d: %s has run for %.0f s, over --request-timeout (%g s): "
                          "answered 504 (or cut) and closed; its thread goes on until the app "
                          "returns", self.pid, request.summary(), now - started, limit)
                time_out(client)
        if stuck >= self.threads:
            log.error("Worker %d: every thread is stuck past --request-timeout", self.pid)
            self.ask_for_replacement("request-timeout")

    def _promote_if_stuck(self) -> bool:
        """A leader serving one connection for PROMOTE_AFTER gives up polling to a
        follower (if none is free, to the first thread to finish); True if it did."""
        if not self._leading_since:
            return False
        with self._lock:
            since = self._leading_since
            if since and time.monotonic() - since >= PROMOTE_AFTER:
                self._leader = None
                self._leading_since = 0.0
                self._vacancy.notify()
                return True
        return False

    # --- pool threads --------------------------------------------------------------

    def _pool_thread(self, stats: Row) -> None:
        """One pool thread: follow until the post of leader is free, lead until
        another thread leads, and again; `stats`: its own row of counters."""
        me = threading.current_thread()
        while True:
            with self._lock:
                while self._leader is not None and not self._done:
                    self._following += 1
                    self._vacancy.wait()
                    self._following -= 1
                if self._done:
                    return
                self._leader = me
            try:
                self._lead(me, stats)
            except Exception:  # a bug of ours: log it, and let the thread serve on
                log.exception("Worker %d: a pool thread failed", self.pid)
            finally:
                with self._lock:
                    if self._leader is me:  # (it left on an error: someone must lead)
                        self._leader = None
                        self._leading_since = 0.0
                        self._vacancy.notify()

    def _lead(self, me: threading.Thread, stats: Row) -> None:
        """Poll and serve until another thread leads (or the worker is done).

        While calls block (the last one served took PROMOTE_AFTER or more), the
        leader hands its post to a follower before it serves, rather than
        waiting to be promoted out: otherwise calls could begin only as often
        as the main thread looks.
        """
        fetched = self._fetched
        listeners = self._listeners
        lock = self._lock
        while not self._done:
            if not fetched:
                try:
                    fetched.extend(self._epoll.poll(POLL_TIMEOUT, EVENTS_PER_POLL))
                except OSError:
                    return  # the epoll set was closed at exit
                continue
            fd, events = fetched.popleft()
            now = time.monotonic()
            if fd in listeners:
                self._leading_since = now
                self._accept_on(listeners[fd], stats)
            elif self._calls_block and self._following:
                with self._lock:
                    self._leader = None
                    self._vacancy.notify()
                self._serve_event(fd, events, stats, now)
                return
            else:
                self._leading_since = now
                self._serve_event(fd, events, stats, now)
            lock.acquire()  # (on every request's path: see _release)
            leading = self._leader is me
            if leading:
                self._leading_since = 0.0
            lock.release()
            if not leading:
                return  # promoted out while serving: the new leader has `fetched`

    def _accept_on(self, listener: socket.socket, stats: Row) -> None:
        try:
            self._accept(listener, stats)
        except OSError as exc:
            log.error("Worker %d failed to accept: %s", self.pid, exc)
            with self._lock:
                # The one-shot listener fired and is disarmed: let
                # _pace_accepting arm it again.
                self._accepting = False

    def _serve_event(self, fd: int, events: int, stats: Row, started: float) -> None:
        """Serve what a client's event (`events`, as epoll gave them) says, taken
        at `started` (a monotonic reading), and note whether that blocked."""
        lock = self._lock
        lock.acquire()  # (on every request's path: see _release)
        try:
            client = self._clients.get(fd)
            if client is None:
                return
            if client.busy:
                # Its owner looks again when done. Until then, quiet: a client
                # sending on while the app runs would wake the leader each time.
                if client.edge and not client.muted:
                    client.muted = True
                    try:
                        self._epoll.modify(fd, MUTED)
                    except OSError:
                        pass  # (its owner is closing it)
                return
            client.busy = True
            if events & _ENDED and client.edge:
                # The client's end had come when the event was made: after the bytes
                # read now, it comes with no event of its own.
                client.unread = True
        finally:
            lock.release()
        client.stats = stats
        try:
            self._on_readable(client, started)
        except Exception:
            log.exception("Error serving a connection from %s", client.client[0])
            self._close(client)
        self._calls_block = time.monotonic() - started >= PROMOTE_AFTER

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
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, peer, self._servers[listener], RequestParser(self.limits), stats,
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
        if bytes_waiting(client.sock):
            # A request is coming: it is served, not closed (nor claimed again).
            self._expect_request(client)
            self._release(client, recheck=True)
            return
        self.connection_reused()
        self._close(client)

    def _end_idle(self, client: _Client) -> None:
        """A stopping worker's idle connection (claimed): a lingering close, never
        a bare one that could reset a request on its way; one with bytes waiting
        is served instead."""
        if bytes_waiting(client.sock):
            self._expect_request(client)
        else:
            self._linger(client)
        self._release(client, recheck=True)

    def _expect_request(self, client: _Client) -> None:
        """An idle connection's next request has begun: its head has --header-timeout."""
        client.idle = False
        client.deadline = time.monotonic() + self.cfg.header_timeout

    def _on_readable(self, client: _Client, now: float) -> None:
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
        if client.lingering:
            if data:
                self._release(client)
            else:
                self._close(client)
            return
        client.fresh = False
        if client.idle and data:  # (_expect_request, inline: nearly every read)
            client.idle = False
            client.deadline = now + self.cfg.header_timeout
        client.stats.received(len(data))
        client.pending.extend(client.parser.feed(data) if data else client.parser.feed_eof())
        self._act(client, now)

    def _read_proxy_header(self, client: _Client) -> bool:
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

    def _handshake(self, client: _Client) -> bool:
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

    def _act(self, client: _Client, now: float) -> None:
        """Serve, answer an error, close, or wait for more: whatever the parser
        says; `now`: a time.monotonic() reading taken when the bytes were read."""
        event = client.pending[0] if client.pending else None
        if isinstance(event, Request) and len(client.pending) > 1 \
                and type(client.pending[1]) is not EndOfMessage \
                and (failure := failed_body(itertools.islice(client.pending, 1, None))):
            event = failure  # (its body failed before the app could run)
        if isinstance(event, Request):
            pending = client.pending
            if (client.gathering is not None or len(pending) < 2 or type(pending[1]) is Data) \
                    and self._gathering_body(client):  # (no body: decided at once)
                self._release(client)
                return
            # (Stopping does not end a connection whose answer promised it would
            # persist: it turns idle, and the stop's grace and lingering close end it.)
            keep = self._serve_ready_requests(client, now)
            if not keep:
                self._finish(client)
                return
            client.idle = not client.parser.in_message
            client.deadline = time.monotonic() + (
                self.cfg.keep_alive if client.idle else self.cfg.header_timeout)
            if client.pending:
                self._act(client, time.monotonic())  # an error or a close parsed ahead
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

    def _gathering_body(self, client: _Client) -> bool:
        """Whether the request first in `client.pending` waits in the poller for
        the rest of its body (--gather-body): then its pace is kept as the app's
        reads would keep it, and its deadline set. (Asked only when the request
        may have a body, or one is being gathered.)"""
        pending = client.pending
        received, complete = 0, False
        for event in itertools.islice(pending, 1, None):
            if type(event) is not Data:
                complete = True  # (its end, or an error the app will read)
                break
            received += len(event.data)
        due = None if complete else client.parser.body_to_gather()
        if not due:
            self._end_gathering(client)
            return False
        # A body longer than the bound is read by the app as it comes: one of a
        # known length at once, a chunked one once it would pass the bound.
        # The budget holds what came and one more byte: a body that announces a
        # length but sends nothing holds (almost) none of it, so silent uploads
        # cannot use it up and send the next ones to threads to stall.
        size = received + (1 if due == UNKNOWN_LENGTH else due)
        if size > self.cfg.gather_body or not self._reserve(client, received + 1):
            self._end_gathering(client)
            return False
        now = time.monotonic()
        pace = client.gathering
        if pace is None:
            pace = client.gathering = BodyPace(self.cfg.body_timeout, self.cfg.body_min_rate)
        else:
            pace.waited(now - client.gathered_at, received - client.gathered)
        client.gathered, client.gathered_at = received, now
        client.deadline = now + pace.allowance()
        return True

    def _reserve(self, client: _Client, size: int) -> bool:
        """Hold `size` bytes of GATHER_BUDGET for the client's body, counting what
        it holds already (a chunked body's share grows as it comes)."""
        more = size - client.reserved
        if more <= 0:
            return True
        with self._lock:
            if more > self._gather_left:
                return False
            self._gather_left -= more
            client.reserved = size
            return True

    def _end_gathering(self, client: _Client) -> None:
        client.gathering = None
        if client.reserved:
            with self._lock:
                self._gather_left += client.reserved
                client.reserved = 0

    def _serve_ready_requests(self, client: _Client, arrived: float) -> bool:
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

    def _answer_and_linger(self, client: _Client, response: bytes) -> None:
        """Send a short error answer, then drop input until the client closes: closing
        with unread input would send RST and could destroy the answer."""
        client.pending.clear()
        try:
            client.sock.send(response)
        except OSError:
            pass
        self._linger(client)

    def _finish(self, client: _Client) -> None:
        """The connection is over: close it, lingering if the client may still send
        (or has sent more: pipelined requests left unanswered)."""
        if client.parser.client_may_be_sending or client.pending or bytes_waiting(client.sock):
            self._linger(client)
            self._release(client)
        else:
            self._close(client)

    def _linger(self, client: _Client) -> None:
        try:
            shut_writing(client.sock)
        except OSError:
            pass
        client.lingering = True
        client.deadline = time.monotonic() + LINGER_SECONDS

    # --- either side, on a client it owns --------------------------------------------

    def _release(self, client: _Client, events: int = 0, recheck: bool = False) -> None:
        """Give the client back: its owner is done with it for now.

        A TLS client is armed again, for `events` if given (TLS may have to
        write before it can read on). A plain one, watched for every arrival,
        is looked at again only where an arrival may have gone unreported:
        it was muted while owned, bytes may wait unread, or `recheck` (the
        main thread's claims, and a PROXY header looked at later).
        """
        # The lock is taken and let go by hand on each request's path (here,
        # _serve_event, _lead): a `with` block binds __enter__ and __exit__ anew
        # each time, which costs as much again as the lock itself.
        lock = self._lock
        lock.acquire()
        try:
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
        finally:
            lock.release()
        self._close(client)

    def _close(self, client: _Client) -> None:
        self._end_gathering(client)
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
        if client.tls is not None and not client.lingering:
            try:
                shut_writing(client.sock)  # (TLS's close_notify)
            except OSError:
                pass
        client.sock.close()
