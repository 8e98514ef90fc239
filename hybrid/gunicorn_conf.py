"""A gunicorn.conf.py's names, and what each means here.

A Python config file is read with gunicorn's spellings of hybrid's settings
(`keepalive`, `preload_app`...), its server hooks (`hybrid.hooks` calls
them), the settings of gunicorn's that hybrid accepts because what they ask
for is how hybrid works anyway (said once at start), and those it refuses
with what to use instead, unless they are set to gunicorn's default. `hybrid.sources` reads the file with these tables;
the README's compatibility table and a test keep them complete.
"""

from __future__ import annotations

import os
from typing import Any

from hybrid.validators import MAX_WS_MESSAGE

# gunicorn's server hooks, which a Python config file may define (hybrid.hooks calls them).
HOOK_NAMES = ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
              "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
              "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit",
              "ssl_context")


# gunicorn.conf.py's names for hybrid's settings (where they differ).
GUNICORN_FILE_NAMES = {
    "keepalive": "keep_alive", "preload_app": "preload", "raw_env": "env", "pidfile": "pid",
    "accesslog": "access_logfile", "access_log_format": "access_logformat",
    "errorlog": "error_logfile", "loglevel": "log_level", "logconfig": "log_config",
    "logconfig_dict": "log_config_dict", "wsgi_app": "app", "asgi_lifespan": "lifespan",
    "asgi_loop": "loop", "websocket_max_message_size": "ws_max_size",
}
# gunicorn.conf.py names that are accepted, with what they do here.
GUNICORN_FILE_ACCEPTED = {
    "worker_tmp_dir": "no temporary file is made: heartbeats go through shared memory",
    "enable_stdio_inheritance": "workers always write to the arbiter's stdout and stderr",
    "do_handshake_on_connect": "the TLS handshake is always done as a connection opens",
    "suppress_ragged_eofs": "a TLS connection cut without close_notify counts as closed",
    "reload_engine": "--reload polls the files every 0.5 s",
    "permit_unconventional_http_method": "any RFC 9110 token is a method here",
    "initgroups": "with --user, the workers always get that user's supplementary groups",
    "tmp_upload_dir": "request bodies are streamed to the app, never stored",
    "default_proc_name": "the process titles name --proc-name, or the app",
    "check_config": "use `hybrid check APP`",
    "print_config": "use `hybrid check APP`",
    "asgi_disconnect_grace_period": "an app's task is not cancelled when its client leaves: "
                                    "it gets http.disconnect and finishes in its own time "
                                    "(within request_timeout, when set)",
    "http_parser": "requests are always parsed by hybrid's own strict HTTP/1.1 core "
                   "(httptools underneath)",
    "control_socket_disable": "there is no control socket: signals and --control-bind's "
                              "endpoints control hybrid",
}
# Answers that several of the names refused below share.
_CONTROL = ("hybrid has no control socket (nor gunicornc): signal the arbiter (HUP, TTIN, TTOU, "
            "TERM) and read /livez, /readyz and /metrics from --control-bind")
_DIRTY = ("hybrid has no pool of dirty workers: run heavy work in a task queue (Celery, RQ, "
          "Dramatiq) or a separate service the app calls")
_UWSGI = "hybrid speaks HTTP only, not uWSGI's protocol: have nginx proxy_pass, not uwsgi_pass"
# gunicorn.conf.py names refused when set to anything but their default, and why.
GUNICORN_FILE_REFUSED = {
    "daemon": "hybrid stays in the foreground: run it under systemd, Docker or supervisord",
    "statsd_host": "hybrid has no StatsD client: scrape /metrics from --control-bind",
    "paste": "PasteDeploy files are not read: give the app as module:attribute",
    "logger_class": "use logconfig_dict (--log-config-dict) to change how hybrid logs",
    "syslog": "use logconfig_dict with a logging.handlers.SysLogHandler",
    "reload_extra_files": "use reload_include (--reload-include GLOB)",
    "secure_scheme_headers": "forwarded_allow_ips names the proxies whose X-Forwarded-Proto "
                             "and Forwarded are believed",
    "forwarder_headers": "forwarded_allow_ips names the proxies whose X-Forwarded-For, "
                         "X-Forwarded-Proto and Forwarded are believed",
    "statsd_prefix": "hybrid has no StatsD client: scrape /metrics from --control-bind",
    "dogstatsd_tags": "hybrid has no StatsD client: scrape /metrics from --control-bind",
    "syslog_addr": "use logconfig_dict with a logging.handlers.SysLogHandler",
    "syslog_prefix": "use logconfig_dict with a logging.handlers.SysLogHandler",
    "syslog_facility": "use logconfig_dict with a logging.handlers.SysLogHandler",
    "disable_redirect_access_to_syslog": "use logconfig_dict with a SysLogHandler",
    "raw_paste_global_conf": "PasteDeploy files are not read",
    "spew": "no line tracing: use a profiler (py-spy)",
    "strip_header_spaces": "whitespace before a field's colon is rejected (RFC 9112, 5.1)",
    "casefold_http_method": "methods are case-sensitive (RFC 9110, 9.1)",
    "permit_unconventional_http_version": "HTTP/1.0 and HTTP/1.1 only",
    "permit_obsolete_folding": "obsolete line folding is rejected (RFC 9112, 5.2)",
    "tolerate_dangerous_framing": "ambiguous framing is always rejected: it smuggles requests",
    "enable_backlog_metric": "hybrid has no StatsD client: scrape /metrics from --control-bind",
    "protocol": _UWSGI, "uwsgi_allow_ips": _UWSGI,
    "control_socket": _CONTROL, "control_socket_mode": _CONTROL,
    "dirty_apps": _DIRTY, "dirty_workers": _DIRTY, "dirty_threads": _DIRTY,
    "dirty_timeout": _DIRTY, "dirty_graceful_timeout": _DIRTY,
    # (the dirty workers' server hooks: no such worker runs here to call them)
    "on_dirty_starting": _DIRTY, "dirty_post_fork": _DIRTY, "dirty_worker_init": _DIRTY,
    "dirty_worker_exit": _DIRTY,
}
# gunicorn's defaults (27) for the names above that have one besides "not set".
_REFUSED_DEFAULTS: dict[str, Any] = {
    "protocol": "http", "uwsgi_allow_ips": "127.0.0.1,::1", "control_socket_mode": 0o600,
    "dirty_threads": 1, "dirty_timeout": 300, "dirty_graceful_timeout": 30,
}


def is_gunicorns_default(name: str, value: Any) -> bool:
    """Whether `value`, set for a name in GUNICORN_FILE_REFUSED, is no value at all
    or gunicorn's default: what a file may say of a setting hybrid does not have."""
    if value in (None, False, "", [], (), {}):
        return True
    default = _control_socket() if name == "control_socket" else _REFUSED_DEFAULTS.get(name)
    return default is not None and _items(value) == _items(default)


def _control_socket() -> str:
    """gunicorn's default control_socket: in $XDG_RUNTIME_DIR, else in ~/.gunicorn."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not (runtime and os.path.isdir(runtime)):
        runtime = os.path.join(os.path.expanduser("~"), ".gunicorn")
    return os.path.join(runtime, "gunicorn.ctl")


def _items(value: Any) -> list[str]:
    """A value as gunicorn's validators read it: a comma list or a sequence as its
    items, anything else as its one item ("300" and 300 alike)."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in (items if isinstance(items, (list, tuple)) else [items])]


def websocket_max_message_size(value: Any) -> Any:
    """gunicorn's websocket_max_message_size as hybrid's ws_max_size takes it: its 0,
    no limit, is hybrid's largest (a message is held in memory whole)."""
    return MAX_WS_MESSAGE if str(value).strip() == "0" else value


def value_for_hybrid(name: str, value: Any) -> Any:
    """The value a gunicorn.conf.py gives `name` (one of GUNICORN_FILE_NAMES, or
    hybrid's own) as hybrid's setting of that meaning takes it."""
    return websocket_max_message_size(value) if name == "websocket_max_message_size" else value
