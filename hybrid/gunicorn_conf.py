"""A gunicorn.conf.py's names, and what each means here.

A Python config file is read with gunicorn's spellings of hybrid's settings
(`keepalive`, `preload_app`...), its server hooks (`hybrid.hooks` calls
them), the settings of gunicorn's that hybrid accepts because what they ask
for is how hybrid works anyway (said once at start), and those it refuses
with what to use instead. `hybrid.sources` reads the file with these tables;
the README's compatibility table and a test keep them complete.
"""

from __future__ import annotations

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
    "logconfig_dict": "log_config_dict", "wsgi_app": "app",
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
}
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
}
