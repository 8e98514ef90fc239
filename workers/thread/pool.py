"""The `thread` class's leader/follower pool of --threads threads.

One pool thread at a time, the leader, waits on the epoll set, in which each
plain client socket is watched edge-triggered (every arrival of bytes is one
event, and nothing re-arms it after a request) and each TLS one armed
one-shot (an event disarms it until its owner arms it again). The leader
serves what it finds itself (serving.py): it reads without blocking and feeds
the parser; a partial head only gives the socket back (a slowloris client
costs a file descriptor, never a thread; on TLS the handshake advances the
same way, one step per event, within --header-timeout); a complete head is
served right there: the app runs, the body is read and the response written,
pipelined requests already received are answered in order, and the socket is
given back. A fast app call therefore runs on the thread that did the read,
and wakes no other thread: no hand-off and no GIL ping-pong per request. The
other threads, followers, sleep on a condition.

When the leader has spent PROMOTE_AFTER on one connection (the app blocks,
or is slow, or the body is slow to come), the main thread promotes a
follower: it takes over the events already fetched and the epoll set, while
the old leader finishes its connection and then leads again if the post is
free, or follows. So N blocking calls still run at once (--threads bounds
them), and no request ever crosses threads.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from hybrid.logs import error_log as log
from hybrid.metrics import Row

POLL_TIMEOUT: Final = 0.5
# How long the leader may serve one connection before a follower polls in its
# place: far above a fast call (tens of microseconds), short enough that a
# blocking call barely delays the requests behind it.
PROMOTE_AFTER: Final = 0.001
EVENTS_PER_POLL: Final = 64


class LeaderFollowerPool:
    """The pool threads, the post of leader they take in turn, and the events
    the leaders fetch. Its state is guarded by the worker's lock (`lock`), the
    one the clients' table shares."""

    def __init__(self, lock: threading.Lock, epoll: select.epoll,
                 listeners: dict[int, socket.socket],
                 accept_on: Callable[[socket.socket, Row], None],
                 serve_event: Callable[[int, int, Row, float], bool], pid: int) -> None:
        """`accept_on(listener, stats)` takes the connections a listener's event
        announces; `serve_event(fd, events, stats, started)` serves a client's
        event, False if it served nothing (its client gone, or owned by another
        thread); `stats`: the serving thread's own row of counters."""
        self._lock = lock
        self._epoll = epoll
        self._listeners = listeners
        self._accept_on = accept_on
        self._serve_event = serve_event
        self._pid = pid
        self._threads: list[threading.Thread] = []
        self._done = False
        self._leader: threading.Thread | None = None
        self._leading_since = 0.0  # when the leader took what it serves; 0.0: it polls
        self._vacancy = threading.Condition(lock)
        self._following = 0  # threads waiting for the post (under the lock)
        self._calls_block = False  # the last client served took PROMOTE_AFTER or more
        self._fetched: deque[tuple[int, int]] = deque()  # events polled, not yet served

    def start(self, rows: list[Row]) -> None:
        """One pool thread per row of counters, each counting in its own."""
        self._threads = [threading.Thread(target=self._pool_thread, args=(row,),
                                          name=f"hybrid-request-{n}", daemon=True)
                         for n, row in enumerate(rows)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """The threads stop once what they serve is done (each waited for a while)."""
        with self._lock:
            self._done = True
            self._vacancy.notify_all()
        for thread in self._threads:
            thread.join(POLL_TIMEOUT * 2)

    def promote_if_stuck(self) -> bool:
        """A leader serving one connection for PROMOTE_AFTER gives up polling to a
        follower (if none is free, to the first thread to finish); True if it did.
        (The main thread's look.)"""
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
                log.exception("Worker %d: a pool thread failed", self._pid)
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
        serve = self._serve_event
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
                with lock:
                    self._leader = None
                    self._vacancy.notify()
                if serve(fd, events, stats, now):
                    self._calls_block = time.monotonic() - now >= PROMOTE_AFTER
                return
            else:
                self._leading_since = now
                if serve(fd, events, stats, now):
                    self._calls_block = time.monotonic() - now >= PROMOTE_AFTER
            with lock:
                leading = self._leader is me
                if leading:
                    self._leading_since = 0.0
            if not leading:
                return  # promoted out while serving: the new leader has `fetched`
