"""The `thread` worker: many keep-alive connections per process, a bounded
pool of threads running a WSGI app.

Theory of operation: a leader/follower pool (pool.py). One pool thread at a
time, the leader, waits on the epoll set and serves what it finds itself
(serving.py): a fast app call runs on the thread that did the read, with no
hand-off; a blocking one has the main thread promote a follower to lead in
its place. Each connection is a `Client` in one `Phase` of its life
(client.py); small bodies are gathered before the app runs (gather.py).

This room is the main thread's. It beats the heartbeat, handles signals,
watches the leader (while there are connections: every WATCH_CALM, and
every WATCH_CLOSELY for a while after it found one stuck), closes
connections idle past --keep-alive or too slow with their head, and paces
accepting against --worker-connections. At that bound a new client takes
the place of the longest-idle keep-alive connection (nginx's "reusing
connections"); accepting stops only while none is idle. It touches a client
only after claiming it, as a pool thread does (`busy`, serving.py).
"""

from __future__ import annotations

import select
import time
from typing import Final

from hybrid import logs
from hybrid.logs import error_log as log
from hybrid.protocol import STOP_IDLE_GRACE, error_body, error_response
from hybrid.workers.blocking import bytes_waiting, time_out
from hybrid.workers.thread.client import FRESH, IDLE, LINGERING, Client
from hybrid.workers.thread.pool import LeaderFollowerPool
from hybrid.workers.thread.serving import ARMED, Serving

HOUSEKEEPING_INTERVAL: Final = 0.25
# How often the main thread looks at the leader while there are connections.
# Each look takes the GIL from the thread serving and gives it back (a futex
# hand-off each way, and a wake-up on a busy machine), and on a loaded machine
# a leader that was only descheduled for a moment was promoted, waking a
# follower: looking every millisecond cost a fast app on 4 threads about a
# sixth of its requests per second (benchmarks/RESULTS.md). So it looks
# every WATCH_CALM until it finds a leader stuck, and then every WATCH_CLOSELY
# until CLOSE_WATCH_SPAN has passed without one (while some calls block, a
# blocking call is taken over within PROMOTE_AFTER plus a millisecond).
WATCH_CALM: Final = 0.01
WATCH_CLOSELY: Final = 0.001
CLOSE_WATCH_SPAN: Final = 1.0


class ThreadWorker(Serving):
    """Serves WSGI on a pool of threads, with keep-alive and pipelining."""

    def prepare(self) -> None:
        """The request path's shared state (Serving.prepare), the pool (its
        threads not started yet), and the listeners, registered disarmed until
        accepting is paced."""
        super().prepare()
        self.threads = self.cfg.threads
        self._pool = LeaderFollowerPool(self._lock, self._epoll, self._listeners,
                                        self._accept_on, self._serve_event, self.pid)
        for fd, listener in self._listeners.items():
            listener.setblocking(False)
            self._epoll.register(fd, 0)  # disarmed; _pace_accepting arms it
        self._pace_accepting()

    def run(self) -> None:
        cfg = self.cfg
        self.prepare()
        self.settle_heap()  # (before the pool threads take any connection)
        self._pool.start([self.counters.row(1 + n) for n in range(self.threads)])
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
            if self._pool.promote_if_stuck():
                watch_closely_until = time.monotonic() + CLOSE_WATCH_SPAN
        self._pool.stop()

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
                           or any(c.phase is IDLE and not c.busy
                                  for c in self._clients.values())))
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
            phase = client.phase
            if phase is LINGERING:
                self._close(client)  # the drain is over
            elif client.awaiting_proxy_header or client.handshaking:
                log.debug("No %s from %s within --header-timeout", "PROXY protocol header"
                          if client.awaiting_proxy_header else "TLS handshake", client.client[0])
                self._close(client)
            elif (phase is IDLE or phase is FRESH) and not self.alive:
                self._end_idle(client)
            elif phase is IDLE:
                self._close(client)  # the keep-alive timeout
            elif bytes_waiting(client.sock):
                # What it sent waits unread: every thread was busy, which is no
                # delay of the client's. It is served once a thread is free.
                client.deadline = now + self.cfg.header_timeout
                self._release(client, recheck=True)
            else:  # a head, or a gathered body, too slow to come
                pace = client.pace
                error = (pace.too_slow() if pace else None) or client.parser.timeout_error()
                self._gathering.end(client)
                logs.rejected(client.client[0], error)
                self.stats.refused(error.status, len(error_body(error.status, error.detail)))
                client.answer_and_linger(error_response(error.status, error.detail))
                self._release(client, recheck=True)

    def _end_idle(self, client: Client) -> None:
        """A stopping worker's FRESH or IDLE connection (claimed): a lingering close,
        never a bare one that could reset a request on its way; one with bytes
        waiting is served instead."""
        if bytes_waiting(client.sock):
            client.expect_request(self.cfg.header_timeout)
        else:
            client.linger()
        self._release(client, recheck=True)

    def _stop_when_drained(self) -> bool:
        """Graceful stop: stop accepting; True once no connection is left.

        A connection with a request on its way is served, with `Connection:
        close`. An IDLE keep-alive connection, or a FRESH one (accepted, nothing
        sent yet), waits STOP_IDLE_GRACE for a request (served too), then ends
        with a lingering close (`_end_idle`).
        """
        self._pace_accepting()
        grace = min(STOP_IDLE_GRACE, self.cfg.keep_alive)
        with self._lock:
            for client in self._clients.values():
                phase = client.phase
                if (phase is IDLE or phase is FRESH) and not client.busy \
                        and not client.stop_noticed:
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
