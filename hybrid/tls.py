"""TLS: the server's context, built from the settings, and what a TLS
connection tells the app.

The arbiter builds the context (`load`) before it forks, so that a key file
only root may read still works with --user, and a bad file stops the start
(or aborts a reload: HUP re-reads the files, which is how a renewed
certificate takes effect) with one line instead of crashing every worker.
Each worker class then wraps its accepted sockets with the same context.

`describe()` gives what the app learns about one connection, in the shape of
the ASGI TLS extension (`scope["extensions"]["tls"]`); `hybrid.wsgi` maps
the same facts to mod_ssl's environ names for WSGI apps.
"""

from __future__ import annotations

import functools
import os
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hybrid.config import Config, ConfigError
from hybrid.hooks import NO_HOOKS, Hooks

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                "required": ssl.CERT_REQUIRED}
# What ALPN offers: HTTP/1.1 only, until an h2 worker exists to answer "h2".
ALPN_PROTOCOLS = ["http/1.1"]
# The TLS versions' numbers on the wire, as the ASGI extension gives them.
_WIRE_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_PEM_END = "-----END CERTIFICATE-----"
# RFC 4514's short names for the attributes a certificate subject usually holds.
_SHORT_NAMES = {"commonName": "CN", "countryName": "C", "localityName": "L",
                "stateOrProvinceName": "ST", "organizationName": "O",
                "organizationalUnitName": "OU", "streetAddress": "STREET",
                "domainComponent": "DC", "userId": "UID"}


@dataclass(frozen=True)
class ServerTLS:
    """A worker's TLS: the context to wrap sockets with, and what `describe` needs."""

    context: ssl.SSLContext
    certificate: str  # the server's own certificate, PEM


def load(cfg: Config, hooks: Hooks = NO_HOOKS) -> ServerTLS | None:
    """The server's TLS from --certfile and the rest (None without a
    --certfile); ConfigError, one line, for a file that cannot be used. A
    config file's ssl_context hook, given the settings and a factory of this
    default context, returns the context to use instead (gunicorn's hook)."""
    if not cfg.certfile:
        return None
    _check_files(cfg)
    if "ssl_context" not in hooks:
        return ServerTLS(_context(cfg), _first_certificate(cfg.certfile))
    try:
        context = hooks.call_strictly("ssl_context", cfg, lambda: _context(cfg))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"the ssl_context hook failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(context, ssl.SSLContext):
        raise ConfigError(f"the ssl_context hook returned {type(context).__name__}, not an "
                          f"ssl.SSLContext")
    return ServerTLS(context, _first_certificate(cfg.certfile))


def _check_files(cfg: Config) -> None:
    """Each file named is a regular file (or a link to one): OpenSSL would wait
    forever on a FIFO's writer, or read a device without end."""
    for flag, path in (("--certfile", cfg.certfile), ("--keyfile", cfg.keyfile),
                       ("--ca-certs", cfg.ca_certs)):
        if not path:
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ConfigError(f"{flag}: cannot read {path!r}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{flag}: {path!r} is {_file_kind(mode)}, not a regular file; "
                              f"give the PEM file itself")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((words for test, words in kinds if test(mode)), "a special file")


def _context(cfg: Config) -> ssl.SSLContext:
    """The context the settings describe."""
    assert cfg.certfile
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[cfg.tls_min_version]
    # Renegotiation is a client's way to make the server redo costly work at
    # will, and HTTP/1.1 has no use for it (TLS 1.3 removed it).
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    asked: list[bool] = []  # whether the key wanted a password

    def password() -> str:
        # (A callback even without a password: OpenSSL would prompt on the terminal.)
        asked.append(True)
        return cfg.keyfile_password or ""

    try:
        context.load_cert_chain(cfg.certfile, cfg.keyfile, password)
    except OSError as exc:
        raise ConfigError(_key_problem(cfg, exc, bool(asked))) from None
    if cfg.ciphers:
        try:
            context.set_ciphers(cfg.ciphers)
        except ssl.SSLError:
            raise ConfigError(f"--ciphers: OpenSSL knows no cipher in {cfg.ciphers!r} (see "
                              f"'openssl ciphers -v')") from None
    context.verify_mode = VERIFY_MODES[cfg.cert_reqs]
    if cfg.ca_certs:
        try:
            context.load_verify_locations(cafile=cfg.ca_certs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--ca-certs: cannot use {cfg.ca_certs!r}: "
                              f"{_reason(exc)}") from None
    return context


def _key_problem(cfg: Config, exc: OSError, encrypted: bool) -> str:
    if not isinstance(exc, ssl.SSLError):  # (the file itself: missing, unreadable)
        return f"--certfile / --keyfile: cannot read {exc.filename or cfg.certfile!r}: " \
               f"{exc.strerror}"
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"--keyfile: the key in {cfg.keyfile or cfg.certfile!r} is not the key of " \
               f"the certificate in {cfg.certfile!r}"
    if encrypted:
        return "--keyfile-password: it does not decrypt the key" if cfg.keyfile_password \
            else "--keyfile: the key is encrypted; give its --keyfile-password"
    return f"--certfile / --keyfile: {cfg.certfile!r} and {cfg.keyfile or cfg.certfile!r} " \
           f"must hold a PEM certificate and its private key ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _first_certificate(path: str) -> str:
    """The first PEM certificate in `path` (the server's own; intermediates follow)."""
    with open(path, encoding="ascii", errors="replace") as handle:
        text = handle.read()
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find(_PEM_END, begin)
    return text[begin:end + len(_PEM_END)] + "\n"


def describe(tls: ssl.SSLObject | ssl.SSLSocket, server: ServerTLS) -> dict[str, Any]:
    """What the app learns about a connection whose handshake is done: the
    ASGI TLS extension's keys. A client certificate is there only once
    verified (one that fails verification ends the handshake), so
    `client_cert_error` is always None."""
    chain: list[str] = []
    name = None
    der = tls.getpeercert(binary_form=True)
    if der:
        sent = getattr(tls, "get_unverified_chain", None)  # (Python 3.13+: as the client sent it)
        chain = [cert.public_bytes() for cert in sent()] if sent is not None \
            else [ssl.DER_cert_to_PEM_cert(der)]
        name = distinguished_name((tls.getpeercert() or {}).get("subject", ()))
    cipher = tls.cipher()
    return {
        "server_cert": server.certificate,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _WIRE_VERSIONS.get(tls.version() or ""),
        "cipher_suite": _suite_numbers().get(cipher[0]) if cipher else None,
    }


def wsgi_environ(extension: Mapping[str, Any]) -> dict[str, str]:
    """The environ keys that tell a WSGI app about its TLS connection, by
    mod_ssl's names (which WSGI middleware already reads), from the ASGI
    extension's facts."""
    version = extension.get("tls_version")
    suite = extension.get("cipher_suite")
    chain = extension.get("client_cert_chain") or ()
    environ = {
        "HTTPS": "on",
        "SSL_PROTOCOL": _VERSION_NAMES.get(version, "") if version else "",
        "SSL_CIPHER": _suite_names().get(suite, "") if suite is not None else "",
        "SSL_CLIENT_VERIFY": "SUCCESS" if chain else "NONE",
    }
    if chain:
        environ["SSL_CLIENT_CERT"] = chain[0]
        environ["SSL_CLIENT_S_DN"] = extension.get("client_cert_name") or ""
    return environ


_VERSION_NAMES = {number: name for name, number in _WIRE_VERSIONS.items()}


@functools.cache
def _suite_numbers() -> dict[str, int]:
    """Every cipher suite OpenSSL knows, by name: its IANA number (the low 16
    bits of OpenSSL's id)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return {suite["name"]: suite["id"] & 0xFFFF for suite in context.get_ciphers()}


@functools.cache
def _suite_names() -> dict[int, str]:
    return {number: name for name, number in _suite_numbers().items()}


def distinguished_name(subject: Any) -> str:
    """A certificate subject, as `ssl.getpeercert()` gives it, in RFC 4514
    form: the most specific part first, e.g. "CN=client,O=Example"."""
    parts = []
    for relative in reversed(subject):
        parts.append("+".join(f"{_SHORT_NAMES.get(key, key)}={_escaped(value)}"
                              for key, value in relative))
    return ",".join(parts)


def _escaped(value: str) -> str:
    """RFC 4514's escaping of an attribute value."""
    out = "".join("\\" + char if char in ',+"\\<>;' else char for char in value)
    if value.endswith(" "):
        out = out[:-1] + "\\ "
    if value.startswith((" ", "#")) and value != " ":
        out = "\\" + out
    return out
