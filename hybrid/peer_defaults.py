"""Where hybrid's defaults differ from gunicorn's and uvicorn's, and the flags
that give theirs.

`PEER_DEFAULTS` holds each peer's default for the settings hybrid shares with
it, as hybrid's setting would hold it; `BEHAVIOURS` the differences no
setting's default states (what a trusted proxy's X-Forwarded-For becomes, say).
`differences()` makes the README's "Where the defaults differ" from both, and
a test checks that each row's flags really give the peer's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybrid.config import DEFAULTS, SETTINGS, flag_name, shown
from hybrid.peers import BOTH, GUNICORN, UVICORN
from hybrid.validators import MAX_SECONDS

_LOOPBACK = ("127.0.0.1", "::1")
_16_MIB = 16 * 1024 * 1024

# gunicorn's (27) and uvicorn's (0.55) defaults for the settings hybrid shares with
# them, as hybrid's setting would hold them. Those that differ from hybrid's own
# make the README's "Where the defaults differ", each with the flag that gives it.
PEER_DEFAULTS: dict[str, dict[str, Any]] = {
    GUNICORN: {
        "bind": ("127.0.0.1:8000",), "workers": 1, "threads": 1, "worker_connections": 1000,
        "keep_alive": 2.0, "timeout": 30.0, "graceful_timeout": 30.0, "max_requests": 0,
        "max_requests_jitter": 0, "backlog": 2048, "log_level": "info", "error_logfile": "-",
        "access_logfile": None,
        "access_logformat": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        "capture_output": False, "preload": False, "reuse_port": False, "sendfile": True,
        "umask": 0, "reload": False, "root_path": "", "forwarded_allow_ips": _LOOPBACK,
        "proxy_protocol": False, "proxy_allow_ips": _LOOPBACK, "limit_request_line": 4094,
        "limit_request_fields": 100, "limit_request_field_size": 8190, "lifespan": "auto",
        "ws_max_size": _16_MIB, "cert_reqs": "none", "ciphers": None, "http_protocols": ("h1",),
        "http2_cleartext": "off", "http2_max_concurrent_streams": 100,
        "http2_initial_window_size": 65535, "http2_max_frame_size": 16384,
        "http2_max_header_list_size": 65536,
    },
    UVICORN: {
        "bind": ("127.0.0.1:8000",), "workers": 1, "keep_alive": 5.0,
        "graceful_timeout": MAX_SECONDS, "max_requests": 0, "max_requests_jitter": 0,
        "backlog": 2048, "log_level": "info", "error_logfile": "-", "access_logfile": "-",
        "access_logformat": '%(h)s - "%(r)s" %(s)s', "forwarded_allow_ips": ("127.0.0.1",),
        "limit_concurrency": 0, "loop": "uvloop", "lifespan": "auto", "interface": "auto",
        "ws_max_size": _16_MIB, "ws_ping_interval": 20.0, "ws_ping_timeout": 20.0,
        "ws_per_message_deflate": True, "server_header": True, "date_header": True,
        "headers": (), "root_path": "", "reload": False, "factory": False, "cert_reqs": "none",
        "ciphers": None, "http_protocols": ("h1",), "http2_cleartext": "off",
    },
}
# How to say a peer's default where its value alone would mislead, and what else
# the flag that gives it does here.
_SAID = {
    (GUNICORN, "threads"): "1: `-k gthread` runs one thread per worker",
    (GUNICORN, "umask"): "0, while it binds a UNIX socket: anyone may connect to the file",
    (UVICORN, "graceful_timeout"): "none: it waits for every request to finish",
    (UVICORN, "access_logfile"): "on, to stdout",
    (UVICORN, "access_logformat"): '`%(client_addr)s - "%(request_line)s" %(status_code)s`, '
                                   'after the level',
    (GUNICORN, "http_protocols"): "`h1`: HTTP/1.1 only",
    (UVICORN, "http_protocols"): "HTTP/1.1 only, without `--http2`",
}
_OURS_SAID = {"access_logfile": "off", "umask": "the one hybrid was started with",
              "http_protocols": "`auto`: over TLS, ALPN offers h2 first wherever the http2 "
                                "extra is installed and the asgi class serves; h2c off"}
_NOTES = {
    (GUNICORN, "umask"): "log files are created under it too",
    (UVICORN, "graceful_timeout"): "the longest it takes",
    (UVICORN, "access_logformat"): "the closest: %(h)s has no port",
}


@dataclass(frozen=True)
class Difference:
    """A row of the README's "Where the defaults differ": what differs, whose
    default it is, theirs and hybrid's in words, and the flags that do as they do
    (or come closest: `note` says so)."""

    what: str
    peers: str
    theirs: str
    ours: str
    restore: tuple[str, ...]
    note: str = ""


# Differences in what a default does, where no one setting's value says it.
BEHAVIOURS: tuple[Difference, ...] = (
    Difference("client address behind a proxy", GUNICORN,
               "REMOTE_ADDR and `%(h)s` stay the proxy's address; X-Forwarded-For is not read",
               "a trusted proxy's X-Forwarded-For (or `Forwarded: for=`) client, as in uvicorn",
               ("--forwarded-allow-ips", ""),
               "the closest: X-Forwarded-Proto is then not believed either"),
    Difference("`Forwarded` (RFC 7239)", BOTH, "not read",
               "believed from --forwarded-allow-ips, before X-Forwarded-*",
               ("--forwarded-allow-ips", ""),
               "the closest: no proxy header is then believed"),
    Difference("`$PORT` set", UVICORN, "not read: 127.0.0.1:8000",
               "0.0.0.0:$PORT, as in gunicorn", ("--host", "127.0.0.1", "--port", "8000")),
    Difference("request head limits", UVICORN, "none (with httptools; h11: 16 KiB a head)",
               "gunicorn's: 414 past a 4094-byte request line, 431 past 100 fields or an "
               "8190-byte field line",
               ("--limit-request-line", "8190", "--limit-request-fields", "32768",
                "--limit-request-field-size", "65536"),
               "8190: the longest request line gunicorn takes"),
    Difference("a slow request head", BOTH, "no timeout of their own",
               "408 after --header-timeout (10 s)",
               ("--header-timeout", str(int(MAX_SECONDS)))),
    Difference("a stalled request body", BOTH, "no timeout of their own",
               "408 after --body-timeout (30 s) without a byte",
               ("--body-timeout", str(int(MAX_SECONDS)))),
)


def differences() -> list[Difference]:
    """Every default of gunicorn's or uvicorn's that hybrid does not share, with the
    flags that give it: the settings' values first, in the table's order, then the
    behaviours."""
    rows: list[Difference] = []
    for name in SETTINGS:
        for peer in (GUNICORN, UVICORN):
            theirs = PEER_DEFAULTS[peer].get(name, DEFAULTS[name])
            if theirs == DEFAULTS[name]:
                continue
            other = next(p for p in (GUNICORN, UVICORN) if p != peer)
            ours = _OURS_SAID.get(name) or f"`{shown(DEFAULTS[name])}`"
            if name in PEER_DEFAULTS[other] and PEER_DEFAULTS[other][name] == DEFAULTS[name]:
                ours += f", as {other}'s"
            rows.append(Difference(f"`{name}`", peer,
                                   _SAID.get((peer, name), f"`{shown(theirs)}`"), ours,
                                   (flag_name(name), shown(theirs)),
                                   _NOTES.get((peer, name), "")))
    return rows + list(BEHAVIOURS)
