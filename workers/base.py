"""The worker contract every worker class follows.

Lifecycle, and which process runs what:

1. `__init__` runs in the arbiter, before fork. It only stores what the
   arbiter hands over (settings, listening sockets, the heartbeat and the
   status pipe, the app if `--preload` loaded it). It never imports the app.
2. `init_process()` runs in the child right after fork: signal handlers,
   the app import (unless preloaded), then `run()`, which calls
   `report_ready()` once it serves (the asgi class first runs the app's
   lifespan startup); before its first connection, a built-in class calls
   `settle_heap()` (`--gc-freeze`, `hybrid/heap.py`). An app that cannot
   start is reported once over the status pipe (`boot_failed()`) and the
   child exits with BOOT_ERROR, so the arbiter can stop instead of
   respawning a worker that can never start.
3. `run()` is the worker's I/O loop, written by each class. It must call
   `notify()` at least every `HEARTBEAT_INTERVAL` seconds while it is
   healthy; the arbiter kills a worker silent for `--timeout` seconds.
   `run()` returns when `alive` turns False (graceful stop), after
   finishing the requests in flight, and the process exits 0.

Signals in a worker: TERM = graceful stop; INT and QUIT = stop now; ABRT =
the arbiter's timeout kill (logged with what the worker was doing); USR1 =
reopen log files. Handlers only set state or raise; `run()` wakes up through
`wakeup_fd`, which receives a byte for every signal.
"""

from __future__ import annotations

import abc
import os
import random
import signal
import socket
import time
from types import FrameType
from typing import Any, NoReturn

from hybrid import heap, http2_options, logs, proctitle, reuse_port
from hybrid.config import Config, ConfigError
from hybrid.heartbeat import BOOT_ERROR, HANDLED_SIGNALS, Heartbeat, StatusPipe
from hybrid.hooks import NO_HOOKS, Hooks
from hybrid.loader import AppLoadError, load_app_for
from hybrid.logs import error_log as log
from hybrid.metrics import Counters
from hybrid.protocol import set_server_fields
from hybrid.forwarded import ProxyHeaders
from hybrid.addresses import client_address
from hybrid.tls_facts import ServerTLS
from hybrid.wsgi import WorkerExit

REUSE_LOG_INTERVAL = 60.0  # seconds between two log lines about closing idle connections


def _field_bytes(field: str) -> tuple[bytes, bytes]:
    """A --header "name: value" as the response core takes it."""
    name, _, value = field.partition(": ")
    return name.encode("latin-1"), value.encode("latin-1")


class Worker(abc.ABC):
    """One worker process; subclasses implement `run()`."""

    #: The app interfaces this class can serve.
    interfaces: tuple[str, ...] = ("wsgi",)
    #: Whether a connection may carry more than one request.
    keeps_alive: bool = True

    def __init__(self, *, age: int, ppid: int, listeners: list[socket.socket], cfg: Config,
                 heartbeat: Heartbeat, status: StatusPipe, counters: Counters,
                 app: Any = None, tls: ServerTLS | None = None,
                 hooks: Hooks = NO_HOOKS) -> None:
        self.age = age
        self.ppid = ppid
        self.listeners = listeners
        self.cfg = cfg
        self.heartbeat = heartbeat
        self.status = status
        self.counters = counters
        self.stats = counters.row(0)  # what the main thread (or the loop) counts
        self.app = app
        self.tls = tls  # the arbiter's TLS context (--certfile), or None for plain HTTP
        self.hooks = hooks  # a Python config file's server hooks (gunicorn's)
        # Itself, for RequestRunner, when a per-request hook is defined (else None: no cost).
        self.request_hooked = self if ("pre_request" in hooks or "post_request" in hooks) \
            else None
        self.log = log  # (as gunicorn's hooks use it: worker.log.info(...))
        self.alive = True
        if cfg.keep_alive == 0:  # (gunicorn's keepalive = 0: one request a connection)
            self.keeps_alive = False
        self.pid = 0
        self.wakeup_fd = -1
        self._wakeup_write = -1
        self.access_log = logs.AccessLog(cfg.access_logformat)
        self.proxy = ProxyHeaders(cfg.forwarded_allow_ips)
        # --proxy-protocol: the load balancers whose connections begin with its header.
        self.proxy_protocol_peers = ProxyHeaders(cfg.proxy_allow_ips) if cfg.proxy_protocol \
            else None
        self.current_request = ""
        """What the worker is serving now, for the log line if it is killed."""
        self.serving = False  # run() has set up its loop and reported ready
        self._heap_settled = False  # settle_heap() has frozen what booting made
        self.reopen_logs = False
        self._reuse_logged_at = -REUSE_LOG_INTERVAL
        # Requests before this worker asks to be replaced (--max-requests, with
        # its jitter); never reached without it.
        self._requests_left: float = float("inf")
        self._replacement_asked = False
        self._request_limit = 0  # --max-requests plus this worker's share of the jitter
        if cfg.max_requests:
            self._request_limit = cfg.max_requests + random.randint(0, cfg.max_requests_jitter)
            self._requests_left = self._request_limit

    def request_served(self) -> None:
        """Count one request against --max-requests; at the limit, ask the arbiter
        for a replacement and go on serving until it retires this worker."""
        self._requests_left -= 1
        if self._requests_left == 0:
            log.info("Worker %d served %d requests (its --max-requests, jitter included); "
                     "asking for its replacement", self.pid, self._request_limit)
            self.ask_for_replacement("max-requests")

    def ask_for_replacement(self, reason: str) -> None:
        """Ask the arbiter (once) to boot a replacement, then retire this worker."""
        if not self._replacement_asked:
            self._replacement_asked = True
            self.status.recycle(reason)

    def expects_proxy_header(self, peer: object) -> bool:
        """Whether a connection from `peer` (accept()'s address) begins with a
        PROXY protocol header: --proxy-protocol, and a --proxy-allow-ips peer."""
        allowed = self.proxy_protocol_peers
        return allowed is not None and allowed.trusted(client_address(peer)[0])

    def connection_reused(self) -> None:
        """An idle keep-alive connection was closed for a new client: said once a while."""
        now = time.monotonic()
        if now - self._reuse_logged_at >= REUSE_LOG_INTERVAL:
            self._reuse_logged_at = now
            log.warning("Worker %d: --worker-connections (%d) reached; closing idle keep-alive "
                        "connections to make room for new ones", self.pid,
                        self.cfg.worker_connections)

    # --- in the child ---------------------------------------------------------

    def init_process(self) -> None:
        """Set up the child, load the app, then run until stopped."""
        self.pid = os.getpid()
        if self.cfg.reuse_port:
            self.listeners = reuse_port.own_listeners(self.listeners, self.cfg.backlog)
        self._install_signals()
        self.stats.set_class(self.cfg.worker_class)
        set_server_fields(date=self.cfg.date_header, server=self.cfg.server_header,
                          extra=[_field_bytes(field) for field in self.cfg.headers])
        proctitle.set_title(f"worker [{self.cfg.proc_name or self.cfg.app}]")
        try:  # (the class is settled here, an `auto` worker's pick too)
            http2_options.check(self.cfg, self.cfg.worker_class)
        except ConfigError as exc:
            self.boot_failed(str(exc))
        if self.tls is not None:
            http2_options.offer_alpn(self.tls.context, self.cfg, self.cfg.worker_class)
        if self.app is None:
            self.status.loading()
            try:
                self.app = self.load_app()
            except AppLoadError as exc:
                self.boot_failed(str(exc))
        try:
            self.hooks.call_strictly("post_worker_init", self)
        except Exception as exc:
            self.boot_failed(f"the post_worker_init hook failed: {type(exc).__name__}: {exc}")
        self.status.loaded()
        self.notify()
        self.run()

    @property
    def wsgi(self) -> Any:
        """The app (gunicorn's name for it, which hooks use)."""
        return self.app

    def report_ready(self) -> None:
        """Tell the arbiter this worker serves; `run()` calls it once it does."""
        self.serving = True
        self.notify()
        self.status.ready()
        log.info("Worker %d booted (%s)", self.pid, self.cfg.worker_class)

    def settle_heap(self) -> None:
        """Freeze what booting made (`--gc-freeze`), once: a class calls it when
        it has booted and before it takes its first connection, so that no
        request's objects are frozen with it."""
        if self.cfg.gc_freeze and not self._heap_settled:
            self._heap_settled = True
            heap.settle()

    def boot_failed(self, reason: str) -> NoReturn:
        """Report why this worker cannot serve, once, and exit with BOOT_ERROR.
        `reason`'s first line says why; the lines after it, if any, are the app's
        traceback (an `AppLoadError`'s, a failed lifespan startup's), which the
        arbiter logs under that line."""
        summary, _, traceback = reason.partition("\n")
        self.status.boot_error(summary, traceback)
        raise WorkerExit(BOOT_ERROR)

    def load_app(self) -> Any:
        return load_app_for(self.cfg, self.interfaces)

    @abc.abstractmethod
    def run(self) -> None:
        """The I/O loop: serve until `alive` is False, calling `notify()` regularly."""

    def notify(self) -> None:
        """Heartbeat: tell the arbiter this worker's loop is turning."""
        self.heartbeat.beat()

    def parent_changed(self) -> bool:
        """True when the arbiter died and this worker was orphaned."""
        if os.getppid() != self.ppid:
            log.warning("Worker %d lost its arbiter; stopping", self.pid)
            return True
        return False

    # --- signals --------------------------------------------------------------

    def _install_signals(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.wakeup_fd = read_fd
        self._wakeup_write = write_fd
        signal.set_wakeup_fd(write_fd)
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH,
                       signal.SIGUSR2):
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, self._handle_term)
        signal.signal(signal.SIGINT, self._handle_quit)
        signal.signal(signal.SIGQUIT, self._handle_quit)
        signal.signal(signal.SIGABRT, self._handle_abort)
        signal.signal(signal.SIGUSR1, self._handle_usr1)
        # A system call interrupted by TERM resumes; in-flight work completes.
        signal.siginterrupt(signal.SIGTERM, False)
        # The arbiter forked with these blocked; any that came meanwhile run now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)

    def hand_over_signals(self) -> None:
        """Block the signals again and drop this object's wakeup pipe, so that
        another Worker in this process can install its own handlers (which
        unblocks them: what came meanwhile is then handled by that one)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        signal.set_wakeup_fd(-1)
        os.close(self.wakeup_fd)
        os.close(self._wakeup_write)

    def wake(self) -> None:
        """Wake `run()`'s wait on `wakeup_fd` from another thread."""
        try:
            os.write(self._wakeup_write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: it is awake anyway

    def drain_wakeups(self) -> None:
        try:
            while os.read(self.wakeup_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def _handle_term(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False

    def _handle_quit(self, signum: int, frame: FrameType | None) -> None:
        self.hooks.call("worker_int", self)
        raise WorkerExit(0)

    def describe_work(self) -> str:
        """What the worker is doing now, for the log line if it is killed."""
        return self.current_request

    def _handle_abort(self, signum: int, frame: FrameType | None) -> None:
        if self.serving:
            work = self.describe_work()
            doing = f" while serving {work}" if work else ""
        else:  # (describe_work() reads state that exists once run() serves)
            doing = " while loading the app" if self.app is None else " while starting to serve"
        log.error("Worker %d timed out%s; exiting", self.pid, doing)
        self.hooks.call("worker_abort", self)
        raise WorkerExit(1)

    def _handle_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.reopen_logs = True  # not here: the signal may have interrupted a log write

    def tend(self, stamp: float | None = None) -> None:
        """Housekeeping a worker's loop does on every turn: heartbeat, log reopening.

        `stamp`: the time to report as the last sign of progress (default now).
        """
        self.heartbeat.beat(stamp)
        if self.reopen_logs:
            self.reopen_logs = False
            logs.reopen_files()

