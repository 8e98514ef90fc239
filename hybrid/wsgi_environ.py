"""The WSGI environ (PEP 3333), from a request the core parsed or from an ASGI
scope, by the same code: the sync and thread classes build it from a
`Request`, the bridge from its scope, and an app sees the same keys either
way. Field names, Host fields and the like are worked out once per process
and remembered, within bounds a client cannot grow.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote, unquote_to_bytes

from hybrid import __version__
from hybrid.protocol import Request
from hybrid.protocol.memo import Memo
from hybrid.tls_facts import wsgi_environ
from hybrid.typing import Scope
from hybrid.wsgi_input import FileWrapper, Input, InputStream

SERVER_SOFTWARE: Final = f"hybrid/{__version__}"
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}
_UNPREFIXED: Final = {"HTTP_CONTENT_TYPE": "CONTENT_TYPE", "HTTP_CONTENT_LENGTH": "CONTENT_LENGTH"}
_BARE_KEYS: Final = frozenset(_UNPREFIXED.values())  # set, never combined, when repeated
_ENVIRON_NAME_MAX: Final = 40
_HOST_MAX: Final = 100


def _short_name(name: bytes | bytearray) -> bool:
    """A field name worth remembering: bytes (not a subclass, whose hash and
    equality are its own) of at most _ENVIRON_NAME_MAX bytes."""
    return type(name) is bytes and len(name) <= _ENVIRON_NAME_MAX


def _short_host(host_and_scheme: tuple[str, str]) -> bool:
    """A Host field worth remembering: at most _HOST_MAX characters."""
    return len(host_and_scheme[0]) <= _HOST_MAX


_ENVIRON_KEYS: Final[Memo[bytes, str]] = Memo(1024, _short_name)
"""Field names seen, and their environ keys: each is worked out once per process.
Only names up to _ENVIRON_NAME_MAX bytes are kept, so a client sending random
names holds at most ~100 KiB of it."""
_HOSTS: Final[Memo[tuple[str, str], tuple[str, str]]] = Memo(256, _short_host)
"""Host fields (and the scheme) seen, as SERVER_NAME and SERVER_PORT: a server is
named a few ways, each split once per process (only Host fields up to _HOST_MAX
characters are kept)."""


def build_environ(request: Request, wsgi_input: Input, server: tuple[str, str],
                  client: tuple[str, str], url_scheme: str = "http", root_path: str = "",
                  multithread: bool = False,
                  tls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The PEP 3333 environ for one parsed request (the sync and thread workers).

    `server` and `client` are (host, port) strings, the client's after proxy
    headers; the Host header, when present, names the server instead (as the
    client addressed it). `tls`: a TLS connection's facts, as the ASGI TLS
    extension holds them (`hybrid.tls_facts.describe`).
    """
    path = request.path.decode("latin-1")
    if "%" in path:
        path = unquote_to_bytes(request.path).decode("latin-1")
    return _environ(request.method, request.http_version, path, request.query, request.headers,
                    server, client, url_scheme, root_path, request.target.decode("latin-1"),
                    wsgi_input, multithread, tls)


def environ_from_scope(scope: Scope, wsgi_input: InputStream) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope (the bridge), built by the
    same code as `build_environ`, so an app sees the same environ whichever
    worker class serves it.

    PATH_INFO comes from `raw_path` when the server gives it (the bytes the
    client sent, as the blocking workers read them), else from `path`;
    `root_path` is SCRIPT_NAME, stripped from the path when the path starts
    with it (a mount point, or a proxy that kept its prefix).
    """
    root_path: str = scope.get("root_path", "")
    raw_path: bytes | None = scope.get("raw_path")
    decoded: str = scope["path"]
    path = unquote_to_bytes(raw_path).decode("latin-1") if raw_path else _latin1(decoded)
    script_name = _latin1(root_path)
    if script_name and not _under(path, script_name) and _under(decoded, root_path) \
            and not (raw_path and decoded == root_path + unquote(raw_path.decode("latin-1"))):
        # root_path is in `path` but not in `raw_path`: a mount point's prefix
        # that a proxy stripped, say. (If `path` is only root_path + `raw_path`,
        # as uvicorn and hybrid give --root-path, `raw_path` is exact as it is.)
        path = _latin1(decoded)
    query: bytes = scope.get("query_string", b"")
    raw_uri = (raw_path or decoded.encode("utf-8")).decode("latin-1")
    if query:
        raw_uri += "?" + query.decode("latin-1")
    server = scope.get("server") or ("", None)
    client = scope.get("client") or ("", 0)
    return _environ(scope.get("method", "GET"), scope.get("http_version", "1.1"), path, query,
                    scope.get("headers", ()),
                    (server[0], "" if server[1] is None else str(server[1])),
                    (client[0], str(client[1])), scope.get("scheme", "http"), script_name,
                    raw_uri, wsgi_input, True, scope.get("extensions", {}).get("tls"))


def _environ_key(name: Any) -> str:
    """The environ key of a field (PEP 3333: HTTP_ and upper case, but CONTENT_TYPE
    and CONTENT_LENGTH bare); "" for a name with "_": "X_Forwarded_For" and
    "X-Forwarded-For" would both become HTTP_X_FORWARDED_FOR, so the spelling a
    proxy may not strip is dropped."""
    if b"_" in name:
        key = ""
    else:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        key = _UNPREFIXED.get(key, key)
    return _ENVIRON_KEYS.remember(name, key)


def _latin1(text: str) -> str:
    """A decoded str as PEP 3333 wants it: its UTF-8 bytes, one char per byte."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


# Every environ starts as a copy of this (a copy costs less than building the
# dict anew); _environ sets each None. SERVER_NAME and SERVER_PORT come last.
_ENVIRON_TEMPLATE: Final[dict[str, Any]] = {
    "REQUEST_METHOD": None,
    "SCRIPT_NAME": None,
    "PATH_INFO": None,
    "QUERY_STRING": None,
    "RAW_URI": None,
    "REQUEST_URI": None,
    "SERVER_PROTOCOL": None,
    "SERVER_SOFTWARE": SERVER_SOFTWARE,
    "REMOTE_ADDR": None,
    "REMOTE_PORT": None,
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": None,
    "wsgi.input": None,
    "wsgi.input_terminated": True,
    "wsgi.errors": None,
    "wsgi.multithread": None,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": FileWrapper,
}


def _environ(method: str, http_version: str, path: str, query: bytes,
             headers: Iterable[Any], server: tuple[str, str],
             client: tuple[str, str], url_scheme: str, script_name: str, raw_uri: str,
             wsgi_input: Input, multithread: bool,
             tls: Mapping[str, Any] | None) -> dict[str, Any]:
    """`path` is the request's path as latin-1 text; `script_name` is stripped
    from its start when it is there. A TLS connection adds mod_ssl's keys
    (HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_VERIFY, SSL_CLIENT_CERT,
    SSL_CLIENT_S_DN), which WSGI middleware already knows."""
    if script_name and _under(path, script_name):
        path = path[len(script_name):]
    environ = _ENVIRON_TEMPLATE.copy()
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = raw_uri
    environ["SERVER_PROTOCOL"] = "HTTP/" + http_version
    environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = wsgi_input
    environ["wsgi.errors"] = sys.stderr  # (the one of the moment: a test may swap it)
    environ["wsgi.multithread"] = multithread
    keys = _ENVIRON_KEYS.known
    for name, value in headers:
        try:
            key = keys[name]
        except (KeyError, TypeError):  # (TypeError: a bytearray name, from a scope)
            key = _environ_key(name)
        if not key:
            continue
        if key in environ:
            if key in _BARE_KEYS:
                environ[key] = value.decode("latin-1")
            else:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value.decode("latin-1")
        else:
            environ[key] = value.decode("latin-1")
    if tls is not None:
        environ.update(wsgi_environ(tls))
    host = environ.get("HTTP_HOST")
    if host:
        try:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = _HOSTS.known[host, url_scheme]
        except KeyError:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = _HOSTS.remember(
                (host, url_scheme), _server_name_and_port(host, url_scheme))
    else:
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = server[1] or _DEFAULT_PORTS.get(url_scheme, "80")
    return environ


def _server_name_and_port(host: str, url_scheme: str) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from a Host field (the scheme's port if it names none)."""
    default_port = _DEFAULT_PORTS.get(url_scheme, "80")
    server_name, port = _split_host(host, default_port)
    return server_name, port or default_port


def _split_host(host: str, default_port: str) -> tuple[str, str]:
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default_port
