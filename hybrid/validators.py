"""What each setting's value may be: the validators the settings table names.

Each takes a raw value (text from the command line or the environment, a
typed value from a config file) and returns the setting's value, or raises
ValueError with what is wrong, in words for people; `hybrid.sources` turns
that into one line naming the setting and where the value came from. A
number's validator is `Bounded`: its bounds end the setting's help, so what
is checked is what `--help` and the README say. A value taken as another
(gunicorn's clamps, its meaning of 0) comes back as `Taken`, with why.
"""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hybrid import logs
from hybrid.addresses import parse_address

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
MAX_H2_STREAMS = 10_000
"""Streams open at once on one HTTP/2 connection: each is a task of the app's
with a receive buffer, so more would let one client hold a worker's memory;
browsers open about 100."""
MIN_H2_WINDOW = 1024  # a smaller window has the client send a frame per few bytes (granian's floor)
MAX_H2_WINDOW = 2**31 - 1  # RFC 9113, 6.9.1
MIN_H2_FRAME, MAX_H2_FRAME = 16384, 2**24 - 1  # RFC 9113, 6.5.2
MAX_H2_HEADER_LIST = 2 * 1024 * 1024
"""The largest header list (RFC 9113's size: names, values and 32 bytes a
field) an HTTP/2 request may bring: the most the --limit-request-* settings
let an HTTP/1.1 head hold (a 1 MiB field line, 32768 fields)."""


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


def whole(low: int, high: int, unit: str = "") -> Bounded:
    """A whole number from `low` to `high`."""
    def parse(raw: Any) -> int:
        value = _integer(raw)
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if value > high:
            raise ValueError(f"must be at most {high}{unit}, got {value}")
        return value
    return Bounded(parse, f"{low} to {high}{unit}")


def clamped(high: int, above: str, zero: str = "") -> Bounded:
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


seconds = _seconds_bounded(positive=False)
positive_seconds = _seconds_bounded(positive=True)
window_bits = whole(9, 15)  # zlib's raw deflate windows (RFC 7692: 8 to 15; zlib refuses 8)
mem_level = whole(1, 9)


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


worker_count = Bounded(_worker_count_parse,
                        f"1 to {WORKERS_PER_CPU} per CPU, or to 64 where that is more")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def boolean(raw: Any) -> bool:
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


def plain_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected text, {_got(raw)}")
    return raw


def stripped_text(raw: Any) -> str:
    return plain_text(raw).strip()


def optional_text(raw: Any) -> str | None:
    """Text, or None (a Python config file's None, as gunicorn's defaults are)."""
    return None if raw is None else plain_text(raw) or None


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = plain_text(raw).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {raw!r}")
        return text
    return parse


def text_list(raw: Any) -> tuple[str, ...]:
    """A list from a file, repeated flags, or a comma-separated string."""
    out: list[str] = []
    for text in _texts(raw):
        out.extend(part.strip() for part in text.split(",") if part.strip())
    return tuple(out)


def bind_list(raw: Any) -> tuple[str, ...]:
    addresses = text_list(raw)
    if not addresses:
        raise ValueError("needs at least one address")
    parsed = tuple(str(parse_address(text)) for text in addresses)
    for address in parsed:
        if parsed.count(address) > 1:
            raise ValueError(f"{address} is given more than once")
    return parsed


def control_address(raw: Any) -> str:
    text = stripped_text(raw)
    if not text:
        return ""
    address = parse_address(text)
    if address.kind == "fd":
        raise ValueError("expected HOST:PORT or unix:PATH")
    return str(address)


def networks(raw: Any) -> tuple[str, ...]:
    items = text_list(raw)
    for item in items:
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (or '*')") from None
    return items


def root_path(raw: Any) -> str:
    text = plain_text(raw).strip()
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
            else stripped_text(raw)
        if text:
            try:
                by_id(int(text)) if text.isdigit() else by_name(text)
            except KeyError:
                raise ValueError(f"no such {kind} {text!r}") from None
        return text
    return parse


user = _account("user", pwd.getpwuid, pwd.getpwnam)
group = _account("group", grp.getgrgid, grp.getgrnam)


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


umask = Bounded(_umask_parse, "000 to 777, octal")


def spelled(choices: tuple[str, ...], others: Mapping[str, str]) -> Callable[[Any], str]:
    """A choice that also takes a peer's spellings of the same values (`others`)."""
    choose = choice(*choices)

    def parse(raw: Any) -> str:
        text = stripped_text(raw).lower()
        return choose(others.get(text, text))
    return parse


def _texts(raw: Any) -> list[str]:
    """The items of a list (a file's, or repeated flags), or one item alone."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"expected text or a list of texts, {_got(raw)}")
    return list(items)


def assignments(raw: Any) -> tuple[str, ...]:
    """NAME=VALUE items (a value may hold commas: they are not split)."""
    out = []
    for text in _texts(raw):
        name, sep, _ = text.partition("=")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"expected NAME=VALUE, got {text!r}")
        out.append(text.strip())
    return tuple(out)


_FRAMING_FIELDS = ("content-length", "transfer-encoding", "connection")


def header_fields(raw: Any) -> tuple[str, ...]:
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


def log_dict(raw: Any) -> dict[str, Any] | None:
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


def cert_reqs(raw: Any) -> str:
    # (A number too: ssl.CERT_REQUIRED, in a gunicorn config file.)
    text = str(int(raw)) if isinstance(raw, int) and not isinstance(raw, bool) \
        else stripped_text(raw).lower()
    return choice("none", "optional", "required")(_CERT_REQS.get(text, text))


def access_format(raw: Any) -> str:
    text = plain_text(raw)
    logs.check_format(text)
    return text


HTTP_PROTOCOLS = ("h1", "h2")
AUTO_PROTOCOLS = ("auto",)  # --http-protocols' default: what the class and the extra allow


def http_protocols(raw: Any) -> tuple[str, ...]:
    """gunicorn's comma list of h1 and h2, most preferred first; or auto."""
    items = tuple(item.lower() for item in text_list(raw))
    if items == AUTO_PROTOCOLS:
        return items
    if not items:
        raise ValueError("expected h1, h2 or both, the preferred first (h2,h1), or auto")
    for item in items:
        if item == "h3":
            raise ValueError("h3: HTTP/3 (over QUIC) is not served here; give h1, h2 or both")
        if item not in HTTP_PROTOCOLS:
            raise ValueError(f"expected h1, h2 or both, the preferred first (h2,h1), or auto "
                             f"alone; got {item!r}")
        if items.count(item) > 1:
            raise ValueError(f"{item} is given more than once")
    return items


CLEARTEXT_MODES = ("off", "prior-knowledge", "upgrade", "both")


def http2_cleartext(raw: Any) -> str:
    # (gunicorn's config file may say True, its prior-knowledge, or None, its off.)
    if raw is None or isinstance(raw, bool):
        return "prior-knowledge" if raw else "off"
    return choice(*CLEARTEXT_MODES)(raw)


def tls_version(raw: Any) -> str:
    # (A number too: `tls_min_version = 1.3` in a TOML file.)
    text = str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) \
        else stripped_text(raw).lower().removeprefix("tlsv").replace("_", ".")
    if text not in ("1.2", "1.3"):
        raise ValueError(f"expected 1.2 or 1.3, got {raw!r}")
    return text
