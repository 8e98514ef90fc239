"""gunicorn's and uvicorn's command-line flags (and granian's --http), and what each means here.

Most of their flags are hybrid's own, or aliases in the settings table
(`--ssl-certfile`, `--timeout-keep-alive`...): `SAME` names them. `FLAGS`
holds the rest, each with its answer: flags that turn into settings
(uvicorn's `--host` and `--port` make a `--bind`; what a value becomes is in
`hybrid.peer_values`), flags accepted because
what they ask for is how hybrid works anyway (said once at start), and flags
refused with what to use instead (one line, exit status 2). The CLI adds
`FLAGS` to its parser, and the README's table is generated from both, so
neither can drift from the code.

`hybrid.run()` takes `uvicorn.run()`'s keywords through the same table:
`RUN_KEYWORDS` says which flag of uvicorn's each one stands for (and how its
Python value becomes the flag's), so `port=8000` does what `--port 8000` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hybrid import peer_values as values
from hybrid.config import LOG_LEVELS, SETTINGS

GUNICORN, UVICORN, BOTH = "gunicorn", "uvicorn", "gunicorn, uvicorn"
UVICORN_GRANIAN = "uvicorn, granian"  # (granian's --http only: the HTTP versions)
SETS, ACCEPTED, REFUSED = "sets", "accepted", "refused"


@dataclass(frozen=True)
class PeerFlag:
    flags: tuple[str, ...]
    peers: str
    kind: str  # SETS, ACCEPTED or REFUSED
    answer: str  # what hybrid does with it, for people
    takes_value: bool = False
    # For SETS: the value given (None for a flag without one) -> settings.
    sets: Callable[[str | None], dict[str, Any]] | None = None
    # For SETS: the value given -> what to say of it at start ("" for nothing).
    says: Callable[[str | None], str] | None = None

    def note(self, value: str | None) -> str:
        """What to say at start of this flag given `value` ("" for nothing)."""
        if self.kind == ACCEPTED:
            return self.answer
        return self.says(value) if self.says else ""


# Addresses: uvicorn's --host, --port, --uds and --fd make one --bind.
ADDRESS_FLAGS = ("--host", "--port", "--uds", "--fd")


def bind_from(given: Mapping[str, str]) -> str:
    """The --bind address uvicorn's --host/--port/--uds/--fd name (as uvicorn:
    a socket path or descriptor wins over host and port)."""
    if "--uds" in given:
        return f"unix:{given['--uds']}"
    if "--fd" in given:
        return f"fd://{given['--fd']}"
    host = given.get("--host", "127.0.0.1")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{given.get('--port', '8000')}"


FLAGS: tuple[PeerFlag, ...] = (
    PeerFlag(("--host",), UVICORN, SETS, "with --port, the same as --bind HOST:PORT", True),
    PeerFlag(("--port",), UVICORN, SETS, "with --host, the same as --bind HOST:PORT", True),
    PeerFlag(("--uds",), UVICORN, SETS, "the same as --bind unix:PATH", True),
    PeerFlag(("--fd",), UVICORN, SETS, "the same as --bind fd://N", True),
    PeerFlag(("--access-log",), UVICORN, SETS,
             "the same as --access-logfile - (hybrid's default is no access log)",
             sets=values.constant(access_logfile="-")),
    PeerFlag(("--no-access-log",), UVICORN, SETS, "no access log, hybrid's default",
             sets=values.constant(access_logfile="")),
    PeerFlag(("--no-proxy-headers",), UVICORN, SETS,
             "the same as --forwarded-allow-ips '': no peer's proxy headers are believed",
             sets=values.constant(forwarded_allow_ips="")),
    PeerFlag(("--no-server-header",), UVICORN, SETS, "no Server field (--server-header off)",
             sets=values.constant(server_header=False)),
    PeerFlag(("--no-date-header",), UVICORN, SETS, "no Date field (--date-header off)",
             sets=values.constant(date_header=False)),
    PeerFlag(("--no-sendfile",), GUNICORN, SETS, "the same as --sendfile false",
             sets=values.constant(sendfile=False)),
    PeerFlag(("--log-config-json",), GUNICORN, SETS,
             "reads the JSON file into --log-config-dict", True, values.log_config_json),
    PeerFlag(("--ssl-version",), BOTH, SETS,
             "2 and 17 (PROTOCOL_TLS, PROTOCOL_TLS_SERVER: the defaults) change nothing; "
             "TLSv1_2 (5) is --tls-min-version 1.2; older versions are refused", True,
             values.ssl_version),
    PeerFlag(("--check-config", "--print-config"), GUNICORN, SETS,
             "the same as `hybrid check APP`: loads the app, prints the settings and where "
             "each came from, exits 0 (or 1 with the problem)"),
    PeerFlag(("--proxy-headers",), UVICORN, ACCEPTED,
             "proxy headers are believed from --forwarded-allow-ips, as uvicorn's default"),
    PeerFlag(("--worker-tmp-dir",), GUNICORN, ACCEPTED,
             "no temporary file is made: heartbeats go through shared memory and a pipe",
             True),
    PeerFlag(("--initgroups",), GUNICORN, ACCEPTED,
             "with --user, the workers always get that user's supplementary groups"),
    PeerFlag(("--ws-max-queue",), UVICORN, ACCEPTED,
             "the asgi class pauses reading a WebSocket once 64 received messages wait for "
             "the app (backpressure), whatever the number", True),
    PeerFlag(("-R", "--enable-stdio-inheritance",), GUNICORN, ACCEPTED,
             "workers always write to the arbiter's stdout and stderr"),
    PeerFlag(("--do-handshake-on-connect",), GUNICORN, ACCEPTED,
             "the TLS handshake is always done as a connection opens, within --header-timeout, "
             "without holding up other connections"),
    PeerFlag(("--suppress-ragged-eofs",), GUNICORN, ACCEPTED,
             "a TLS connection cut without close_notify counts as closed"),
    PeerFlag(("--reload-engine",), GUNICORN, ACCEPTED,
             "--reload polls the files every 0.5 s, whatever the engine", True),
    PeerFlag(("--reload-delay",), UVICORN, ACCEPTED,
             "--reload polls the files every 0.5 s", True),
    PeerFlag(("--http",), UVICORN_GRANIAN, SETS,
             "granian's 1 is --http-protocols h1; 2 is --http-protocols h2 with "
             "--http2-cleartext prior-knowledge; auto is hybrid's default; uvicorn's h11, "
             "httptools and zttp are accepted: hybrid's own HTTP/1.1 core serves every class",
             True, values.http, values.http_note),
    PeerFlag(("--ws",), UVICORN, SETS,
             "the asgi class serves WebSockets with wsproto, whatever is named; 'none' is "
             "refused", True, values.ws),
    PeerFlag(("--use-colors", "--no-use-colors"), UVICORN, ACCEPTED,
             "hybrid's log lines have no colours"),
    PeerFlag(("--h11-max-incomplete-event-size",), UVICORN, ACCEPTED,
             "h11 is not used: a request head is bounded by --limit-request-line, "
             "--limit-request-fields and --limit-request-field-size (64 KiB at least in all)",
             True),
    PeerFlag(("--permit-unconventional-http-method",), GUNICORN, ACCEPTED,
             "any RFC 9110 token is a method here"),
    PeerFlag(("--header-map",), GUNICORN, SETS,
             "'drop' (fields with an underscore are dropped) is how hybrid works; the others "
             "are refused", True, values.header_map),
    PeerFlag(("--statsd-host", "--statsd-prefix", "--dogstatsd-tags"), GUNICORN, REFUSED,
             "hybrid has no StatsD client: scrape /metrics (Prometheus text) from "
             "--control-bind instead", True),
    PeerFlag(("-D", "--daemon"), GUNICORN, REFUSED,
             "hybrid stays in the foreground: run it under systemd, Docker or supervisord"),
    PeerFlag(("--paste", "--paster", "--paste-global"), GUNICORN, REFUSED,
             "PasteDeploy files are not read: give the app as module:attribute", True),
    PeerFlag(("--logger-class",), GUNICORN, REFUSED,
             "use --log-config or --log-config-dict to change how hybrid logs", True),
    PeerFlag(("--log-syslog", "--disable-redirect-access-to-syslog"), GUNICORN, REFUSED,
             "use --log-config with a logging.handlers.SysLogHandler"),
    PeerFlag(("--log-syslog-to", "--log-syslog-prefix", "--log-syslog-facility"), GUNICORN,
             REFUSED, "use --log-config with a logging.handlers.SysLogHandler", True),
    PeerFlag(("--spew",), GUNICORN, REFUSED, "no line tracing: use a profiler (py-spy)"),
    PeerFlag(("--strip-header-spaces",), GUNICORN, REFUSED,
             "whitespace before a field's colon is rejected with 400, as RFC 9112 (5.1) "
             "requires: it is how requests are smuggled past proxies"),
    PeerFlag(("--casefold-http-method",), GUNICORN, REFUSED,
             "methods are case-sensitive (RFC 9110, 9.1): get is not GET"),
    PeerFlag(("--permit-unconventional-http-version",), GUNICORN, REFUSED,
             "HTTP/1.0 and HTTP/1.1 only"),
    PeerFlag(("--forwarder-headers",), GUNICORN, REFUSED,
             "--forwarded-allow-ips believes X-Forwarded-For, X-Forwarded-Proto and Forwarded "
             "from the proxies it names", True),
    PeerFlag(("--reload-extra-file",), GUNICORN, REFUSED,
             "use --reload-include GLOB (a file name or a path under a --reload-dir)", True),
    PeerFlag(("--reload-exclude",), UVICORN, REFUSED,
             "--reload watches *.py and the --reload-include globs only: narrow --reload-dir "
             "instead", True),
    PeerFlag(("--limit-max-requests-jitter",), UVICORN, SETS,
             "the same as --max-requests-jitter", True, values.setting("max_requests_jitter")),
    PeerFlag(("--timeout-worker-healthcheck",), UVICORN, ACCEPTED,
             "a hung worker is found by --timeout instead: a heartbeat from the worker's own "
             "loop, which a blocked loop stops too", True),
    # (uvicorn's auto_zttp protocol: h2 then HTTP/1.1 by ALPN, h2c by its preface.)
    PeerFlag(("--http2",), UVICORN, SETS,
             "the same as --http-protocols h2,h1 --http2-cleartext prior-knowledge (without "
             "needing --http zttp)",
             sets=values.constant(http_protocols="h2,h1", http2_cleartext="prior-knowledge")),
    PeerFlag(("--reset-contextvars",), UVICORN, REFUSED,
             "each request's task starts from a copy of the context its connection opened "
             "in, never from an empty one"),
    # gunicorn's since its asgi worker (24 to 27).
    PeerFlag(("--asgi-lifespan",), GUNICORN, SETS, "the same as --lifespan (auto, on, off)",
             True, values.setting("lifespan")),
    PeerFlag(("--asgi-loop",), GUNICORN, SETS,
             "the same as --loop: auto and uvloop are uvloop, asyncio is asyncio", True,
             values.setting("loop")),
    PeerFlag(("--websocket-max-message-size",), GUNICORN, SETS,
             "the same as --ws-max-size; 0 (no limit) is taken as 1 GiB, the largest hybrid "
             "takes, since a message is held in memory whole", True, values.ws_max_size),
    PeerFlag(("--asgi-disconnect-grace-period",), GUNICORN, ACCEPTED,
             "an app's task is not cancelled when its client leaves: receive() gives it "
             "http.disconnect and send() raises, so it cleans up in its own time (within "
             "--request-timeout, when set)", True),
    PeerFlag(("--http-parser",), GUNICORN, ACCEPTED,
             "requests are always parsed by hybrid's own strict HTTP/1.1 core (httptools "
             "underneath), whatever is named", True),
    PeerFlag(("--protocol",), GUNICORN, SETS,
             "http, gunicorn's default, is how hybrid works; uwsgi is refused: hybrid speaks "
             "HTTP only (have nginx proxy_pass to it, not uwsgi_pass)", True, values.protocol),
    PeerFlag(("--uwsgi-allow-from",), GUNICORN, REFUSED,
             "hybrid speaks HTTP only, not uWSGI's protocol: have nginx proxy_pass to it "
             "(not uwsgi_pass), and name nginx in --forwarded-allow-ips", True),
    PeerFlag(("--permit-obsolete-folding",), GUNICORN, REFUSED,
             "a field line folded onto the next (obs-fold) is rejected with 400, as RFC 9112 "
             "(5.2) allows: proxies that read it otherwise are how requests are smuggled"),
    PeerFlag(("--enable-backlog-metric",), GUNICORN, REFUSED,
             "hybrid has no StatsD client: scrape /metrics (Prometheus text) from "
             "--control-bind instead; the listen queue's length is `ss -ltn`'s Recv-Q"),
    PeerFlag(("--control-socket", "--control-socket-mode"), GUNICORN, REFUSED,
             "hybrid has no control socket (nor gunicornc): signal the arbiter (HUP reloads, "
             "TTIN and TTOU add and remove a worker, TERM stops) and read /livez, /readyz and "
             "/metrics from --control-bind", True),
    PeerFlag(("--no-control-socket",), GUNICORN, ACCEPTED,
             "there is no control socket to turn off: signals and --control-bind's endpoints "
             "control hybrid"),
    PeerFlag(("--dirty-app", "--dirty-workers", "--dirty-threads", "--dirty-timeout",
              "--dirty-graceful-timeout"), GUNICORN, REFUSED,
             "hybrid has no pool of dirty workers for heavy work: run it in a task queue "
             "(Celery, RQ, Dramatiq) or a separate service the app calls", True),
)

# Their flags that are hybrid's own, or aliases of its settings: the same meaning.
SAME: dict[str, tuple[str, ...]] = {
    GUNICORN: (
        "-c", "--config", "-b", "--bind", "--backlog", "-w", "--workers", "-k",
        "--worker-class", "--threads", "--worker-connections", "--max-requests",
        "--max-requests-jitter", "-t", "--timeout", "--graceful-timeout", "--keep-alive",
        "--limit-request-line", "--limit-request-fields", "--limit-request-field_size",
        "--reload", "--preload", "--reuse-port", "--chdir", "-e", "--env", "-p", "--pid",
        "-u", "--user", "-g", "--group", "-m", "--umask", "--forwarded-allow-ips",
        "--pythonpath", "--access-logfile", "--access-logformat", "--error-logfile",
        "--log-file", "--log-level", "--capture-output", "--log-config", "-n", "--name",
        "--certfile", "--keyfile", "--ca-certs", "--cert-reqs", "--ciphers",
        "--proxy-protocol", "--proxy-allow-from", "--logconfig", "--logconfig-dict",
        "--http-protocols", "--http2-cleartext", "--http2-max-concurrent-streams",
        "--http2-initial-window-size", "--http2-max-frame-size", "--http2-max-header-list-size",
    ),
    UVICORN: (
        "--reload", "--reload-dir", "--reload-include", "--workers", "--loop",
        "--ws-max-size", "--ws-ping-interval", "--ws-ping-timeout", "--ws-per-message-deflate",
        "--lifespan", "--interface", "--env-file", "--log-config", "--log-level",
        "--forwarded-allow-ips", "--root-path", "--limit-concurrency", "--backlog",
        "--limit-max-requests", "--timeout-keep-alive", "--timeout-graceful-shutdown",
        "--ssl-keyfile", "--ssl-certfile", "--ssl-keyfile-password", "--ssl-cert-reqs",
        "--ssl-ca-certs", "--ssl-ciphers", "--header", "--app-dir", "--factory",
        "--server-header", "--date-header",
    ),
}


def setting_of(flag: str) -> str:
    """The setting whose flags include `flag`."""
    return next(name for name, setting in SETTINGS.items() if flag in setting.flags)


def by_flag() -> dict[str, PeerFlag]:
    return {flag: peer for peer in FLAGS for flag in peer.flags}


def translate(given: Mapping[str, str | None]) -> tuple[dict[str, Any], list[str], bool]:
    """The peer flags given on a command line ({flag: value}) as (settings,
    notes to log at start, whether `hybrid check` is meant); ConfigError for
    a refused value."""
    table = by_flag()
    settings: dict[str, Any] = {}
    notes: list[str] = []
    check = False
    addresses = {flag: str(value) for flag, value in given.items() if flag in ADDRESS_FLAGS}
    if addresses:
        settings["bind"] = bind_from(addresses)
    for flag, value in given.items():
        peer = table[flag]
        if flag in ADDRESS_FLAGS:
            continue
        if flag in ("--check-config", "--print-config"):
            check = True
            continue
        if peer.sets is not None:
            settings.update(peer.sets(value))
        if note := peer.note(value):
            notes.append(f"{flag} ({peer.peers}'s): accepted; {note}")
    return settings, notes, check


def refusal(flag: str) -> str:
    """The one line a refused flag gets."""
    peer = by_flag()[flag]
    return f"{flag} ({peer.peers}'s) is not supported: {peer.answer}"


def table() -> list[tuple[str, str, str]]:
    """(flag, whose, hybrid's answer) for each of their flags, as the README shows them."""
    rows: dict[str, tuple[str, str, str]] = {}
    for peer_name, flags in SAME.items():
        for flag in flags:
            name = setting_of(flag)
            own = next((f for f in SETTINGS[name].flags if f.startswith("--")), flag)
            answer = "the same" if own == flag else f"the same as `{own}`"
            whose = BOTH if flag in rows else peer_name
            rows[flag] = (flag, whose, answer)
    for peer in FLAGS:
        for flag in peer.flags:
            answer = {SETS: "", ACCEPTED: "accepted: ", REFUSED: "refused: "}[peer.kind]
            rows[flag] = (flag, peer.peers, answer + peer.answer)
    return sorted(rows.values(), key=lambda row: row[0].lstrip("-").lower())


# --- uvicorn.run()'s keywords -------------------------------------------------------------

def _same(value: Any) -> Any:
    return value


def _path(value: Any) -> Any:
    """A path given as an os.PathLike, as the text a flag takes."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _number(value: Any) -> Any:
    """An int (an ssl.PROTOCOL_* or ssl.CERT_* member, say) as the number a flag takes."""
    return str(int(value)) if isinstance(value, int) and not isinstance(value, bool) else value


def _level(value: Any) -> Any:
    """A logging level number as the first level name at or above it (uvicorn's
    TRACE, 5, is debug; 25 shows what warning shows)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return next((name for name in LOG_LEVELS if logging.getLevelName(name.upper()) >= value),
                    LOG_LEVELS[-1])
    return value


def _header_pairs(value: Any) -> Any:
    """uvicorn's [(name, value), ...] as --header's NAME:VALUE texts."""
    if not isinstance(value, (list, tuple)):
        return value
    return [f"{item[0]}: {item[1]}" if isinstance(item, (list, tuple)) and len(item) == 2
            else item for item in value]


def _log_config_file(value: Any) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"hybrid.run() takes log_config as a logging.config.dictConfig dict or "
                        f"a file's path, not {type(value).__name__}")
    return os.fspath(value)


@dataclass(frozen=True)
class Keyword:
    """One of uvicorn.run()'s keywords, as the flag of uvicorn's command line that
    means the same: hybrid.run() then does with it what the CLI does with that flag."""

    flag: str
    convert: Callable[[Any], Any] = _same  # uvicorn's Python value -> the flag's value
    switch: bool = False  # a bool: `flag` when true, `off` (if any) when false
    off: str | None = None
    unset: Any = None  # what uvicorn's None means, where that is not hybrid's default
    by_type: tuple[tuple[type, str], ...] = ()  # a value of this type means this flag instead

    def as_flag(self, value: Any) -> tuple[str, Any] | None:
        """(flag, its value) for `value`; None when it asks for nothing."""
        if value is None:
            return None if self.unset is None else (self.flag, self.unset)
        if self.switch:
            chosen = self.flag if value else self.off
            return None if chosen is None else (chosen, None)
        for kind, flag in self.by_type:
            if isinstance(value, kind):
                return flag, value
        return self.flag, self.convert(value)

    def flags(self) -> tuple[str, ...]:
        return (self.flag, *([self.off] if self.off else []), *(f for _, f in self.by_type))


def _spelt(*names: str, convert: Callable[[Any], Any] = _same) -> dict[str, Keyword]:
    """Keywords whose flag is their name spelt as a flag (ws_max_size: --ws-max-size)."""
    return {name: Keyword("--" + name.replace("_", "-"), convert) for name in names}


# uvicorn.run()'s keywords (uvicorn 0.55), each with the flag it stands for.
RUN_KEYWORDS: dict[str, Keyword] = {
    **_spelt("host", "port", "uds", "fd", "loop", "http", "ws", "ws_max_size", "ws_max_queue",
             "ws_per_message_deflate", "lifespan", "interface", "reload", "reload_delay",
             "workers", "server_header", "date_header", "forwarded_allow_ips", "root_path",
             "limit_concurrency", "backlog", "limit_max_requests", "limit_max_requests_jitter",
             "timeout_keep_alive", "timeout_graceful_shutdown", "timeout_worker_healthcheck",
             "ssl_keyfile_password", "ssl_ciphers", "factory", "h11_max_incomplete_event_size"),
    **_spelt("env_file", "ssl_keyfile", "ssl_certfile", "ssl_ca_certs", "app_dir", convert=_path),
    **_spelt("ssl_version", "ssl_cert_reqs", convert=_number),
    "ws_ping_interval": Keyword("--ws-ping-interval", unset=0.0),  # None: no pings
    "ws_ping_timeout": Keyword("--ws-ping-timeout", unset=0.0),  # None: wait for ever
    "reload_dirs": Keyword("--reload-dir"),
    "reload_includes": Keyword("--reload-include"),
    "reload_excludes": Keyword("--reload-exclude"),
    "log_config": Keyword("--log-config", _log_config_file, by_type=((dict, "--log-config-dict"),)),
    "log_level": Keyword("--log-level", _level),
    "access_log": Keyword("--access-log", switch=True, off="--no-access-log"),
    "proxy_headers": Keyword("--proxy-headers", switch=True, off="--no-proxy-headers"),
    "use_colors": Keyword("--use-colors", switch=True, off="--no-use-colors"),
    "http2": Keyword("--http2", switch=True),
    "reset_contextvars": Keyword("--reset-contextvars", switch=True),
    "headers": Keyword("--header", _header_pairs),
}
# uvicorn.run()'s keywords that no flag stands for, and why they have no meaning here.
RUN_REFUSED = {
    "ssl_context_factory": "give a Python config file (config=) with gunicorn's ssl_context"
                           "(config, default_ssl_context_factory) hook, which hybrid calls",
}


def run_settings(keywords: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """hybrid.run()'s keywords as settings, and the notes to log at start: hybrid's
    own setting names, and uvicorn.run()'s (RUN_KEYWORDS), which mean what the same
    flags of uvicorn's mean on the command line. TypeError for a name neither has,
    for one of uvicorn's with no meaning here, and for two names of one setting;
    ConfigError for a value the CLI refuses too."""
    unknown = sorted(set(keywords) - set(SETTINGS) - set(RUN_KEYWORDS) - set(RUN_REFUSED))
    if unknown or "app" in keywords:
        raise TypeError(f"hybrid.run() takes no setting named {', '.join(unknown or ['app'])} "
                        f"(the names are those of `hybrid check`, and uvicorn.run()'s)")
    settings: dict[str, Any] = {}
    set_by: dict[str, str] = {}  # setting -> the keyword that set it
    notes: list[str] = []
    addresses: dict[str, str] = {}
    for keyword, value in keywords.items():
        if keyword in RUN_REFUSED:
            if value is not None:
                raise TypeError(f"hybrid.run() cannot use {keyword}: {RUN_REFUSED[keyword]}")
            continue
        if keyword not in RUN_KEYWORDS:
            _put(settings, set_by, keyword, value, keyword)
            continue
        given = RUN_KEYWORDS[keyword].as_flag(value)
        if given is None:
            continue
        flag, flag_value = given
        if flag in ADDRESS_FLAGS:
            addresses[flag] = str(flag_value)
            continue
        for name, setting_value in _flag_settings(keyword, flag, flag_value, notes).items():
            _put(settings, set_by, name, setting_value, keyword)
    if addresses:
        named = ", ".join(f.lstrip("-") for f in addresses)
        _put(settings, set_by, "bind", bind_from(addresses), named)
    return settings, notes


def _flag_settings(keyword: str, flag: str, value: Any, notes: list[str]) -> dict[str, Any]:
    """The settings `flag` makes of `value`, as on the command line (`keyword`: the
    name it came by, for the notes and the errors)."""
    peer = by_flag().get(flag)
    if peer is None:  # one of hybrid's own flags
        return {setting_of(flag): value}
    if peer.kind == REFUSED:
        raise TypeError(f"hybrid.run() cannot use {keyword} ({peer.peers}'s {flag}): "
                        f"{peer.answer}")
    given = None if value is None else str(value)
    if note := peer.note(given):
        notes.append(f"{keyword} (uvicorn.run()'s): accepted; {note}")
    return peer.sets(given) if peer.sets else {}


def _put(settings: dict[str, Any], set_by: dict[str, str], name: str, value: Any,
         keyword: str) -> None:
    if name in set_by:
        raise TypeError(f"hybrid.run() got {set_by[name]} and {keyword}, which both set "
                        f"{name}: give one")
    settings[name] = value
    set_by[name] = keyword
