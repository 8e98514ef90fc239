"""The `asgi` worker: an event loop (uvloop by default) serving ASGI 3 apps,
and WSGI apps wrapped in `hybrid.bridge.WSGIBridge` (a pool of --threads).

It runs the app's lifespan startup, creates one `HttpProtocol` per
connection on every listener, and reports ready. The heartbeat is beaten
by a timer on the loop itself, so a loop blocked by CPU-bound code for
longer than --timeout gets the worker replaced; the same tick sweeps the
connections' header and keep-alive deadlines. TERM stops accepting, lets
answers in flight finish within --graceful-timeout (open WebSockets get a
going-away close), names what is still running when that time is over,
then runs the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from hybrid import http2_options, logs
from hybrid.bridge import WSGIBridge
from hybrid.config import DEFAULTS
from hybrid.heartbeat import HEARTBEAT_INTERVAL
from hybrid.loader import app_interface
from hybrid.logs import error_log as log
from hybrid.workers.asgi.connection import HttpProtocol
from hybrid.workers.asgi.idle import IdleConnections
from hybrid.workers.asgi.lifetime import ServedConnection
from hybrid.workers.asgi.lifespan import Lifespan
from hybrid.workers.asgi.listener import (
    CONNECTION_MARGIN,
    DESCRIPTOR_MARGIN,
    Listener,
    descriptor_limit,
    open_descriptors,
    queue_length,
)
from hybrid.workers.base import Worker

if TYPE_CHECKING:
    from hybrid.workers.asgi.h2.engine import H2Settings


class AsgiWorker(Worker):
    """Serves ASGI 3 apps on an event loop, and WSGI apps through `WSGIBridge`."""

    interfaces = ("asgi", "wsgi")

    def run(self) -> None:
        loop: asyncio.AbstractEventLoop
        if self.cfg.loop == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            loop.close()

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set up what connections read from the worker (before any is made)."""
        cfg = self.cfg
        self.loop = loop
        self.limits = cfg.request_limits()
        self.limit_concurrency = cfg.limit_concurrency
        self.root_path = cfg.root_path
        self.log_access = self.access_log.enabled
        self.direct_wsgi: WSGIBridge | None = None  # set below for a WSGI app
        self.connections: set[ServedConnection] = set()
        self.idle: IdleConnections[ServedConnection] = IdleConnections()
        self.opening: set[HttpProtocol] = set()
        self.accepting: list[Listener] = []
        # Connections from these (a descriptor number, a count) on are near a bound
        # where the listeners accept themselves (see workers.asgi.listener).
        self.descriptor_limit = descriptor_limit()
        # (a burst may come on every listener at once)
        self.descriptor_watch = self.descriptor_limit - DESCRIPTOR_MARGIN \
            - queue_length(cfg.backlog) * len(self.listeners)
        self.connection_watch = max(1, cfg.worker_connections - CONNECTION_MARGIN)
        self.descriptors_short = False
        self.in_flight = 0
        self.state: dict[str, Any] = {}
        self.h2_settings = self._http2_settings()
        self.h2c_prior_knowledge = self.h2_settings is not None \
            and http2_options.cleartext_prior_knowledge(cfg)
        self.h2c_upgrade = self.h2_settings is not None and http2_options.cleartext_upgrade(cfg)

    def _http2_settings(self) -> H2Settings | None:
        """What this worker announces to HTTP/2 clients; None when it serves none."""
        cfg = self.cfg
        if not http2_options.serves_h2(cfg, "asgi"):
            return None
        # Imported only here: the engine is the http2 extra's, and may be absent.
        from hybrid.workers.asgi.h2.engine import H2Settings

        return H2Settings(cfg.http2_max_concurrent_streams, cfg.http2_initial_window_size,
                          cfg.http2_max_frame_size, cfg.http2_max_header_list_size,
                          enable_connect_protocol=True)  # (WebSockets, RFC 8441)

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.cfg
        self.prepare(loop)
        if app_interface(self.app, cfg.interface) == "wsgi":
            self.app = self.direct_wsgi = WSGIBridge(self.app, threads=cfg.threads,
                                                     gather_body=cfg.gather_body)
        elif cfg.threads != DEFAULTS["threads"]:
            log.warning("Worker %d: --threads %d is ignored: the app is ASGI (the asgi class "
                        "runs only a WSGI app on threads)", self.pid, cfg.threads)
        self._stop = asyncio.Event()
        self._fast_stop = False
        lifespan = Lifespan(self.app, cfg.lifespan)
        failure = await lifespan.startup()
        if failure:
            self.boot_failed(failure)
        self.state = lifespan.state
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, False)
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, True)
        loop.add_signal_handler(signal.SIGQUIT, self._on_stop_signal, True)
        loop.add_signal_handler(signal.SIGUSR1, logs.reopen_files)
        if not self.alive:  # a TERM came before the loop took the signals over
            self._stop.set()
        if self.tls is None and (held := open_descriptors()) >= self.descriptor_watch:
            self._short_of_descriptors(held)
        own = self.tls is not None or self.descriptors_short
        self.accepting = [Listener(self, listener, own=own) for listener in self.listeners]
        self.settle_heap()  # (after the lifespan's startup, before any connection)
        for accepting in self.accepting:
            await accepting.start()
        self.report_ready()
        self._tick()
        await self._stop.wait()
        for accepting in self.accepting:
            accepting.close()
        for connection in list(self.connections):
            connection.shut_down(abort=self._fast_stop)
        deadline = loop.time() + (0 if self._fast_stop else cfg.graceful_timeout)
        while (self.connections or self.opening) and loop.time() < deadline \
                and not self._fast_stop:
            await asyncio.sleep(0.05)
        if not self._fast_stop and (work := self.describe_work()):
            log.warning("Worker %d: --graceful-timeout (%g s) is over; cutting what is still "
                        "running: %s", self.pid, cfg.graceful_timeout, work)
        for connection in list(self.connections):
            connection.shut_down(abort=True)
        for accepting in self.accepting:
            accepting.abandon()
        if not self._fast_stop:
            await lifespan.shutdown(cfg.graceful_timeout)

    def make_room(self) -> bool:
        longest = self.idle.oldest()
        if longest is None:
            return False
        self.connections.discard(longest)  # (at once: the transport closes a turn later)
        longest.close_idle()
        self.connection_reused()
        return True

    def near_a_bound(self, descriptor: int) -> None:
        if descriptor >= self.descriptor_watch and not self.descriptors_short \
                and self.tls is None:  # (TLS listeners accept here anyway)
            self._short_of_descriptors(descriptor + 1)  # (the lowest free one was taken)
        for accepting in self.accepting:
            accepting.accept_here()

    def _short_of_descriptors(self, held: int) -> None:
        self.descriptors_short = True
        log.info("Worker %d holds at least %d of its %d descriptors (ulimit -n), within a burst of "
                 "queued connections (%d per listener, --backlog) and %d of the limit: it "
                 "accepts connections itself from now on, to pause when out of descriptors "
                 "rather than reset connections", self.pid, held, self.descriptor_limit,
                 queue_length(self.cfg.backlog), DESCRIPTOR_MARGIN)

    def _probe_descriptors(self) -> None:
        """Descriptors the app takes are seen by no connection: the lowest free one
        says, once a second, whether those below the watch are all taken."""
        try:
            lowest_free = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            self.near_a_bound(self.descriptor_limit)
            return
        os.close(lowest_free)
        if lowest_free >= self.descriptor_watch:
            self.near_a_bound(lowest_free)

    def connection_ended(self) -> None:
        for accepting in self.accepting:
            if accepting.own:
                accepting.resume()

    def describe_work(self) -> str:
        return ", ".join(cycle.request.summary() for c in self.connections
                         for cycle in c.running())

    def _on_stop_signal(self, fast: bool) -> None:
        if fast:
            self.hooks.call("worker_int", self)
        self.alive = False
        self._fast_stop = self._fast_stop or fast
        self._stop.set()

    def _tick(self) -> None:
        """Heartbeat from the loop (it beats only while the loop turns), and the
        connections' header and keep-alive deadlines."""
        self.tend()
        self.stats.set_gauges(self.in_flight, len(self.connections),
                              sum(c.websocket is not None for c in self.connections))
        if self.parent_changed():
            self._on_stop_signal(False)
            return
        if not self.descriptors_short and self.tls is None:
            self._probe_descriptors()
        # (a TLS listener stays accepting here: Listener.accept_by_libuv says no)
        far_from_bounds = not self.descriptors_short \
            and len(self.connections) < self.connection_watch // 2
        for accepting in self.accepting:
            if far_from_bounds:
                accepting.accept_by_libuv()
            accepting.resume()  # (after a rest)
        now = self.loop.time()
        for connection in [c for c in self.connections
                           if c.deadline is not None and c.deadline <= now]:
            connection.deadline = None
            connection.on_deadline()
        if self.cfg.request_timeout:
            self._time_out_requests()
        self.loop.call_later(HEARTBEAT_INTERVAL, self._tick)

    def _time_out_requests(self) -> None:
        """Cancel the app's task for requests past --request-timeout (the client gets
        a 504, or a cut answer). A WSGI call on the bridge cannot be stopped: once
        every bridge thread runs one so abandoned, the worker asks for a replacement."""
        # Calls abandoned at an earlier tick: one given up now may be only waiting
        # for the loop (for the client to read, or to send more body), and ends
        # as soon as it hears that its request was given up.
        bridge = self.app
        if isinstance(bridge, WSGIBridge) and bridge.abandoned >= bridge.threads:
            log.error("Worker %d: every bridge thread is stuck past --request-timeout",
                      self.pid)
            self.ask_for_replacement("request-timeout")
        limit = self.cfg.request_timeout
        now = time.perf_counter()
        for cycle in [cycle for c in self.connections for cycle in c.running()]:
            if cycle.complete or cycle.timed_out or now - cycle.clock < limit:
                continue
            if cycle.time_out():
                log.error("Worker %d: %s has run for %.0f s, over --request-timeout (%g s): "
                          "cancelled", self.pid, cycle.request.summary(), now - cycle.clock,
                          limit)
