"""The arbiter: binds the sockets, forks the workers and keeps them healthy.

It never runs application code (unless `--preload`) and never blocks: one
loop sleeps on a pipe that signals and worker status messages wake, then
reaps children, dispatches queued signals, kills silent workers, advances a
reload and spawns or retires workers until the pool matches the target.
Here are that loop and the arbiter's reactions; what they call on has rooms
of its own (ARCHITECTURE.md lists them).

Signals (handlers only enqueue, through `signal.set_wakeup_fd`: hybrid.signals;
the loop calls `handle_<name>`):

    TERM          graceful stop: workers finish in-flight requests within
                  --graceful-timeout, then exit 0. With --shutdown-delay,
                  first /readyz turns 503 while serving goes on that long
                  (a second TERM, or an INT, ends the delay)
    INT, QUIT     fast stop
    HUP           reload (also what --reload does when a source file
                  changes): re-read the config, start a new generation of
                  workers (re-importing the app unless --preload), and retire
                  the old one once the new one is ready. If the new app
                  cannot boot, the old workers keep serving.
    TTIN, TTOU    one worker more / fewer
    USR1          reopen log files (here and in every worker)
    USR2          upgrade: re-execute the arbiter with the sockets inherited
                  (hybrid.reexec); this one stops once the new one's workers
                  serve, and keeps serving if the new one fails
    CHLD          wake up and reap

A worker that exits before it reports ready is a boot failure. When no
ready worker is left to serve, a boot failure stops the arbiter with exit
status 3 and the worker's reason logged once (the app's traceback under it,
when the app's own code failed), instead of a respawn loop.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections.abc import Mapping
from typing import Any

from hybrid import (
    __version__,
    config,
    logs,
    generations,
    heap,
    metrics,
    native,
    probes,
    process,
    reexec,
    reload,
    sources,
    startup,
    stopping,
    tls,
    tls_facts,
    watchdog,
    worker_process,
    workers,
)
from hybrid.control import ControlServer
from hybrid.heartbeat import BOOT_ERROR
from hybrid.hooks import Hooks
from hybrid.loader import Interrupted
from hybrid.logs import error_log as log
from hybrid.memory_watch import MemoryWatch
from hybrid.process import StartupError
from hybrid.respawn import RespawnPolicy
from hybrid.signals import SignalQueue
from hybrid.worker_process import WorkerProcess

LOOP_INTERVAL = 1.0


class Arbiter:
    def __init__(self, loaded: sources.Loaded, cli_values: Mapping[str, Any],
                 start_dir: str | None = None, app: Any = None) -> None:
        """`app`: the app itself (`hybrid.run()` given one), served as --preload would."""
        self.cfg = loaded.config
        self.start_dir = start_dir or os.getcwd()  # where a USR2 upgrade executes again
        self.sources = loaded.sources
        self.warnings = loaded.warnings
        self.notes = loaded.notes
        self.hooks = Hooks(loaded.hooks)  # a Python config file's server hooks
        self.log = log  # (as gunicorn's hooks use it: server.log.info(...))
        self.cli_values = dict(cli_values)
        self.worker_class = workers.load_class(self.cfg.worker_class)
        self.num_workers = self.cfg.workers
        self.listeners: list[socket.socket] = []
        self.workers: dict[int, WorkerProcess] = {}
        self.app: Any = None
        self.given_app = app
        self.age = 0
        self.generation = 0
        self.stop = stopping.Stop()  # what TERM, INT and QUIT ask, and the arbiter itself
        self.exit_code = 0
        self.respawn = RespawnPolicy()  # when the next worker may be forked
        self.owned_paths: list[str] = []  # UNIX socket files this arbiter created
        self.pid = os.getpid()
        self.signals = SignalQueue()  # what the loop dispatches to handle_<name>
        self.started_at = time.monotonic()
        self.control: ControlServer | None = None
        self.retired = metrics.Totals()  # the counts of workers that have exited
        self.restarts: dict[str, int] = dict.fromkeys(worker_process.RESTART_REASONS, 0)
        self.memory_watch = MemoryWatch()  # --max-worker-memory
        self.usr2 = reexec.Usr2(self.cfg.pid)  # the pid file, and an upgrade either way
        self.identity: tuple[int, int] | None = None  # (uid, gid) of the workers: --user
        self.watcher: reload.Watcher | None = None  # --reload
        self.watched_at = 0.0
        self.tls: tls_facts.ServerTLS | None = None  # --certfile's, read again on each reload
        self.environment = startup.Environment()  # --env, --env-file

    # --- lifecycle ----------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; return the process exit status."""
        try:
            self._start()
        except BaseException:
            self._close_listeners()
            if self.control is not None:
                self.control.close()
            if self.usr2.pidfile:
                process.remove_pidfile(self.usr2.pidfile, self.pid)
            raise
        try:
            while not self.stop.requested:
                self._sleep()
                self._reap()
                self._dispatch_signals()
                self.stop.check_delay()
                if self.stop.requested:
                    break
                watchdog.kill_silent(list(self.workers.values()), self.cfg.timeout,
                                     self.cfg.graceful_timeout)
                self._reload_on_changes()
                self._manage_workers()
                if self.usr2.hand_over is not None and self.readiness()[0]:
                    self.owned_paths += self.usr2.serving()
        finally:
            self._shutdown()
        return self.exit_code

    def _start(self) -> None:
        cfg = self.cfg
        passed = os.environ.pop(reexec.CONTROL_FD_VARIABLE, "")
        if cfg.umask is not None:
            os.umask(cfg.umask)
        process.raise_descriptor_limit()
        self.identity = startup.worker_identity(cfg)
        try:
            self.environment.apply(cfg)
        except config.ConfigError as exc:
            raise StartupError(str(exc)) from None
        self.hooks.call("nworkers_changed", self, self.num_workers, None)
        self._strict_hook("on_starting", self)
        try:
            self.tls = tls.load(cfg, self.hooks)
        except config.ConfigError as exc:
            raise StartupError(str(exc)) from None
        startup.set_title_and_output(cfg)
        self.usr2.hand_over = reexec.HandOver.from_environment()
        self.usr2.upgraded_paths = startup.open_listeners(cfg, self.listeners, self.owned_paths)
        control = startup.control_listener(cfg, passed, self.owned_paths)
        if control is not None:
            self.control = ControlServer(control, self)
        if cfg.pid:
            process.write_pidfile(cfg.pid, self.pid)
        log.info("Starting hybrid %s (arbiter pid %d)", __version__, self.pid)
        log.info("Using the %s build", native.build().describe())
        for warning in self.warnings:
            log.warning("%s", warning)
        for note in self.notes:
            log.info("%s", note)
        startup.log_listeners(cfg, self.listeners, self.control, self.tls)
        log.info("Using worker class: %s%s", cfg.worker_class,
                 startup.worker_class_note(cfg, self.sources["worker_class"]))
        try:
            self.app, self.cfg, self.worker_class = startup.app_before_fork(
                cfg, self.worker_class, self.given_app)
        except Interrupted as interrupted:
            log.info("Received %s while importing the app: stopping", interrupted.args[0])
            self.stop.requested = True
            return
        if self.app is not None and self.cfg.gc_freeze:
            heap.settle()  # (before the forks: the workers' collections leave it shared)
        if cfg.reload:
            self.watcher = reload.Watcher(list(cfg.reload_dirs) or [os.getcwd()],
                                          cfg.reload_include)
            log.info("Watching for changes in %s (--reload)", ", ".join(self.watcher.directories))
        self.signals.install()
        self._strict_hook("when_ready", self)
        self._manage_workers()

    def _strict_hook(self, name: str, *args: Any) -> None:
        """A hook whose failure stops the start (logged with its traceback)."""
        try:
            self.hooks.call_strictly(name, *args)
        except Exception as exc:
            raise StartupError(f"the {name} hook failed: {type(exc).__name__}: {exc}") from None

    @property
    def WORKERS(self) -> dict[int, WorkerProcess]:  # noqa: N802 (gunicorn's name, for hooks)
        return self.workers

    def _shutdown(self) -> None:
        """Stop every worker (gracefully on TERM), close sockets, remove the pid file."""
        graceful = self.exit_code == 0 and self.stop.graceful
        self._close_listeners()
        # (/readyz answers 503 meanwhile)
        stopping.stop_workers(self.workers, graceful, self.cfg.graceful_timeout, self.signals,
                              self._reap, self._sleep)
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.usr2.pidfile:
            process.remove_pidfile(self.usr2.pidfile, self.pid)
        self.hooks.call("on_exit", self)
        log.info("Shutting down: %s", "done" if self.exit_code == 0 else f"exit status {self.exit_code}")

    def _close_listeners(self) -> None:
        for listener in self.listeners:
            listener.close()
        for path in self.owned_paths:  # never a path we did not create (fd://, systemd)
            try:
                os.unlink(path)
            except OSError:
                pass

    # --- the loop's steps --------------------------------------------------------

    def _sleep(self, timeout: float = LOOP_INTERVAL) -> None:
        fds = [self.signals.read_fd] + [w.status.read_fd for w in self.workers.values()]
        fds += self.usr2.read_fds()
        write_fds: list[int] = []
        control = self.control
        now = time.monotonic()
        if control is not None:
            fds += control.read_fds()
            write_fds = control.write_fds()
            deadline = control.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
        if self.stop.at is not None:
            timeout = min(timeout, max(0.0, self.stop.at - now))
        if self.watcher is not None:
            timeout = min(timeout, max(0.0, self.watched_at + reload.RELOAD_INTERVAL - now))
        try:
            readable, writable, _ = select.select(fds, write_fds, [], timeout)
        except InterruptedError:
            return
        if control is not None:
            control.handle(readable, writable)
        if self.signals.read_fd in readable:
            self.signals.read()
        for worker in list(self.workers.values()):
            if worker.status.read_fd in readable:
                self._read_status(worker)
        if self.usr2.new_one_serves(readable, self.cfg.pid):
            self.owned_paths = []  # the sockets' files are the new arbiter's now
            self.stop.now(graceful=True)

    def _read_status(self, worker: WorkerProcess) -> None:
        if worker.read_status():
            self.respawn.booted()

    def _dispatch_signals(self) -> None:
        while not self.stop.requested and (name := self.signals.next_name()) is not None:
            getattr(self, f"handle_{name}")()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                self.usr2.reaped(pid, status, self.cfg.pid)
                continue
            self._read_status(worker)
            self.hooks.call("child_exit", self, worker)
            self.retired.add(worker.counters.read(), counters_only=True)
            worker.close_channels()
            self._on_exit(worker, os.waitstatus_to_exitcode(status))

    def _on_exit(self, worker: WorkerProcess, code: int) -> None:
        if not worker.ready and not self.stop.requested and worker.retiring_since is None:
            self._on_boot_failure(worker, code)
            return
        if worker.recycle and not self.stop.requested:
            self.restarts[worker.recycle] += 1
        elif worker.retiring_since is None and not self.stop.requested:
            self.restarts["timeout" if worker.aborted_at is not None else "crash"] += 1
            self.respawn.crashed(time.monotonic() - (worker.ready_at or time.monotonic()))
        elif worker.generation != self.generation:
            self.restarts["reload"] += 1
        worker.log_exit(code)

    def _on_boot_failure(self, worker: WorkerProcess, code: int) -> None:
        serving = generations.may_yet_serve(self.workers.values(), worker)
        failure = self.respawn.boot_failure(worker, code, others_serve=bool(serving))
        if failure is None:
            return
        if not serving:
            log.error("Worker failed to boot: %s", failure.shown)
            self.exit_code = BOOT_ERROR
            self.stop.requested = True
            return
        self.respawn.back_off(failure, len(serving))
        if worker.generation == self.generation and any(
                w.generation != self.generation for w in serving):
            generations.reload_failed(self.workers.values(), serving, self.generation)

    def _manage_workers(self) -> None:
        for worker in self.memory_watch.over(list(self.workers.values()),
                                             self.cfg.max_worker_memory):
            worker.recycle_for("memory")
        missing, retiring = generations.balance(self.workers.values(), self.generation, self.num_workers)
        if self.respawn.may_spawn():
            for _ in range(missing):
                try:
                    self._spawn()
                except OSError as exc:  # out of descriptors, memory or processes
                    log.error("Cannot start a worker: %s; retrying in 1 s", exc)
                    self.respawn.wait(1)
                    break
        for worker in retiring:
            worker.retire()

    # --- workers -----------------------------------------------------------------

    def _spawn(self) -> None:
        self.age += 1
        # Rows for the main thread and the pool's; none when nothing reads them.
        channels = worker_process.open_channels(rows=1 + self.cfg.threads if self.control else 0)
        heartbeat, status, counters = channels
        try:
            worker = self.worker_class(age=self.age, ppid=self.pid, listeners=self.listeners,
                                       cfg=self.cfg, heartbeat=heartbeat, status=status,
                                       counters=counters, app=self.app, tls=self.tls,
                                       hooks=self.hooks)
            self.hooks.call("pre_fork", self, worker)
            pid = worker_process.fork()
        except OSError:
            for channel in channels:  # (no descriptor leaks on each retry)
                channel.close()
            raise
        if pid == 0:
            worker_process.become_worker(worker, status, self, self.hooks, self.identity,
                                         self.cfg.user, self._drop_arbiter_state)
        status.close_write_end()
        self.workers[pid] = WorkerProcess(pid, self.age, self.generation, heartbeat, status,
                                          counters)
        log.info("Booting worker with pid %d", pid)

    def _drop_arbiter_state(self) -> None:
        """In a forked worker: the arbiter's descriptors are not the worker's."""
        self.signals.close_in_child()
        if self.control is not None:
            self.control.close()
        for other in self.workers.values():
            other.close_channels()

    # --- what the control endpoint reports (hybrid.control.Probe) -------------------

    def liveness(self) -> tuple[bool, str]:
        return probes.liveness(self.workers.values(), self.cfg.timeout)

    def readiness(self) -> tuple[bool, str]:
        return probes.readiness(self.workers.values(), self.num_workers, self.stop.requested,
                                self.stop.at)

    def metrics(self) -> str:
        return probes.metrics_text(self.workers.values(), self.retired, self.restarts,
                                   self.started_at, self.num_workers)

    # --- signal handlers (run from the loop, not from the signal) -----------------

    def handle_chld(self) -> None:
        """Reaping happens on every loop turn; the signal only wakes the loop."""

    def handle_term(self) -> None:
        self.stop.term(self.cfg.shutdown_delay)

    def handle_int(self) -> None:
        self.stop.interrupt()

    def handle_quit(self) -> None:
        self.stop.quit()

    def handle_ttin(self) -> None:
        self._set_worker_count(self.num_workers + 1)
        log.info("Received TTIN: %d workers", self.num_workers)

    def handle_ttou(self) -> None:
        self._set_worker_count(max(1, self.num_workers - 1))
        log.info("Received TTOU: %d workers", self.num_workers)

    def _set_worker_count(self, count: int) -> None:
        old, self.num_workers = self.num_workers, count
        if count != old:
            self.hooks.call("nworkers_changed", self, count, old)

    def handle_usr1(self) -> None:
        logs.reopen_files()
        log.info("Received USR1: log files reopened")
        for worker in self.workers.values():
            worker.send(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        control = self.control.listener if self.control is not None else None
        self.usr2.begin(self.listeners, control, self.start_dir, self.owned_paths, self.cfg.pid,
                        shutting_down=self.stop.at is not None,
                        pre_exec=lambda: self.hooks.call("pre_exec", self))

    def _reload_on_changes(self) -> None:
        now = time.monotonic()
        if self.watcher is None or now - self.watched_at < reload.RELOAD_INTERVAL:
            return
        self.watched_at = now
        changed = self.watcher.changed()
        if changed:
            shown = ", ".join(os.path.relpath(path) for path in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            log.info("Changed: %s%s; reloading (--reload)", shown, more)
            self._reload()

    def handle_hup(self) -> None:
        log.info("Received HUP: reloading")
        self._reload()

    def _reload(self) -> None:
        """Re-read the config and start a new generation of workers."""
        self.hooks.call("on_reload", self)
        new = startup.reread(self.cli_values, self.cfg, self.app, self.environment)
        if new is None:
            return
        self.cfg = new.cfg
        self.tls = new.tls
        self.hooks = new.hooks
        self.worker_class = new.worker_class
        self._set_worker_count(new.cfg.workers)
        self.generation += 1
        # New code deserves a try at once, whatever the last one's boot failures.
        self.respawn.reloaded()
