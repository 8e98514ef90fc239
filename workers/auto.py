"""The `auto` worker class (the default): the app's interface picks the class.

The arbiter never imports the app (unless --preload), so it cannot know
whether an app is WSGI or ASGI. An `AutoWorker` is forked like any worker;
in the child it imports the app, and hands the process to the class that
serves it: `sync` for a WSGI app, `asgi` for an ASGI one (give `-k` for
another). During the import it handles signals as every worker does (INT
and QUIT stop it, ABRT is the timeout kill); a TERM that came meanwhile is
passed on, so the serving worker stops as soon as it has started. With
--preload the arbiter picks the class itself (`hybrid.workers.class_for()`),
before forking.
"""

from __future__ import annotations

import dataclasses
import os

from hybrid.loader import AppLoadError, app_interface
from hybrid.logs import error_log as log
from hybrid.workers import AUTO, class_for, ignored_by_the_pick, load_class
from hybrid.workers.base import Worker


class AutoWorker(Worker):
    """Loads the app, then becomes the worker class its interface calls for."""

    interfaces = ("wsgi", "asgi")

    def init_process(self) -> None:
        self.pid = os.getpid()
        self._install_signals()
        app = self.app  # (preloaded: a reload under --preload keeps the old app)
        if app is None:
            self.status.loading()
            try:
                app = self.load_app()
            except AppLoadError as exc:
                self.boot_failed(str(exc))
        interface = app_interface(app, self.cfg.interface)
        name = class_for(AUTO, interface)
        log.info("Worker %d serves %s, a%s %s app, with the %r worker class", self.pid,
                 self.cfg.app, "n" if interface == "asgi" else "", interface.upper(), name)
        for warning in ignored_by_the_pick(name, self.cfg):
            log.warning("Worker %d: %s", self.pid, warning)
        worker = load_class(name)(
            age=self.age, ppid=self.ppid, listeners=self.listeners,
            cfg=dataclasses.replace(self.cfg, worker_class=name), heartbeat=self.heartbeat,
            status=self.status, counters=self.counters, app=app, tls=self.tls, hooks=self.hooks)
        worker.alive, worker.reopen_logs = self.alive, self.reopen_logs
        self.hand_over_signals()
        worker.init_process()

    def run(self) -> None:
        """Never called: `init_process()` runs the chosen class instead."""
        raise AssertionError("AutoWorker.run")
