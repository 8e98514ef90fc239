"""Every setting, declared once.

`Config` is a frozen dataclass; each field's metadata is a `Setting` that
holds the command-line flags, the validator and the help text (a number's
validator is `Bounded`: its bounds end the help text, so what is checked is
what `--help` and the README say). The
environment variable is `HYBRID_<NAME>` and the config-file key is the field
name, so the CLI, the environment, TOML / Python config files and `hybrid
check` are all derived from this one table.

Precedence, lowest first (`PRECEDENCE`, the order `load()` merges in):
built-in default < platform variables (`PORT`, `WEB_CONCURRENCY`,
`FORWARDED_ALLOW_IPS`: they only change defaults, as in gunicorn) < config
file < `HYBRID_*` environment < command line.
"""

from __future__ import annotations

import dataclasses
import grp
import ipaddress
import json
import os
import pwd
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybrid import logs, sockets
from hybrid.protocol import Limits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A bad setting; the message is one line for people."""


# --- validators: raw value (str from CLI/env, typed from files) -> value ----
#
# Text is what the command line and the environment give, so every validator
# takes it; a config file's typed value must be text or the setting's own type
# (a number where a count is asked for, true or false for a switch): a number
# given for an address, say, is refused rather than read as the text "5".


@dataclass(frozen=True)
class Taken:
    """A validator's answer for a value it takes as another (gunicorn's clamps,
    and its meaning of 0): the value used, and why, for a warning at start-up."""

    value: Any
    why: str


@dataclass(frozen=True)
class Bounded:
    """A validator of a number and its bounds, in the words the help states them
    in (`setting()` appends them), so that what is checked and what is said
    come from the same figures."""

    parse: Callable[[Any], Any]
    bounds: str

    def __call__(self, raw: Any) -> Any:
        return self.parse(raw)


MAX_SECONDS = 1_000_000.0
"""The longest duration a setting takes (11.5 days): beyond it, socket and
clock arithmetic overflows, and no deployment needs more."""
MAX_BACKLOG = 65535  # the kernel caps the listen queue at net.core.somaxconn anyway
WORKERS_PER_CPU = 16  # beyond this many processes per CPU (and 64 in all), -w is a typo
MAX_THREADS = 1024
"""Threads per worker: every one starts up front, and past a few hundred they
only contend for the GIL."""
MAX_CONNECTIONS = 1_000_000  # per worker: under the most descriptors Linux gives a process
MAX_REQUESTS = 1_000_000_000  # --max-requests and its jitter: more is "never"
MAX_WORKER_MIB = 1 << 20  # --max-worker-memory: 1 TiB
MAX_WS_MESSAGE = 1 << 30  # 1 GiB, held in memory whole
MAX_BODY = 1 << 40  # --limit-request-body: 1 TiB (0 is no limit)
MAX_GATHER = 64 * 1024 * 1024  # what the thread class gathers for all its bodies at once
MAX_RATE = 1 << 30  # --body-min-rate: 1 GiB a second
MAX_REQUEST_LINE = 8190  # gunicorn's bound: it takes a larger limit as this
MAX_REQUEST_FIELDS = 32768  # gunicorn's bound: it takes a larger limit (or 0) as this
MAX_FIELD_SIZE = 1 << 20
"""The longest header field line (1 MiB) a limit allows (gunicorn has no
bound); the head as a whole stays within 64 KiB, or the request line and
this together (hybrid.protocol.Limits.head)."""
MAX_CLAMPED = 2**31 - 1
"""The largest value a clamped limit takes (as its bound) before it is
refused: a bigger one (a 20-digit limit) is no setting anyone meant."""


def _got(raw: Any) -> str:
    """What a refused value was, its type named (a config file's value is typed)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return f"got the number {raw!r}"
    if isinstance(raw, (list, tuple)):
        return f"got the list {list(raw)!r}"
    if isinstance(raw, dict):
        return f"got the table {raw!r}"
    return f"got {raw!r}"


def _integer(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"expected a whole number, {_got(raw)}")
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw.strip()!r}") from None


def _whole(low: int, high: int, unit: str = "") -> Bounded:
    """A whole number from `low` to `high`."""
    def parse(raw: Any) -> int:
        value = _integer(raw)
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if value > high:
            raise ValueError(f"must be at most {high}{unit}, got {value}")
        return value
    return Bounded(parse, f"{low} to {high}{unit}")


def _clamped(high: int, above: str, zero: str = "") -> Bounded:
    """A limit up to `high` that takes a larger value (up to MAX_CLAMPED) as
    `high`, as gunicorn clamps its own, for the reason `above` gives. 0 means
    no limit of its own; given `zero`, 0 is taken as `high` instead, for the
    reason `zero` gives."""
    def parse(raw: Any) -> int | Taken:
        value = _integer(raw)
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        if value == 0 and zero:
            return Taken(high, zero)
        if value > MAX_CLAMPED:
            raise ValueError(f"must be at most {high} (a larger value up to {MAX_CLAMPED} is "
                             f"taken as {high}), got {value}")
        if value > high:
            return Taken(high, above)
        return value
    if zero:
        return Bounded(parse, f"1 to {high}; 0, or a larger value up to {MAX_CLAMPED}, is "
                              f"taken as {high}")
    return Bounded(parse, f"0 to {high}; a larger value up to {MAX_CLAMPED} is taken as {high}")


def _seconds_bounded(positive: bool) -> Bounded:
    """A number of seconds up to MAX_SECONDS: more than 0 if `positive`, else 0 or more."""
    def parse(raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ValueError(f"expected a number of seconds, {_got(raw)}")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
        if value < 0 or value != value:
            raise ValueError(f"must be zero or more seconds, got {raw!r}")
        if positive and value == 0:
            raise ValueError("must be more than 0 seconds")
        if value > MAX_SECONDS:
            raise ValueError(f"must be at most {MAX_SECONDS:.0f} seconds, got {raw!r}")
        return value
    least = "more than 0, at most" if positive else "0 to"
    return Bounded(parse, f"{least} {MAX_SECONDS:.0f} seconds")


_seconds = _seconds_bounded(positive=False)
_positive_seconds = _seconds_bounded(positive=True)
_window_bits = _whole(9, 15)  # zlib's raw deflate windows (RFC 7692: 8 to 15; zlib refuses 8)
_mem_level = _whole(1, 9)


def _worker_count_parse(raw: Any) -> int:
    value = _integer(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    cpus = os.cpu_count() or 1
    most = max(64, WORKERS_PER_CPU * cpus)
    if value > most:
        raise ValueError(f"{value} workers is more than this machine can use: it has {cpus} "
                         f"CPU{'s' if cpus > 1 else ''}, and at most {most} worker processes "
                         f"are accepted ({WORKERS_PER_CPU} per CPU, or 64)")
    return value


_worker_count = Bounded(_worker_count_parse,
                        f"1 to {WORKERS_PER_CPU} per CPU, or to 64 where that is more")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"expected true or false, {_got(raw)}")
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected text, {_got(raw)}")
    return raw


def _stripped_text(raw: Any) -> str:
    return _text(raw).strip()


def _optional_text(raw: Any) -> str | None:
    """Text, or None (a Python config file's None, as gunicorn's defaults are)."""
    return None if raw is None else _text(raw) or None


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _text(raw).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {raw!r}")
        return text
    return parse


def _text_list(raw: Any) -> tuple[str, ...]:
    """A list from a file, repeated flags, or a comma-separated string."""
    out: list[str] = []
    for text in _texts(raw):
        out.extend(part.strip() for part in text.split(",") if part.strip())
    return tuple(out)


def _bind_list(raw: Any) -> tuple[str, ...]:
    addresses = _text_list(raw)
    if not addresses:
        raise ValueError("needs at least one address")
    parsed = tuple(str(sockets.parse_address(text)) for text in addresses)
    for address in parsed:
        if parsed.count(address) > 1:
            raise ValueError(f"{address} is given more than once")
    return parsed


def _control_address(raw: Any) -> str:
    text = _stripped_text(raw)
    if not text:
        return ""
    address = sockets.parse_address(text)
    if address.kind == "fd":
        raise ValueError("expected HOST:PORT or unix:PATH")
    return str(address)


def _networks(raw: Any) -> tuple[str, ...]:
    items = _text_list(raw)
    for item in items:
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (or '*')") from None
    return items


def _root_path(raw: Any) -> str:
    text = _text(raw).strip()
    if text and not text.startswith("/"):
        raise ValueError(f"must start with '/', got {text!r}")
    return text.rstrip("/")


def _account(kind: str, by_id: Callable[[int], Any],
             by_name: Callable[[str], Any]) -> Callable[[Any], str]:
    """A validator for a user or group given by name or number ("" for none)."""
    def parse(raw: Any) -> str:
        # (A number too: gunicorn's config files give uids and gids as numbers, and
        # None for none, as its example config does.)
        if raw is None:
            return ""
        text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) \
            else _stripped_text(raw)
        if text:
            try:
                by_id(int(text)) if text.isdigit() else by_name(text)
            except KeyError:
                raise ValueError(f"no such {kind} {text!r}") from None
        return text
    return parse


_user = _account("user", pwd.getpwuid, pwd.getpwnam)
_group = _account("group", grp.getgrgid, grp.getgrnam)


def _umask_parse(raw: Any) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif not isinstance(raw, str):
        raise ValueError(f"expected a mode such as 027, {_got(raw)}")
    else:
        # As gunicorn reads it: a leading 0 (or 0o) is octal, 0x hexadecimal, the
        # rest decimal.
        text = raw.strip().lower()
        if len(text) > 1 and text[0] == "0" and text[1].isdigit():
            text = "0o" + text[1:]
        try:
            value = int(text, 0)
        except ValueError:
            raise ValueError(f"expected a mode such as 027 (octal, as gunicorn reads it), "
                             f"got {raw!r}") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"must be from 000 to 777 (octal), got {raw!r}")
    return value


_umask = Bounded(_umask_parse, "000 to 777, octal")


def _spelled(choices: tuple[str, ...], others: Mapping[str, str]) -> Callable[[Any], str]:
    """A choice that also takes a peer's spellings of the same values (`others`)."""
    choose = _choice(*choices)

    def parse(raw: Any) -> str:
        text = _stripped_text(raw).lower()
        return choose(others.get(text, text))
    return parse


def _texts(raw: Any) -> list[str]:
    """The items of a list (a file's, or repeated flags), or one item alone."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"expected text or a list of texts, {_got(raw)}")
    return list(items)


def _assignments(raw: Any) -> tuple[str, ...]:
    """NAME=VALUE items (a value may hold commas: they are not split)."""
    out = []
    for text in _texts(raw):
        name, sep, _ = text.partition("=")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"expected NAME=VALUE, got {text!r}")
        out.append(text.strip())
    return tuple(out)


_FRAMING_FIELDS = ("content-length", "transfer-encoding", "connection")


def _header_fields(raw: Any) -> tuple[str, ...]:
    """NAME:VALUE response header fields (uvicorn's --header)."""
    out = []
    for text in _texts(raw):
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name):
            raise ValueError(f"expected NAME:VALUE with a header name, got {text!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"a header value cannot hold line breaks, got {text!r}")
        if name.lower() in _FRAMING_FIELDS:
            raise ValueError(f"{name} is the server's to write: it frames each response")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"a header value must be Latin-1 text, got {text!r}") from None
        out.append(f"{name}: {value}")
    return tuple(out)


def _log_dict(raw: Any) -> dict[str, Any] | None:
    """A logging.config.dictConfig dict: from a Python config file, or JSON text."""
    if raw is None or raw == "" or raw == {}:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"expected a JSON object: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"expected a dict (logging.config.dictConfig's), {_got(raw)}")
    return raw


_CERT_REQS = {"0": "none", "1": "optional", "2": "required"}  # ssl.CERT_* numbers


def _cert_reqs(raw: Any) -> str:
    # (A number too: ssl.CERT_REQUIRED, in a gunicorn config file.)
    text = str(int(raw)) if isinstance(raw, int) and not isinstance(raw, bool) \
        else _stripped_text(raw).lower()
    return _choice("none", "optional", "required")(_CERT_REQS.get(text, text))


def _access_format(raw: Any) -> str:
    text = _text(raw)
    logs.check_format(text)
    return text


def _tls_version(raw: Any) -> str:
    # (A number too: `tls_min_version = 1.3` in a TOML file.)
    text = str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) \
        else _stripped_text(raw).lower().removeprefix("tlsv").replace("_", ".")
    if text not in ("1.2", "1.3"):
        raise ValueError(f"expected 1.2 or 1.3, got {raw!r}")
    return text


# --- the table ---------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    flags: tuple[str, ...]
    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    repeat: bool = False  # the flag may be given several times
    switch: bool = False  # a flag without a value that turns the setting on


def setting(default: Any, *flags: str, parse: Callable[[Any], Any], help: str,
            metavar: str | None = None, repeat: bool = False, switch: bool = False) -> Any:
    if isinstance(parse, Bounded):
        help = f"{help}; accepted: {parse.bounds}"
    meta = {"setting": Setting(flags, parse, help, metavar, repeat, switch)}
    return field(default=default, metadata=meta)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# uvicorn's trace is below debug: debug is the most hybrid says.
_LOG_LEVEL_SPELLINGS = {"trace": "debug", "warn": "warning", "fatal": "critical"}
DEFAULT_ACCESS_LOGFORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


@dataclass(frozen=True)
class Config:
    app: str | None = setting(
        None, "APP", parse=_optional_text, metavar="APP",
        help="the application: 'module:attribute', 'module:attr.sub' or 'module:factory()'")
    config: str | None = setting(
        None, "-c", "--config", parse=_optional_text, metavar="FILE",
        help="a TOML (.toml) or Python (.py) config file whose keys are these settings' names")
    bind: tuple[str, ...] = setting(
        ("127.0.0.1:8000",), "-b", "--bind", parse=_bind_list, repeat=True, metavar="ADDRESS",
        help="HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N; repeat for several "
             "(default 0.0.0.0:$PORT when PORT is set)")
    workers: int = setting(
        1, "-w", "--workers", parse=_worker_count, metavar="N",
        help="number of worker processes (default $WEB_CONCURRENCY when set)")
    worker_class: str = setting(
        "auto", "-k", "--worker-class", parse=_stripped_text, metavar="CLASS",
        help="worker class: auto (sync for a WSGI app, asgi for an ASGI app), sync, thread "
             "(alias gthread), asgi, or 'module:Class'; gunicorn's spellings of its sync and "
             "gthread classes and uvicorn's worker (uvicorn.workers.UvicornWorker) select "
             "ours; gevent and eventlet are refused, naming what to use")
    threads: int = setting(
        4, "--threads", parse=_whole(1, MAX_THREADS), metavar="N",
        help="threads per worker: the thread class's pool, and the asgi class's pool for a "
             "WSGI app (4: a slow call does not hold up the rest, and few threads contend for "
             "the GIL; raise it for apps that wait on I/O); given with the sync class, more "
             "than 1 switches to the thread class, as gunicorn does")
    worker_connections: int = setting(
        1000, "--worker-connections", parse=_whole(1, MAX_CONNECTIONS), metavar="N",
        help="most open connections per worker (thread and asgi classes); at the bound "
             "a new client takes the place of the longest-idle keep-alive connection, and "
             "while none is idle the worker stops accepting (the kernel queues the rest "
             "for any worker)")
    keep_alive: float = setting(
        5.0, "--keep-alive", "--timeout-keep-alive", parse=_seconds, metavar="SECONDS",
        help="close a kept-alive connection idle this long (0: no keep-alive, each "
             "connection closes after its response, as gunicorn's 0)")
    loop: str = setting(
        "uvloop", "--loop", parse=_spelled(("uvloop", "asyncio"), {"auto": "uvloop"}),
        metavar="LOOP", help="event loop for the asgi class: uvloop or asyncio (uvicorn's "
                             "auto: uvloop)")
    lifespan: str = setting(
        "auto", "--lifespan", parse=_choice("auto", "on", "off"), metavar="MODE",
        help="ASGI lifespan: auto (use it if the app supports it), on (a failed startup "
             "stops the server), off")
    limit_concurrency: int = setting(
        0, "--limit-concurrency", parse=_whole(0, MAX_CONNECTIONS), metavar="N",
        help="asgi class: answer 503 beyond N requests in flight per worker (0: no limit)")
    ws_max_size: int = setting(
        16 * 1024 * 1024, "--ws-max-size", parse=_whole(1, MAX_WS_MESSAGE, " bytes"),
        metavar="BYTES",
        help="largest WebSocket message accepted; a larger one closes with 1009")
    ws_ping_interval: float = setting(
        20.0, "--ws-ping-interval", parse=_seconds, metavar="SECONDS",
        help="send a WebSocket ping this often (0: never)")
    ws_ping_timeout: float = setting(
        20.0, "--ws-ping-timeout", parse=_seconds, metavar="SECONDS",
        help="close a WebSocket whose pong does not come within this time")
    ws_per_message_deflate: bool = setting(
        True, "--ws-per-message-deflate", parse=_boolean, metavar="BOOL",
        help="offer permessage-deflate compression to WebSocket clients")
    ws_deflate_window_bits: int = setting(
        12, "--ws-deflate-window-bits", parse=_window_bits, metavar="9-15",
        help="the server's permessage-deflate window (2**N bytes), answered to every "
             "client: with --ws-deflate-mem-level, what a compressed WebSocket costs")
    ws_deflate_mem_level: int = setting(
        5, "--ws-deflate-mem-level", parse=_mem_level, metavar="1-9",
        help="zlib's memory level for the server's permessage-deflate compressor "
             "(9: fastest, most memory)")
    timeout: float = setting(
        30.0, "-t", "--timeout", parse=_seconds, metavar="SECONDS",
        help="a worker silent for this long is killed and replaced (0 disables)")
    graceful_timeout: float = setting(
        30.0, "--graceful-timeout", "--timeout-graceful-shutdown", parse=_seconds, metavar="SECONDS",
        help="after a stop or reload, how long workers may finish in-flight requests")
    request_timeout: float = setting(
        0.0, "--request-timeout", parse=_seconds, metavar="SECONDS",
        help="the longest an app may take over one request (0: no limit; the worker's "
             "heartbeat and --timeout are apart from it): the client gets a 504, or the "
             "connection is cut if the answer had begun; asgi cancels the app's task; the "
             "thread class and the bridge leave the call to end in its thread, and a worker "
             "whose threads are all stuck so is replaced; sync replaces the worker (uWSGI's "
             "harakiri)")
    max_requests: int = setting(
        0, "--max-requests", "--limit-max-requests", parse=_whole(0, MAX_REQUESTS), metavar="N",
        help="replace a worker once it has served this many requests (0: never); its "
             "replacement boots first, so capacity holds")
    max_requests_jitter: int = setting(
        0, "--max-requests-jitter", parse=_whole(0, MAX_REQUESTS), metavar="N",
        help="add a random 0 to N to each worker's --max-requests, so that workers are not "
             "all replaced at once")
    max_worker_memory: int = setting(
        0, "--max-worker-memory", parse=_whole(0, MAX_WORKER_MIB, " MiB"), metavar="MiB",
        help="replace a worker whose own memory (USS: not what it shares with the "
             "arbiter) exceeds this, sampled every second (0: no limit); the replacement "
             "boots first, and a worker not gone within --graceful-timeout is killed")
    shutdown_delay: float = setting(
        0.0, "--shutdown-delay", parse=_seconds, metavar="SECONDS",
        help="on TERM, keep serving this long with /readyz answering 503 (so that an "
             "orchestrator stops routing here), then stop gracefully")
    control_bind: str = setting(
        "", "--control-bind", parse=_control_address, metavar="ADDRESS",
        help="HOST:PORT or unix:PATH for the arbiter's /livez, /readyz and /metrics "
             "(off when empty)")
    backlog: int = setting(
        2048, "--backlog", parse=_whole(1, MAX_BACKLOG), metavar="N",
        help="the listen queue length of each socket")
    log_level: str = setting(
        "info", "--log-level", parse=_spelled(LOG_LEVELS, _LOG_LEVEL_SPELLINGS), metavar="LEVEL",
        help="error log level: " + ", ".join(LOG_LEVELS) + " (uvicorn's trace: debug)")
    error_logfile: str = setting(
        "-", "--error-logfile", "--log-file", parse=_text, metavar="FILE",
        help="where the error log goes; '-' is stderr")
    access_logfile: str | None = setting(
        None, "--access-logfile", parse=_optional_text, metavar="FILE",
        help="write one line per request here; '-' is stdout (default: off)")
    access_logformat: str = setting(
        DEFAULT_ACCESS_LOGFORMAT, "--access-logformat", parse=_access_format, metavar="FORMAT",
        help="access log line, with gunicorn's %(atom)s names; 'json' for one JSON object "
             "per line (time, method, path, query, status, bytes, duration, client, "
             "user_agent, referer, request_id, pid)")
    log_config: str | None = setting(
        None, "--log-config", "--logconfig", parse=_optional_text, metavar="FILE",
        help="configure Python logging from this file after hybrid's own setup: .json, "
             ".yaml or .yml for logging.config.dictConfig (YAML needs PyYAML), anything "
             "else for fileConfig (INI); hybrid's loggers are hybrid.error and hybrid.access")
    log_config_dict: dict[str, Any] | None = setting(
        None, "--log-config-dict", "--logconfig-dict", parse=_log_dict, metavar="JSON",
        help="a logging.config.dictConfig dict (JSON on the command line; a dict in a Python "
             "config file, as gunicorn's logconfig_dict), applied after hybrid's own setup")
    capture_output: bool = setting(
        False, "--capture-output", parse=_boolean, switch=True,
        help="send whatever the app writes to stdout and stderr (print()) to "
             "--error-logfile, when that is a file")
    proc_name: str | None = setting(
        None, "-n", "--name", "--proc-name", parse=_optional_text, metavar="NAME",
        help="the name in the process titles ps and top show ('hybrid: worker [NAME]'; "
             "default: the app); titles need the setproctitle package (pip install "
             "'hybrid-server[proctitle]')")
    env: tuple[str, ...] = setting(
        (), "-e", "--env", parse=_assignments, repeat=True, metavar="NAME=VALUE",
        help="set an environment variable for the app (in the arbiter, before anything is "
             "imported, so every worker has it); repeat for several")
    env_file: str | None = setting(
        None, "--env-file", parse=_optional_text, metavar="FILE",
        help="read NAME=VALUE lines (a .env file: # comments, 'export', quotes) into the "
             "app's environment at start, and again on HUP; a variable set before hybrid "
             "started keeps its value")
    server_header: bool = setting(
        True, "--server-header", parse=_boolean, switch=True,
        help="send 'Server: hybrid' in every response (--no-server-header: none, unless the "
             "app sends its own)")
    date_header: bool = setting(
        True, "--date-header", parse=_boolean, switch=True,
        help="send a Date field in every response, as RFC 9110 asks of a server with a "
             "clock (--no-date-header: none, unless the app sends its own)")
    headers: tuple[str, ...] = setting(
        (), "--header", parse=_header_fields, repeat=True, metavar="NAME:VALUE",
        help="a header field added to every response (uvicorn's --header); repeat for several")
    sendfile: bool = setting(
        True, "--sendfile", parse=_boolean, metavar="BOOL",
        help="sync and thread classes: send a wsgi.file_wrapper over a plain connection with "
             "sendfile(2) (--no-sendfile: read and write it in blocks, as over TLS)")
    pid: str | None = setting(
        None, "-p", "--pid", parse=_optional_text, metavar="FILE",
        help="write the arbiter's process id to this file")
    preload: bool = setting(
        False, "--preload", parse=_boolean, switch=True,
        help="import the app in the arbiter before forking (shares memory; "
             "a reload then keeps the old code)")
    reuse_port: bool = setting(
        False, "--reuse-port", parse=_boolean, switch=True,
        help="each worker listens on a TCP socket of its own (SO_REUSEPORT), so the kernel "
             "spreads new connections evenly over the workers; connections still queued "
             "on a worker that stops are reset, unless the kernel migrates them "
             "(sysctl net.ipv4.tcp_migrate_req=1, Linux 5.14+)")
    user: str = setting(
        "", "-u", "--user", parse=_user, metavar="USER",
        help="run the workers as this user (a name or a number); the arbiter, started as "
             "root, binds the sockets first")
    group: str = setting(
        "", "-g", "--group", parse=_group, metavar="GROUP",
        help="run the workers as this group (default: the --user's own group)")
    umask: int | None = setting(
        None, "-m", "--umask", parse=_umask, metavar="MODE",
        help="set the umask before binding: UNIX socket files and log files get it "
             "(default: the one hybrid was started with); read as gunicorn reads it: 027 "
             "and 0o27 are octal, 0x17 hexadecimal, 23 decimal")
    reload: bool = setting(
        False, "--reload", parse=_boolean, switch=True,
        help="development: replace the workers when a Python file (or a --reload-include "
             "match) under the --reload-dir directories changes, polled every 0.5 s; "
             "not with --preload")
    reload_dirs: tuple[str, ...] = setting(
        (), "--reload-dir", parse=_text_list, repeat=True, metavar="DIR",
        help="a directory --reload watches; repeat for several (default: the working "
             "directory, after --chdir)")
    reload_include: tuple[str, ...] = setting(
        (), "--reload-include", parse=_text_list, repeat=True, metavar="GLOB",
        help="files --reload also watches besides *.py, by name or path relative to the "
             "watched directory, e.g. '*.html'; repeat for several")
    interface: str = setting(
        "auto", "--interface", parse=_spelled(("auto", "wsgi", "asgi"), {"asgi3": "asgi"}),
        metavar="KIND", help="the app's interface: auto, wsgi or asgi (uvicorn's asgi3: asgi)")
    factory: bool = setting(
        False, "--factory", parse=_boolean, switch=True,
        help="APP names a function that returns the application")
    chdir: str | None = setting(
        None, "--chdir", parse=_optional_text, metavar="DIR",
        help="change to this directory before importing the app")
    pythonpath: tuple[str, ...] = setting(
        (), "--pythonpath", "--app-dir", parse=_text_list, metavar="DIRS",
        help="comma-separated directories to put first on sys.path")
    root_path: str = setting(
        "", "--root-path", parse=_root_path, metavar="PATH",
        help="the prefix the app is mounted under (WSGI SCRIPT_NAME)")
    forwarded_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1", "::1"), "--forwarded-allow-ips", parse=_networks, metavar="ADDRESSES",
        help="comma-separated addresses or networks (or '*') whose Forwarded / "
             "X-Forwarded-For / X-Forwarded-Proto headers are believed "
             "(default $FORWARDED_ALLOW_IPS when set)")
    proxy_protocol: bool = setting(
        False, "--proxy-protocol", parse=_boolean, switch=True,
        help="a connection from a --proxy-allow-ips address begins with a PROXY protocol "
             "header (HAProxy's v1 or v2; AWS NLB, HAProxy, Traefik send it), which names "
             "the client; one that does not is closed. Connections from other addresses "
             "are served as they are (a health probe's, say)")
    proxy_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1", "::1"), "--proxy-allow-ips", "--proxy-allow-from", parse=_networks,
        metavar="ADDRESSES",
        help="comma-separated addresses or networks (or '*') of the load balancers whose "
             "PROXY protocol header is believed (--proxy-protocol)")
    limit_request_line: int = setting(
        4094, "--limit-request-line",
        parse=_clamped(MAX_REQUEST_LINE, above="the most, as gunicorn takes a larger one",
                       zero="gunicorn's 0 is no limit, but a request line always has one here"),
        metavar="BYTES",
        help="longest request line (method, target, version; CRLF not counted), as "
             "gunicorn counts it; longer gets 414")
    limit_request_fields: int = setting(
        100, "--limit-request-fields",
        parse=_clamped(MAX_REQUEST_FIELDS, above="the most, as gunicorn takes a larger one",
                       zero="the most, as gunicorn takes 0"),
        metavar="N", help="most header fields in a request; more gets 431")
    limit_request_field_size: int = setting(
        8190, "--limit-request-field-size", "--limit-request-field_size",
        parse=_clamped(MAX_FIELD_SIZE, above="the most; no client sends a longer field line"),
        metavar="BYTES", help="longest header field line (\"name: value\" and its CRLF), as "
                              "gunicorn counts it; longer gets 431 (0: no limit of its own; "
                              "the head as a whole stays bounded)")
    limit_request_body: int = setting(
        0, "--limit-request-body", parse=_whole(0, MAX_BODY, " bytes"), metavar="BYTES",
        help="largest request body; larger gets 413 (0: no limit)")
    header_timeout: float = setting(
        10.0, "--header-timeout", parse=_positive_seconds, metavar="SECONDS",
        help="a client has this long to send a whole request head (slowloris guard); "
             "then it gets 408 and the connection closes")
    body_timeout: float = setting(
        30.0, "--body-timeout", parse=_positive_seconds, metavar="SECONDS",
        help="longest wait for the next piece of a request body before the read fails "
             "(408); a wait per read, not a budget: a body trickled within it each time "
             "is never cut (see --body-min-rate)")
    gather_body: int = setting(
        1024 * 1024, "--gather-body", parse=_whole(0, MAX_GATHER, " bytes"), metavar="BYTES",
        help="thread class and the bridge: a request body up to this size (of a known length, "
             "or chunked) is read by the poller (the bridge's loop) before the request reaches a "
             "thread, so a slow upload "
             "costs a connection, not a thread (the app then answers once the body is in, as "
             "behind nginx); a larger body (a chunked one from the read that passes this size "
             "on), or one held back for 100 Continue, is read by the app as it comes. 64 MiB "
             "per worker in all (0: never gathered)")
    body_min_rate: int = setting(
        0, "--body-min-rate", parse=_whole(0, MAX_RATE, " bytes a second"), metavar="BYTES",
        help="once a request body has waited for the client longer than --body-timeout "
             "in all, it must average this many bytes a second over that waiting, or "
             "the read fails (408); time the app takes to read does not count (0: off)")

    certfile: str | None = setting(
        None, "--certfile", "--ssl-certfile", parse=_optional_text, metavar="FILE",
        help="serve HTTPS (every class): the server's certificate, PEM, followed by its "
             "intermediates; HUP re-reads it and --keyfile, so a renewed certificate takes "
             "effect without a restart")
    keyfile: str | None = setting(
        None, "--keyfile", "--ssl-keyfile", parse=_optional_text, metavar="FILE",
        help="the private key of --certfile, PEM (default: the key in --certfile)")
    keyfile_password: str | None = setting(
        None, "--keyfile-password", "--ssl-keyfile-password", parse=_optional_text,
        metavar="PASSWORD", help="the password of an encrypted --keyfile")
    ca_certs: str | None = setting(
        None, "--ca-certs", "--ssl-ca-certs", parse=_optional_text, metavar="FILE",
        help="the CA certificates (PEM) a client certificate must chain to, for "
             "--cert-reqs optional or required")
    cert_reqs: str = setting(
        "none", "--cert-reqs", "--ssl-cert-reqs", parse=_cert_reqs, metavar="MODE",
        help="client certificates: none (not asked for), optional (verified when sent), "
             "required (mutual TLS: a client without a valid one is refused in the "
             "handshake); gunicorn's and uvicorn's 0, 1, 2 mean the same")
    ciphers: str | None = setting(
        None, "--ciphers", "--ssl-ciphers", parse=_optional_text, metavar="LIST",
        help="the OpenSSL cipher list for TLS 1.2 (default: Python's, which leaves out the "
             "weak ones); TLS 1.3's suites are not affected")
    tls_min_version: str = setting(
        "1.2", "--tls-min-version", parse=_tls_version, metavar="VERSION",
        help="the oldest TLS version a client may use: 1.2 or 1.3")


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


# --- loading -------------------------------------------------------------------

@dataclass
class Loaded:
    """A Config plus, for each setting, where its value came from, and the
    warnings to log at start-up (values given but not used, for instance)."""

    config: Config
    sources: dict[str, str]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # said at start: peers' flags accepted, and what they do here
    hooks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # a .py file's


@dataclass
class ConfigFile:
    """What a config file holds: settings ({name: raw value}), notes about
    gunicorn settings it accepts, and (a Python file) its server hooks."""

    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)


# gunicorn's server hooks, which a Python config file may define (hybrid.hooks calls them).
HOOK_NAMES = ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
              "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
              "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit",
              "ssl_context")


def load(cli: Mapping[str, Any], env: Mapping[str, str] | None = None,
         source: str = "command line") -> Loaded:
    """Merge every layer. `cli` holds only the options given on the command line
    (or to `hybrid.run()`: `source` says which, for the error messages)."""
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Any]]] = [("platform", _platform_layer(env))]
    config_path = cli.get("config") or env.get(env_name("config"))
    file = ConfigFile({})
    if config_path:
        file = read_file(config_path)
        layers.append((f"file {config_path}", file.values))
    layers.append(("env", {name: env[env_name(name)] for name in SETTINGS if env_name(name) in env}))
    layers.append((source, cli))

    values = dict(DEFAULTS)
    sources = {name: "default" for name in SETTINGS}
    warnings: list[str] = []
    for index, (source, layer) in enumerate(layers):
        for name, raw in layer.items():
            label = _label(name, source)
            try:
                values[name] = _validate(name, raw, label, warnings)
            except ConfigError as exc:
                if source != "platform" or not any(name in above for _, above in layers[index + 1:]):
                    raise
                # A platform default that a higher layer replaces is not used: no error.
                warnings.append(f"{exc}; ignored, as it is set elsewhere too")
                continue
            sources[name] = label
    cfg = Config(**values)
    if cfg.reload and cfg.preload:
        raise ConfigError("--reload cannot be used with --preload: the arbiter would keep "
                          "the old code; drop one of them")
    _check_tls(cfg, sources, warnings)
    for name in ("reload_dirs", "reload_include"):
        if getattr(cfg, name) and not cfg.reload:
            warnings.append(f"{flag_name(name)} (from {sources[name]}) is ignored without "
                            f"--reload")
    return Loaded(cfg, sources, tuple(warnings), tuple(file.notes), file.hooks)


def _check_tls(cfg: Config, sources: Mapping[str, str], warnings: list[str]) -> None:
    """The TLS settings that make sense only together (the files are read by
    `hybrid.tls.load`)."""
    if not cfg.certfile:
        given = [name for name in ("keyfile", "keyfile_password", "ca_certs", "ciphers")
                 if getattr(cfg, name)]
        if cfg.cert_reqs != "none":
            given.append("cert_reqs")
        if given:
            raise ConfigError(f"{flag_name(given[0])} needs --certfile: TLS is on only with a "
                              f"server certificate")
        return
    if cfg.cert_reqs != "none" and not cfg.ca_certs:
        raise ConfigError(f"--cert-reqs {cfg.cert_reqs} needs --ca-certs: the CA certificates "
                          f"that client certificates must chain to")
    if cfg.ca_certs and cfg.cert_reqs == "none":
        warnings.append(f"--ca-certs (from {sources['ca_certs']}) is not used: clients are "
                        f"asked for a certificate only with --cert-reqs optional or required")


def _platform_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if env.get("PORT"):
        layer["bind"] = f"0.0.0.0:{env['PORT']}"
    if env.get("WEB_CONCURRENCY"):
        layer["workers"] = env["WEB_CONCURRENCY"]
    if env.get("FORWARDED_ALLOW_IPS"):
        layer["forwarded_allow_ips"] = env["FORWARDED_ALLOW_IPS"]
    return layer


def _label(name: str, source: str) -> str:
    if source == "env":
        return f"env {env_name(name)}"
    if source == "platform":
        return {"bind": "env PORT", "workers": "env WEB_CONCURRENCY"}.get(
            name, "env FORWARDED_ALLOW_IPS")
    return source


def _validate(name: str, raw: Any, label: str, warnings: list[str]) -> Any:
    """`raw`'s value; a warning for a value taken as another (gunicorn's clamps)."""
    try:
        value = SETTINGS[name].parse(raw)
    except ValueError as exc:
        raise setting_error(name, str(exc), label) from None
    if isinstance(value, Taken):
        warnings.append(f"{flag_name(name)} {raw} (from {label}) is taken as {value.value}: "
                        f"{value.why}")
        return value.value
    return value


def setting_error(name: str, problem: str, source: str) -> ConfigError:
    """The one line that says a setting is wrong, and where the value came from."""
    where = "" if source == "command line" else f" (from {source})"
    return ConfigError(f"{flag_name(name)}: {problem}{where}")


def read_file(path: str) -> ConfigFile:
    """Read a TOML or Python config file."""
    if os.path.isdir(path):
        raise ConfigError(f"config file {path!r} is a directory; give the file in it")
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    if path.endswith(".toml"):
        return ConfigFile(_read_toml(path))
    if path.endswith(".py"):
        return _read_python(path)
    raise ConfigError(f"config file {path!r}: use a .toml or .py file")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not UTF-8 text (byte {exc.object[exc.start]:#x} "
                          f"at offset {exc.start}); TOML files are UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path!r}: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in SETTINGS or name == "config":
            raise ConfigError(f"config file {path!r}: unknown setting {key!r}")
        values[name] = raw
    return values


def read_env_file(path: str) -> dict[str, str]:
    """A .env file's NAME=VALUE lines (# comments, blank lines, an 'export '
    prefix, single or double quotes around the value), as --env-file reads it."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--env-file: cannot read {path!r}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.replace("_", "a").isalnum():
            raise ConfigError(f"--env-file: {path!r} line {number}: expected NAME=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()  # (a comment after an unquoted value)
        values[name] = value
    return values


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


def ssl_version_settings(value: Any) -> dict[str, Any]:
    """gunicorn's and uvicorn's ssl_version (an ssl.PROTOCOL_* number or name)
    as hybrid's settings: the defaults mean hybrid's; TLS 1.2 is a minimum."""
    text = str(value).strip().upper().removeprefix("PROTOCOL_")
    if text in ("2", "17", "TLS", "TLS_SERVER", "SSLV23"):
        return {}  # (negotiate the best version both sides have: hybrid's way)
    if text in ("5", "TLSV1_2", "TLSV1.2"):
        return {"tls_min_version": "1.2"}
    raise ConfigError(f"--ssl-version {value}: TLS 1.0 and 1.1 are not offered; the oldest "
                      f"version is 1.2 (--tls-min-version 1.2 or 1.3)")


def json_file(path: str, what: str) -> Any:
    """A JSON file's contents; ConfigError naming `what` (a flag or key) if it fails."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {path!r}: {exc}") from None


def _read_python(path: str) -> ConfigFile:
    try:
        namespace = runpy.run_path(path, run_name="__config__")
    except SystemExit as exc:
        raise ConfigError(f"config file {path!r} called sys.exit({exc.code!r}); a config file "
                          f"only sets names") from None
    except Exception as exc:  # the file is user code: report any failure in one line
        raise ConfigError(f"config file {path!r} failed: {type(exc).__name__}: {exc}") from None
    # A Python config may hold helpers and imports, so only setting names count
    # (hybrid's, or gunicorn's spellings of them).
    read = ConfigFile({})
    for name, raw in namespace.items():
        if name in GUNICORN_FILE_REFUSED and raw not in (None, False, "", [], (), {}):
            raise ConfigError(f"config file {path!r}: {name} is not supported: "
                              f"{GUNICORN_FILE_REFUSED[name]}")
        if name == "header_map" and str(raw).lower() != "drop":
            raise ConfigError(f"config file {path!r}: header_map {raw!r} is not supported: "
                              f"fields with an underscore are always dropped")
        if name == "ssl_version":
            read.values.update(ssl_version_settings(raw))
        if name == "logconfig_json" and raw:
            read.values["log_config_dict"] = json_file(str(raw), "logconfig_json")
        if name in GUNICORN_FILE_ACCEPTED:
            read.notes.append(f"{name} (from file {path}): accepted; "
                              f"{GUNICORN_FILE_ACCEPTED[name]}")
        if name in HOOK_NAMES:
            if not callable(raw):
                raise ConfigError(f"config file {path!r}: {name} is a server hook: it must be "
                                  f"a function, not {type(raw).__name__}")
            read.hooks[name] = raw
        ours = GUNICORN_FILE_NAMES.get(name, name)
        if ours in SETTINGS and ours != "config" and (ours == name or ours not in namespace):
            read.values[ours] = raw
    return read
