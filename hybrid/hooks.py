"""gunicorn's server hooks: the functions a Python config file (a
`gunicorn.conf.py`) defines, called at the same moments with the same
arguments as gunicorn calls them.

    on_starting(server)        arbiter, before it binds            failure stops the start
    when_ready(server)         arbiter, bound, before workers      failure stops the start
    on_reload(server)          arbiter, on HUP, before reloading
    pre_fork(server, worker)   arbiter, before each fork           (worker.pid is 0 yet)
    post_fork(server, worker)  worker, right after fork            failure: the worker cannot boot
    post_worker_init(worker)   worker, the app loaded              failure: the worker cannot boot
    worker_int(worker)         worker, on INT or QUIT
    worker_abort(worker)       worker, on ABRT (--timeout passed)
    pre_request(worker, req)   sync and thread, before the app     failure: the request gets 500
    post_request(worker, req, environ, resp)  after the answer
    worker_exit(server, worker)  worker, as it exits
    child_exit(server, worker)   arbiter, once a worker has exited
    nworkers_changed(server, new_value, old_value)   TTIN, TTOU, a reload's -w
    pre_exec(server)           arbiter, before USR2 starts the new one
    on_exit(server)            arbiter, as it exits
    ssl_context(config, default_ssl_context_factory)  returns the SSLContext to serve with

`server` is the arbiter (`.log`, `.pid`, `.cfg`, `.num_workers`,
`.WORKERS`), `worker` the worker (`.log`, `.pid`, `.ppid`, `.age`, `.cfg`,
`.alive`, `.wsgi`); `req` and `resp` (`HookRequest`, `HookResponse`) carry
the attributes of gunicorn's that hooks read. A hook that raises is logged
with its traceback; only those marked above have more effect. The asgi
class does not call pre_request and post_request (as gunicorn's uvicorn
worker does not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hybrid.logs import error_log as log
from hybrid.protocol import REASONS, Request


class Hooks:
    """The hooks one config file defines."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self._functions = dict(functions)

    def __contains__(self, name: str) -> bool:
        return name in self._functions

    def get(self, name: str) -> Callable[..., Any] | None:
        return self._functions.get(name)

    def call(self, name: str, *args: Any) -> None:
        """Call hook `name` if defined; a failure is logged, nothing more."""
        function = self._functions.get(name)
        if function is None:
            return
        try:
            function(*args)
        except Exception:
            log.exception("The %s hook failed", name)

    def call_strictly(self, name: str, *args: Any) -> Any:
        """Call hook `name` if defined and return what it returns; a failure is
        logged and raised again (for the hooks whose failure stops something)."""
        function = self._functions.get(name)
        if function is None:
            return None
        try:
            return function(*args)
        except Exception:
            log.exception("The %s hook failed", name)
            raise


NO_HOOKS = Hooks({})


class HookRequest:
    """A request as gunicorn's hooks read it (gunicorn's `Request`)."""

    def __init__(self, request: Request, client: tuple[str, str], scheme: str) -> None:
        self.method = request.method
        self.uri = request.target.decode("latin-1")
        self.path = request.path.decode("latin-1")
        self.query = request.query.decode("latin-1")
        self.fragment = ""
        major, _, minor = request.http_version.partition(".")
        self.version = (int(major), int(minor or 0))
        self.headers = [(name.decode("latin-1").upper(), value.decode("latin-1"))
                        for name, value in request.headers]
        self.scheme = scheme
        self.remote_addr = self.peer_addr = client


class HookResponse:
    """An answer as post_request reads it (gunicorn's `Response`)."""

    def __init__(self, status: int, sent: int) -> None:
        self.status_code = status
        self.status = f"{status} {REASONS.get(status, b'').decode('latin-1')}".rstrip()
        self.sent = self.response_length = sent
