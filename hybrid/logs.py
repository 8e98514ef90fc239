"""The error log (stderr or a file, with level and pid) and the access log.

The access log takes gunicorn's `%(atom)s` format, so an existing
`--access-logformat` keeps working: h remote address, l "-", u user, t time,
r request line, m method, U path, q query, H protocol, s status, B / b body
bytes, f referer, a user agent, T / D / M / L duration in seconds,
microseconds, milliseconds and decimal seconds, p pid, {name}i a request
header. An unknown atom renders as "-".
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from hybrid.protocol import ProtocolError, Request
from hybrid.protocol.parser import HTTP2_PREFACE_REFUSED

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

error_log = logging.getLogger("hybrid.error")
access_logger = logging.getLogger("hybrid.access")


REPORT_INTERVAL = 60.0  # seconds between two reports that a log file cannot be written


class LogFileError(Exception):
    """A log file cannot be opened for writing; the message is one line for people."""


def setup(log_level: str, error_logfile: str, access_logfile: str | None) -> None:
    """(Re)configure both logs; safe to call again after a reload.

    Raises LogFileError, changing nothing, if a log file cannot be written.
    """
    for flag, target in (("--error-logfile", error_logfile), ("--access-logfile", access_logfile)):
        if target and target != "-":
            _check_writable(flag, target)
    _attach(error_log, error_logfile, sys.stderr, logging.Formatter(ERROR_FORMAT, DATE_FORMAT))
    error_log.setLevel(log_level.upper())
    if access_logfile:
        _attach(access_logger, access_logfile, sys.stdout, logging.Formatter("%(message)s"))
        access_logger.setLevel(logging.INFO)
    else:
        _detach(access_logger)
        access_logger.setLevel(logging.CRITICAL + 1)


# Peers' logger names, which a --log-config-dict from gunicorn or uvicorn configures.
LOGGER_SPELLINGS = {"gunicorn.error": "hybrid.error", "gunicorn.access": "hybrid.access",
                    "uvicorn.error": "hybrid.error", "uvicorn.access": "hybrid.access"}


def apply_config(path: str | None, config_dict: dict[str, Any] | None) -> None:
    """--log-config-dict, then --log-config, over hybrid's own setup. Loggers
    it does not name keep working; gunicorn's and uvicorn's logger names
    (LOGGER_SPELLINGS) configure hybrid's. LogFileError, one line, if it fails."""
    import logging.config

    try:
        if config_dict:
            logging.config.dictConfig(_as_hybrids(config_dict))
        if path and path.endswith(".json"):
            with open(path, encoding="utf-8") as handle:
                logging.config.dictConfig(_as_hybrids(json.load(handle)))
        elif path and path.endswith((".yaml", ".yml")):
            try:
                yaml = importlib.import_module("yaml")
            except ImportError:
                raise LogFileError(f"--log-config: {path!r} is YAML, which needs PyYAML "
                                   f"(pip install 'hybrid-server[yaml]')") from None
            with open(path, encoding="utf-8") as handle:
                logging.config.dictConfig(_as_hybrids(yaml.safe_load(handle)))
        elif path:
            logging.config.fileConfig(path, disable_existing_loggers=False)
            _adopt_peer_loggers()
    except LogFileError:
        raise
    except Exception as exc:  # (the file is the user's: any failure is one line)
        which = f"--log-config: {path!r}" if path else "--log-config-dict"
        raise LogFileError(f"{which}: {type(exc).__name__}: {exc}") from None


def _adopt_peer_loggers() -> None:
    """After an INI file: what it set up for gunicorn's or uvicorn's loggers
    (by name) goes to hybrid's (its qualnames cannot be renamed before)."""
    for theirs, ours in LOGGER_SPELLINGS.items():
        source = logging.Logger.manager.loggerDict.get(theirs)
        if isinstance(source, logging.Logger) and (source.handlers or source.level):
            target = logging.getLogger(ours)
            for handler in list(target.handlers):
                target.removeHandler(handler)
            for handler in source.handlers:
                target.addHandler(handler)
            target.setLevel(source.level)
            target.propagate = source.propagate


def _as_hybrids(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ValueError("expected a mapping (logging.config.dictConfig's)")
    config = {"version": 1, "disable_existing_loggers": False, **config}
    merged: dict[str, Any] = config
    loggers = dict(config.get("loggers") or {})
    for theirs, ours in LOGGER_SPELLINGS.items():
        if theirs in loggers:
            loggers.setdefault(ours, loggers[theirs])
    merged["loggers"] = loggers
    return merged


def _check_writable(flag: str, path: str) -> None:
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise LogFileError(f"{flag}: cannot write to {path!r}: {exc.strerror}") from None


def _attach(logger: logging.Logger, target: str, stream: Any, formatter: logging.Formatter) -> None:
    _detach(logger)
    handler: logging.Handler
    if target == "-":
        handler = _LogStream(stream, logger is access_logger)
    else:
        handler = _LogFile(target, logger is access_logger)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[Any]
else:  # (not subscriptable at run time before Python 3.11)
    _StreamHandler = logging.StreamHandler


class _Losing:
    """What a log does once it cannot be written (its directory removed before a
    USR1 reopen, a full disk, a closed pipe): it loses lines instead of failing
    the request that logged them, and says so at most once per REPORT_INTERVAL:
    on the error log for the access log, on stderr for the error log itself
    (and not at all when that fails too)."""

    name_for_people = ""
    is_access_log = False
    _reported_at = -REPORT_INTERVAL

    def handleError(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if now - self._reported_at < REPORT_INTERVAL:
            return
        self._reported_at = now
        problem = sys.exc_info()[1]
        what = f"{self.name_for_people}: {problem}; lines are lost until it can be written again"
        try:
            if self.is_access_log:
                error_log.error("Cannot write the access log %s", what)
            else:
                print(f"hybrid: cannot write the error log {what}", file=sys.stderr, flush=True)
        except Exception:
            pass  # nowhere left to say it; serving goes on


class _LogFile(_Losing, logging.FileHandler):
    """A log file. Each process opens it itself, at its first line (so workers
    never share the arbiter's file offset)."""

    def __init__(self, path: str, is_access_log: bool) -> None:
        super().__init__(path, delay=True)
        self.is_access_log = is_access_log
        self.name_for_people = self.baseFilename

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            try:
                self.stream = self._open()
            except OSError:
                self.handleError(record)
                return
        super().emit(record)


class _LogStream(_Losing, _StreamHandler):
    """A log on stdout or stderr (`-`)."""

    def __init__(self, stream: Any, is_access_log: bool) -> None:
        super().__init__(stream)
        self.is_access_log = is_access_log
        self.name_for_people = "on stdout" if stream is sys.stdout else "on stderr"


def _detach(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


HTTP2_ON_ASGI = "HTTP/2 is served by the asgi class: -k asgi (a WSGI app runs on its bridge)"
"""What the HTTP/1-only classes (sync, thread) say of an HTTP/2 preface they refused."""


def rejected(client_host: str, error: ProtocolError, http2_hint: str = "") -> None:
    """The debug line for a request the core refused before the app saw it;
    `http2_hint`, what would serve HTTP/2, is said when it was HTTP/2's preface."""
    hint = f" ({http2_hint})" if http2_hint and error.detail == HTTP2_PREFACE_REFUSED else ""
    error_log.debug("Rejected request from %s: %d %s%s", client_host or "-", error.status,
                    error.detail, hint)


_captured_into: str | None = None  # --capture-output's file


def capture_output(path: str) -> None:
    """--capture-output: this process's stdout and stderr (and so the workers'
    it forks) go to `path`, opened anew by each reopen_files()."""
    global _captured_into
    _captured_into = path
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def reopen_files() -> None:
    """USR1: reopen log files so logrotate can move the old ones away."""
    if _captured_into is not None:
        try:
            capture_output(_captured_into)
        except OSError as exc:
            error_log.error("--capture-output: cannot reopen %r: %s", _captured_into,
                            exc.strerror)
    for logger in (error_log, access_logger):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                # The next record opens the path afresh. (close() holds the
                # handler's lock, as emit() does: no record is written half-closed.)
                handler.close()


JSON_FORMAT = "json"
"""The --access-logformat value that asks for one JSON object per line."""
REQUEST_ID = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}\Z")


class AccessLog:
    """Formats and writes one line per request, when enabled: gunicorn's
    %(atom)s format (values from the client escaped, so that a request cannot
    forge a line), or JSON."""

    def __init__(self, logformat: str) -> None:
        self.format = logformat
        self.json = logformat == JSON_FORMAT

    @property
    def enabled(self) -> bool:
        return access_logger.isEnabledFor(logging.INFO)

    def prepare(self, request: Request) -> None:
        """Before the app sees `request`: under the JSON format, make sure it has a
        sane X-Request-ID (the client's, or a new one), which the app sees too."""
        if not self.json or not self.enabled:
            return
        headers = request.headers
        given = [value for name, value in headers if name == REQUEST_ID]
        if len(given) == 1 and _SANE_REQUEST_ID.match(given[0]):
            return
        if given:  # insane, or several: the app and the log get one of ours
            headers[:] = [(name, value) for name, value in headers if name != REQUEST_ID]
        headers.append((REQUEST_ID, uuid.uuid4().hex.encode()))

    def log(self, request: Request, status: int, body_bytes: int, client: tuple[str, str],
            duration: float) -> None:
        """`duration`: the seconds from the request's arrival to its answer's end."""
        if not access_logger.isEnabledFor(logging.INFO):
            return
        if self.json:
            access_logger.info(_json_line(request, status, body_bytes, client, duration))
            return
        atoms = _Atoms(request, status, body_bytes, client, duration)
        try:
            line = self.format % atoms
        except (TypeError, ValueError, KeyError) as exc:
            line = f"(bad --access-logformat: {exc}) " + _DEFAULT_FALLBACK % atoms
        access_logger.info(line)


_DEFAULT_FALLBACK = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def check_format(logformat: str) -> None:
    """ValueError, one line, if `logformat` cannot format an access line: checked
    at start, so that a broken format is not found out on every request."""
    if logformat == JSON_FORMAT:
        return
    try:
        logformat % _SampleAtoms()
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{exc} in {logformat!r} (atoms are written %(name)s, as in "
                         f"gunicorn; a literal % is %%)") from None


class _SampleAtoms(dict[str, Any]):
    """Stand-ins for a line's atoms: a number where `_Atoms` always has one."""

    def __missing__(self, key: str) -> Any:
        return 0 if key in ("s", "B", "T", "D", "M") else "-"


def _json_line(request: Request, status: int, body_bytes: int, client: tuple[str, str],
               duration: float) -> str:
    fields: dict[str, str] = {}
    for name, value in request.headers:
        if name in (b"user-agent", b"referer", REQUEST_ID):
            key = name.decode()
            text = value.decode("latin-1")
            fields[key] = fields[key] + "," + text if key in fields else text  # (as %({h}i)s)
    return json.dumps({
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "method": request.method,
        "protocol": protocol_name(request.http_version),
        "path": request.path.decode("latin-1"),
        "query": request.query.decode("latin-1"),
        "status": status,
        "bytes": body_bytes,
        "duration": round(duration, 6),
        "client": client[0],
        "user_agent": fields.get("user-agent", ""),
        "referer": fields.get("referer", ""),
        "request_id": fields.get("x-request-id", ""),
        "pid": os.getpid(),
    }, ensure_ascii=True)


_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def _escape(text: str) -> str:
    """`text` with quotes, backslashes and anything unprintable escaped (\\xhh)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return _UNSAFE.sub(lambda m: "\\" + m[0] if m[0] in '"\\' else f"\\x{ord(m[0]):02x}", text)


# As the access logs of gunicorn and nginx name HTTP/2 ("2" in the ASGI scope).
_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2.0"}


def protocol_name(http_version: str) -> str:
    """The protocol as access lines name it: HTTP/1.1, HTTP/2.0..."""
    return _PROTOCOLS.get(http_version) or "HTTP/" + http_version


class _Atoms(dict[str, Any]):
    """The values of the format atoms; request headers are looked up on demand."""

    def __init__(self, request: Request, status: int, body_bytes: int, client: tuple[str, str],
                 duration: float) -> None:
        target = _escape(request.target.decode("latin-1"))
        protocol = protocol_name(request.http_version)
        super().__init__(
            h=_escape(client[0]) or "-",  # (from a proxy's X-Forwarded-For, maybe)
            l="-",
            u="-",
            t=time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            r=f"{request.method} {target} {protocol}",
            m=request.method,
            U=_escape(request.path.decode("latin-1")),
            q=_escape(request.query.decode("latin-1")),
            H=protocol,
            s=status,
            B=body_bytes,
            b=body_bytes or "-",
            T=int(duration),
            D=int(duration * 1_000_000),
            M=int(duration * 1000),
            L=f"{duration:.6f}",
            p=f"<{os.getpid()}>",
        )
        self._headers = request.headers

    def __missing__(self, key: str) -> str:
        if key.startswith("{") and key.endswith("}i"):
            wanted = key[1:-2].lower().encode("latin-1")
            values = [value.decode("latin-1") for name, value in self._headers
                      if name.lower() == wanted]
            return _escape(",".join(values)) or "-"
        if key == "f":
            return str(self["{referer}i"])
        if key == "a":
            return str(self["{user-agent}i"])
        return "-"
