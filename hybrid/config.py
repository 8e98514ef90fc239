"""Every setting, declared once.

`Config` is a frozen dataclass; each field's metadata is a `Setting` that
holds the command-line flags, the validator (`hybrid.validators`) and the
help text and the section it belongs to (`SECTIONS`: `--help` and the
settings page group the settings by them). The environment variable is
`HYBRID_<NAME>` and the config-file key is the field name, so the CLI, the
environment, TOML / Python config files, `hybrid check` and the docs' settings
reference (`hybrid.reference`) are all derived from this one table. `hybrid.sources` reads those sources and merges them, in the
order `PRECEDENCE` states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid import validators
from hybrid.protocol import Limits


class ConfigError(Exception):
    """A bad setting; the message is one line for people."""


# --- the table ---------------------------------------------------------------

# The groups a user looks for a setting in, in the order `--help` and the
# settings page show them; the table keeps each group's settings together.
SECTIONS = (
    "Serving", "The application", "Config files and environment", "Timeouts and shutdown",
    "Connections and responses", "Request limits and bodies", "Proxies and client addresses",
    "TLS", "HTTP/2", "WebSockets", "Logging", "Health checks and metrics", "Worker recycling",
    "Reload", "Server mechanics",
)
(SERVING, APPLICATION, FILES, TIMEOUTS, CONNECTIONS, LIMITS, PROXIES, TLS, HTTP2, WEBSOCKETS,
 LOGGING, PROBES, RECYCLING, RELOAD, MECHANICS) = SECTIONS


@dataclass(frozen=True)
class Setting:
    flags: tuple[str, ...]
    parse: Callable[[Any], Any]
    help: str
    section: str  # one of SECTIONS
    metavar: str | None = None
    repeat: bool = False  # the flag may be given several times
    switch: bool = False  # a flag without a value that turns the setting on


def setting(default: Any, *flags: str, parse: Callable[[Any], Any], help: str, section: str,
            metavar: str | None = None, repeat: bool = False, switch: bool = False) -> Any:
    if isinstance(parse, validators.Bounded):
        help = f"{help}; accepted: {parse.bounds}"
    meta = {"setting": Setting(flags, parse, help, section, metavar, repeat, switch)}
    return field(default=default, metadata=meta)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# uvicorn's trace is below debug: debug is the most hybrid says.
_LOG_LEVEL_SPELLINGS = {"trace": "debug", "warn": "warning", "fatal": "critical"}
DEFAULT_ACCESS_LOGFORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


@dataclass(frozen=True)
class Config:
    app: str | None = setting(
        None, "APP", parse=validators.optional_text, metavar="APP",
        help="the application: 'module:attribute', 'module:attr.sub' or 'module:factory()'",
        section=SERVING)
    bind: tuple[str, ...] = setting(
        ("127.0.0.1:8000",), "-b", "--bind", parse=validators.bind_list, repeat=True, metavar="ADDRESS",
        help="HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N; repeat for several "
             "(default 0.0.0.0:$PORT when PORT is set)", section=SERVING)
    workers: int = setting(
        1, "-w", "--workers", parse=validators.worker_count, metavar="N",
        help="number of worker processes (default $WEB_CONCURRENCY when set)", section=SERVING)
    worker_class: str = setting(
        "auto", "-k", "--worker-class", parse=validators.stripped_text, metavar="CLASS",
        help="worker class: auto (sync for a WSGI app, asgi for an ASGI app), sync, thread "
             "(alias gthread), asgi, or 'module:Class'; gunicorn's spellings of its sync and "
             "gthread classes and uvicorn's worker (uvicorn.workers.UvicornWorker) select "
             "ours; gevent and eventlet are refused, naming what to use", section=SERVING)
    threads: int = setting(
        4, "--threads", parse=validators.whole(1, validators.MAX_THREADS), metavar="N",
        help="threads per worker: the thread class's pool, and the asgi class's pool for a "
             "WSGI app (4: a slow call does not hold up the rest, and few threads contend for "
             "the GIL; raise it for apps that wait on I/O); given with the sync class, more "
             "than 1 switches to the thread class, as gunicorn does", section=SERVING)
    loop: str = setting(
        "uvloop", "--loop", parse=validators.spelled(("uvloop", "asyncio"), {"auto": "uvloop"}),
        metavar="LOOP", help="event loop for the asgi class: uvloop or asyncio (uvicorn's "
                             "auto: uvloop)", section=SERVING)
    interface: str = setting(
        "auto", "--interface", parse=validators.spelled(("auto", "wsgi", "asgi"), {"asgi3": "asgi"}),
        metavar="KIND", help="the app's interface: auto, wsgi or asgi (uvicorn's asgi3: asgi)",
        section=APPLICATION)
    factory: bool = setting(
        False, "--factory", parse=validators.boolean, switch=True,
        help="APP names a function that returns the application", section=APPLICATION)
    lifespan: str = setting(
        "auto", "--lifespan", parse=validators.choice("auto", "on", "off"), metavar="MODE",
        help="ASGI lifespan: auto (use it if the app supports it), on (a failed startup "
             "stops the server), off", section=APPLICATION)
    root_path: str = setting(
        "", "--root-path", parse=validators.root_path, metavar="PATH",
        help="the prefix the app is mounted under (WSGI SCRIPT_NAME)", section=APPLICATION)
    chdir: str | None = setting(
        None, "--chdir", parse=validators.optional_text, metavar="DIR",
        help="change to this directory before importing the app", section=APPLICATION)
    pythonpath: tuple[str, ...] = setting(
        (), "--pythonpath", "--app-dir", parse=validators.text_list, metavar="DIRS",
        help="comma-separated directories to put first on sys.path", section=APPLICATION)
    preload: bool = setting(
        False, "--preload", parse=validators.boolean, switch=True,
        help="import the app in the arbiter before forking (shares memory; "
             "a reload then keeps the old code)", section=APPLICATION)
    config: str | None = setting(
        None, "-c", "--config", parse=validators.optional_text, metavar="FILE",
        help="a TOML (.toml) or Python (.py) config file whose keys are these settings' names",
        section=FILES)
    env: tuple[str, ...] = setting(
        (), "-e", "--env", parse=validators.assignments, repeat=True, metavar="NAME=VALUE",
        help="set an environment variable for the app (in the arbiter, before anything is "
             "imported, so every worker has it); repeat for several", section=FILES)
    env_file: str | None = setting(
        None, "--env-file", parse=validators.optional_text, metavar="FILE",
        help="read NAME=VALUE lines (a .env file: # comments, 'export', quotes) into the "
             "app's environment at start, and again on HUP; a variable set before hybrid "
             "started keeps its value", section=FILES)
    timeout: float = setting(
        30.0, "-t", "--timeout", parse=validators.seconds, metavar="SECONDS",
        help="a worker silent for this long is killed and replaced (0 disables)", section=TIMEOUTS)
    graceful_timeout: float = setting(
        30.0, "--graceful-timeout", "--timeout-graceful-shutdown", parse=validators.seconds, metavar="SECONDS",
        help="after a stop or reload, how long workers may finish in-flight requests", section=TIMEOUTS)
    shutdown_delay: float = setting(
        0.0, "--shutdown-delay", parse=validators.seconds, metavar="SECONDS",
        help="on TERM, keep serving this long with /readyz answering 503 (so that an "
             "orchestrator stops routing here), then stop gracefully", section=TIMEOUTS)
    request_timeout: float = setting(
        0.0, "--request-timeout", parse=validators.seconds, metavar="SECONDS",
        help="the longest an app may take over one request (0: no limit; the worker's "
             "heartbeat and --timeout are apart from it): the client gets a 504, or the "
             "connection is cut if the answer had begun; asgi cancels the app's task; the "
             "thread class and the bridge leave the call to end in its thread, and a worker "
             "whose threads are all stuck so is replaced; sync replaces the worker (uWSGI's "
             "harakiri)", section=TIMEOUTS)
    header_timeout: float = setting(
        10.0, "--header-timeout", parse=validators.positive_seconds, metavar="SECONDS",
        help="a client has this long to send a whole request head (slowloris guard); "
             "then it gets 408 and the connection closes", section=TIMEOUTS)
    body_timeout: float = setting(
        30.0, "--body-timeout", parse=validators.positive_seconds, metavar="SECONDS",
        help="longest wait for the next piece of a request body before the read fails "
             "(408); a wait per read, not a budget: a body trickled within it each time "
             "is never cut (see --body-min-rate)", section=TIMEOUTS)
    body_min_rate: int = setting(
        0, "--body-min-rate", parse=validators.whole(0, validators.MAX_RATE, " bytes a second"), metavar="BYTES",
        help="once a request body has waited for the client longer than --body-timeout "
             "in all, it must average this many bytes a second over that waiting, or "
             "the read fails (408); time the app takes to read does not count (0: off)",
        section=TIMEOUTS)
    worker_connections: int = setting(
        1000, "--worker-connections", parse=validators.whole(1, validators.MAX_CONNECTIONS), metavar="N",
        help="most open connections per worker (thread and asgi classes); at the bound "
             "a new client takes the place of the longest-idle keep-alive connection, and "
             "while none is idle the worker stops accepting (the kernel queues the rest "
             "for any worker)", section=CONNECTIONS)
    keep_alive: float = setting(
        5.0, "--keep-alive", "--timeout-keep-alive", parse=validators.seconds, metavar="SECONDS",
        help="close a kept-alive connection idle this long (0: no keep-alive, each "
             "connection closes after its response, as gunicorn's 0)", section=CONNECTIONS)
    backlog: int = setting(
        2048, "--backlog", parse=validators.whole(1, validators.MAX_BACKLOG), metavar="N",
        help="the listen queue length of each socket", section=CONNECTIONS)
    reuse_port: bool = setting(
        False, "--reuse-port", parse=validators.boolean, switch=True,
        help="each worker listens on a TCP socket of its own (SO_REUSEPORT), so the kernel "
             "spreads new connections evenly over the workers; connections still queued "
             "on a worker that stops are reset, unless the kernel migrates them "
             "(sysctl net.ipv4.tcp_migrate_req=1, Linux 5.14+)", section=CONNECTIONS)
    server_header: bool = setting(
        True, "--server-header", parse=validators.boolean, switch=True,
        help="send 'Server: hybrid' in every response (--no-server-header: none, unless the "
             "app sends its own)", section=CONNECTIONS)
    date_header: bool = setting(
        True, "--date-header", parse=validators.boolean, switch=True,
        help="send a Date field in every response, as RFC 9110 asks of a server with a "
             "clock (--no-date-header: none, unless the app sends its own)", section=CONNECTIONS)
    headers: tuple[str, ...] = setting(
        (), "--header", parse=validators.header_fields, repeat=True, metavar="NAME:VALUE",
        help="a header field added to every response (uvicorn's --header); repeat for several",
        section=CONNECTIONS)
    sendfile: bool = setting(
        True, "--sendfile", parse=validators.boolean, metavar="BOOL",
        help="sync and thread classes: send a wsgi.file_wrapper over a plain connection with "
             "sendfile(2) (--no-sendfile: read and write it in blocks, as over TLS)",
        section=CONNECTIONS)
    limit_request_line: int = setting(
        4094, "--limit-request-line",
        parse=validators.clamped(validators.MAX_REQUEST_LINE, above="the most, as gunicorn takes a larger one",
                       zero="gunicorn's 0 is no limit, but a request line always has one here"),
        metavar="BYTES",
        help="longest request line (method, target, version; CRLF not counted), as "
             "gunicorn counts it; longer gets 414", section=LIMITS)
    limit_request_fields: int = setting(
        100, "--limit-request-fields",
        parse=validators.clamped(validators.MAX_REQUEST_FIELDS, above="the most, as gunicorn takes a larger one",
                       zero="the most, as gunicorn takes 0"),
        metavar="N", help="most header fields in a request; more gets 431", section=LIMITS)
    limit_request_field_size: int = setting(
        8190, "--limit-request-field-size", "--limit-request-field_size",
        parse=validators.clamped(validators.MAX_FIELD_SIZE, above="the most; no client sends a longer field line"),
        metavar="BYTES", help="longest header field line (\"name: value\" and its CRLF), as "
                              "gunicorn counts it; longer gets 431 (0: no limit of its own; "
                              "the head as a whole stays bounded)", section=LIMITS)
    limit_request_body: int = setting(
        0, "--limit-request-body", parse=validators.whole(0, validators.MAX_BODY, " bytes"), metavar="BYTES",
        help="largest request body; larger gets 413 (0: no limit)", section=LIMITS)
    limit_concurrency: int = setting(
        0, "--limit-concurrency", parse=validators.whole(0, validators.MAX_CONNECTIONS), metavar="N",
        help="asgi class: answer 503 beyond N requests in flight per worker (0: no limit)",
        section=LIMITS)
    gather_body: int = setting(
        1024 * 1024, "--gather-body", parse=validators.whole(0, validators.MAX_GATHER, " bytes"), metavar="BYTES",
        help="thread class and the bridge: a request body up to this size (of a known length, "
             "or chunked) is read by the poller (the bridge's loop) before the request reaches a "
             "thread, so a slow upload "
             "costs a connection, not a thread (the app then answers once the body is in, as "
             "behind nginx); a larger body (a chunked one from the read that passes this size "
             "on), or one held back for 100 Continue, is read by the app as it comes. 64 MiB "
             "per worker in all (0: never gathered)", section=LIMITS)
    forwarded_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1", "::1"), "--forwarded-allow-ips", parse=validators.networks, metavar="ADDRESSES",
        help="comma-separated addresses or networks (or '*') whose Forwarded / "
             "X-Forwarded-For / X-Forwarded-Proto headers are believed "
             "(default $FORWARDED_ALLOW_IPS when set)", section=PROXIES)
    proxy_protocol: bool = setting(
        False, "--proxy-protocol", parse=validators.boolean, switch=True,
        help="a connection from a --proxy-allow-ips address begins with a PROXY protocol "
             "header (HAProxy's v1 or v2; AWS NLB, HAProxy, Traefik send it), which names "
             "the client; one that does not is closed. Connections from other addresses "
             "are served as they are (a health probe's, say)", section=PROXIES)
    proxy_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1", "::1"), "--proxy-allow-ips", "--proxy-allow-from", parse=validators.networks,
        metavar="ADDRESSES",
        help="comma-separated addresses or networks (or '*') of the load balancers whose "
             "PROXY protocol header is believed (--proxy-protocol)", section=PROXIES)
    certfile: str | None = setting(
        None, "--certfile", "--ssl-certfile", parse=validators.optional_text, metavar="FILE",
        help="serve HTTPS (every class): the server's certificate, PEM, followed by its "
             "intermediates; HUP re-reads it and --keyfile, so a renewed certificate takes "
             "effect without a restart", section=TLS)
    keyfile: str | None = setting(
        None, "--keyfile", "--ssl-keyfile", parse=validators.optional_text, metavar="FILE",
        help="the private key of --certfile, PEM (default: the key in --certfile)", section=TLS)
    keyfile_password: str | None = setting(
        None, "--keyfile-password", "--ssl-keyfile-password", parse=validators.optional_text,
        metavar="PASSWORD", help="the password of an encrypted --keyfile", section=TLS)
    ca_certs: str | None = setting(
        None, "--ca-certs", "--ssl-ca-certs", parse=validators.optional_text, metavar="FILE",
        help="the CA certificates (PEM) a client certificate must chain to, for "
             "--cert-reqs optional or required", section=TLS)
    cert_reqs: str = setting(
        "none", "--cert-reqs", "--ssl-cert-reqs", parse=validators.cert_reqs, metavar="MODE",
        help="client certificates: none (not asked for), optional (verified when sent), "
             "required (mutual TLS: a client without a valid one is refused in the "
             "handshake); gunicorn's and uvicorn's 0, 1, 2 mean the same", section=TLS)
    ciphers: str | None = setting(
        None, "--ciphers", "--ssl-ciphers", parse=validators.optional_text, metavar="LIST",
        help="the OpenSSL cipher list for TLS 1.2 (default: Python's, which leaves out the "
             "weak ones); TLS 1.3's suites are not affected", section=TLS)
    tls_min_version: str = setting(
        "1.2", "--tls-min-version", parse=validators.tls_version, metavar="VERSION",
        help="the oldest TLS version a client may use: 1.2 or 1.3", section=TLS)
    http_protocols: tuple[str, ...] = setting(
        validators.AUTO_PROTOCOLS, "--http-protocols", parse=validators.http_protocols,
        metavar="LIST",
        help="the HTTP versions served, gunicorn's comma list, the preferred first: h2,h1, h1 "
             "or h2 (ALPN offers h2 alone). auto (the one item 'auto'): over TLS, h2 then "
             "http/1.1 wherever the http2 extra is installed (pip install "
             "'hybrid-server[http2]') and the asgi class serves (an ASGI app, or a WSGI app "
             "on -k asgi's bridge), HTTP/1.1 elsewhere; h2 given outright needs both, or the "
             "start stops saying why; h3 is not served", section=HTTP2)
    http2_cleartext: str = setting(
        "off", "--http2-cleartext", parse=validators.http2_cleartext, metavar="MODE",
        help="HTTP/2 without TLS (h2c) on the asgi class: prior-knowledge (a connection that "
             "opens with the HTTP/2 preface), upgrade (an HTTP/1.1 request with Upgrade: h2c, "
             "which RFC 9113 deprecates but curl sends), both, or off; taken from any client "
             "(gunicorn: from --forwarded-allow-ips only), so only for a port behind a proxy "
             "that speaks h2c; gunicorn's True in a config file is prior-knowledge", section=HTTP2)
    http2_max_concurrent_streams: int = setting(
        100, "--http2-max-concurrent-streams",
        parse=validators.whole(1, validators.MAX_H2_STREAMS), metavar="N",
        help="HTTP/2: the most requests (streams) open at once on one connection "
             "(SETTINGS_MAX_CONCURRENT_STREAMS); one more is refused with REFUSED_STREAM, the "
             "connection kept", section=HTTP2)
    http2_initial_window_size: int = setting(
        65535, "--http2-initial-window-size",
        parse=validators.whole(validators.MIN_H2_WINDOW, validators.MAX_H2_WINDOW, " bytes"),
        metavar="BYTES",
        help="HTTP/2: how much of a request body a client may send on a stream before the app "
             "reads it (SETTINGS_INITIAL_WINDOW_SIZE); the window is given back as the app "
             "reads", section=HTTP2)
    http2_max_frame_size: int = setting(
        16384, "--http2-max-frame-size",
        parse=validators.whole(validators.MIN_H2_FRAME, validators.MAX_H2_FRAME, " bytes"),
        metavar="BYTES",
        help="HTTP/2: the largest frame payload a client may send (SETTINGS_MAX_FRAME_SIZE)",
        section=HTTP2)
    http2_max_header_list_size: int = setting(
        65536, "--http2-max-header-list-size",
        parse=validators.clamped(validators.MAX_H2_HEADER_LIST,
                                 above="the most, as gunicorn takes a larger one",
                                 zero="gunicorn's 0 is no limit, but a header list always has "
                                      "one here (HPACK bombs)"),
        metavar="BYTES",
        help="HTTP/2: the largest header list a request may bring, counted as RFC 9113 "
             "counts it (names, values and 32 bytes a field; SETTINGS_MAX_HEADER_LIST_SIZE) "
             "as it is decoded; --limit-request-fields and --limit-request-field-size apply "
             "too", section=HTTP2)
    ws_max_size: int = setting(
        16 * 1024 * 1024, "--ws-max-size", parse=validators.whole(1, validators.MAX_WS_MESSAGE, " bytes"),
        metavar="BYTES",
        help="largest WebSocket message accepted; a larger one closes with 1009", section=WEBSOCKETS)
    ws_ping_interval: float = setting(
        20.0, "--ws-ping-interval", parse=validators.seconds, metavar="SECONDS",
        help="send a WebSocket ping this often (0: never)", section=WEBSOCKETS)
    ws_ping_timeout: float = setting(
        20.0, "--ws-ping-timeout", parse=validators.seconds, metavar="SECONDS",
        help="close a WebSocket whose pong does not come within this time", section=WEBSOCKETS)
    ws_per_message_deflate: bool = setting(
        True, "--ws-per-message-deflate", parse=validators.boolean, metavar="BOOL",
        help="offer permessage-deflate compression to WebSocket clients", section=WEBSOCKETS)
    ws_deflate_window_bits: int = setting(
        12, "--ws-deflate-window-bits", parse=validators.window_bits, metavar="9-15",
        help="the server's permessage-deflate window (2**N bytes), answered to every "
             "client: with --ws-deflate-mem-level, what a compressed WebSocket costs",
        section=WEBSOCKETS)
    ws_deflate_mem_level: int = setting(
        5, "--ws-deflate-mem-level", parse=validators.mem_level, metavar="1-9",
        help="zlib's memory level for the server's permessage-deflate compressor "
             "(9: fastest, most memory)", section=WEBSOCKETS)
    log_level: str = setting(
        "info", "--log-level", parse=validators.spelled(LOG_LEVELS, _LOG_LEVEL_SPELLINGS), metavar="LEVEL",
        help="error log level: " + ", ".join(LOG_LEVELS) + " (uvicorn's trace: debug)", section=LOGGING)
    error_logfile: str = setting(
        "-", "--error-logfile", "--log-file", parse=validators.plain_text, metavar="FILE",
        help="where the error log goes; '-' is stderr", section=LOGGING)
    access_logfile: str | None = setting(
        None, "--access-logfile", parse=validators.optional_text, metavar="FILE",
        help="write one line per request here; '-' is stdout (default: off)", section=LOGGING)
    access_logformat: str = setting(
        DEFAULT_ACCESS_LOGFORMAT, "--access-logformat", parse=validators.access_format, metavar="FORMAT",
        help="access log line, with gunicorn's %(atom)s names; 'json' for one JSON object "
             "per line (time, method, path, query, status, bytes, duration, client, "
             "user_agent, referer, request_id, pid)", section=LOGGING)
    log_config: str | None = setting(
        None, "--log-config", "--logconfig", parse=validators.optional_text, metavar="FILE",
        help="configure Python logging from this file after hybrid's own setup: .json, "
             ".yaml or .yml for logging.config.dictConfig (YAML needs PyYAML), anything "
             "else for fileConfig (INI); hybrid's loggers are hybrid.error and hybrid.access",
        section=LOGGING)
    log_config_dict: dict[str, Any] | None = setting(
        None, "--log-config-dict", "--logconfig-dict", parse=validators.log_dict, metavar="JSON",
        help="a logging.config.dictConfig dict (JSON on the command line; a dict in a Python "
             "config file, as gunicorn's logconfig_dict), applied after hybrid's own setup",
        section=LOGGING)
    capture_output: bool = setting(
        False, "--capture-output", parse=validators.boolean, switch=True,
        help="send whatever the app writes to stdout and stderr (print()) to "
             "--error-logfile, when that is a file", section=LOGGING)
    control_bind: str = setting(
        "", "--control-bind", parse=validators.control_address, metavar="ADDRESS",
        help="HOST:PORT or unix:PATH for the arbiter's /livez, /readyz and /metrics "
             "(off when empty)", section=PROBES)
    max_requests: int = setting(
        0, "--max-requests", "--limit-max-requests", parse=validators.whole(0, validators.MAX_REQUESTS), metavar="N",
        help="replace a worker once it has served this many requests (0: never); its "
             "replacement boots first, so capacity holds", section=RECYCLING)
    max_requests_jitter: int = setting(
        0, "--max-requests-jitter", parse=validators.whole(0, validators.MAX_REQUESTS), metavar="N",
        help="add a random 0 to N to each worker's --max-requests, so that workers are not "
             "all replaced at once", section=RECYCLING)
    max_worker_memory: int = setting(
        0, "--max-worker-memory", parse=validators.whole(0, validators.MAX_WORKER_MIB, " MiB"), metavar="MiB",
        help="replace a worker whose own memory (USS: not what it shares with the "
             "arbiter) exceeds this, sampled every second (0: no limit); the replacement "
             "boots first, and a worker not gone within --graceful-timeout is killed",
        section=RECYCLING)
    reload: bool = setting(
        False, "--reload", parse=validators.boolean, switch=True,
        help="development: replace the workers when a Python file (or a --reload-include "
             "match) under the --reload-dir directories changes, polled every 0.5 s; "
             "not with --preload", section=RELOAD)
    reload_dirs: tuple[str, ...] = setting(
        (), "--reload-dir", parse=validators.text_list, repeat=True, metavar="DIR",
        help="a directory --reload watches; repeat for several (default: the working "
             "directory, after --chdir)", section=RELOAD)
    reload_include: tuple[str, ...] = setting(
        (), "--reload-include", parse=validators.text_list, repeat=True, metavar="GLOB",
        help="files --reload also watches besides *.py, by name or path relative to the "
             "watched directory, e.g. '*.html'; repeat for several", section=RELOAD)
    user: str = setting(
        "", "-u", "--user", parse=validators.user, metavar="USER",
        help="run the workers as this user (a name or a number); the arbiter, started as "
             "root, binds the sockets first", section=MECHANICS)
    group: str = setting(
        "", "-g", "--group", parse=validators.group, metavar="GROUP",
        help="run the workers as this group (default: the --user's own group)", section=MECHANICS)
    umask: int | None = setting(
        None, "-m", "--umask", parse=validators.umask, metavar="MODE",
        help="set the umask before binding: UNIX socket files and log files get it "
             "(default: the one hybrid was started with); read as gunicorn reads it: 027 "
             "and 0o27 are octal, 0x17 hexadecimal, 23 decimal", section=MECHANICS)
    pid: str | None = setting(
        None, "-p", "--pid", parse=validators.optional_text, metavar="FILE",
        help="write the arbiter's process id to this file", section=MECHANICS)
    proc_name: str | None = setting(
        None, "-n", "--name", "--proc-name", parse=validators.optional_text, metavar="NAME",
        help="the name in the process titles ps and top show ('hybrid: worker [NAME]'; "
             "default: the app); titles need the setproctitle package (pip install "
             "'hybrid-server[proctitle]')", section=MECHANICS)
    gc_freeze: bool = setting(
        True, "--gc-freeze", parse=validators.boolean, metavar="BOOL",
        help="before a worker's first connection (and in the arbiter, before it forks, "
             "under --preload), move what booting made (the app, its framework, their "
             "imports) into the garbage collector's permanent generation (gc.freeze), so "
             "that a full collection looks only at what requests made (--gc-freeze "
             "false: leave the collector as Python sets it)", section=MECHANICS)


    def request_limits(self) -> Limits:
        """The HTTP core's limits, from the --limit-request-* settings."""
        return Limits(self.limit_request_line, self.limit_request_fields,
                      self.limit_request_field_size, self.limit_request_body)


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(Config)}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)}


def env_name(name: str) -> str:
    return "HYBRID_" + name.upper()


def flag_name(name: str) -> str:
    """The spelling people know a setting by: its long flag."""
    flags = SETTINGS[name].flags
    return next((flag for flag in flags if flag.startswith("--")), flags[0])


def shown(value: Any) -> str:
    """A setting's value as `--help`, the README and `hybrid check` show it."""
    return ", ".join(value) if isinstance(value, tuple) else str(value)


PRECEDENCE = (
    "the built-in default",
    "platform variables (`PORT`, `WEB_CONCURRENCY`, `FORWARDED_ALLOW_IPS`: they only "
    "change defaults, as in gunicorn)",
    "a config file",
    "`HYBRID_<NAME>` environment variables",
    "the command line",
)
"""Where a setting's value comes from, lowest first: the order `load()` merges in."""
