"""TLS: the server's context, built from the settings.

The arbiter builds the context (`load`) before it forks, so that a key file
only root may read still works with --user, and a bad file stops the start
(or aborts a reload: HUP re-reads the files, which is how a renewed
certificate takes effect) with one line instead of crashing every worker.
Each worker class then wraps its accepted sockets with the same context.
ALPN offers what the worker class serves (`hybrid.http2_options`): h2 first
on the asgi class with the http2 extra, HTTP/1.1 alone elsewhere; an `auto`
class offers HTTP/1.1 until its worker has picked, and sets it again then.

What a worker is handed (`ServerTLS`) and what a TLS connection tells the
app live in `hybrid.tls_facts`, which imports no settings.
"""

from __future__ import annotations

import os
import ssl
import stat

from hybrid import http2_options
from hybrid.config import Config, ConfigError
from hybrid.hooks import NO_HOOKS, Hooks
from hybrid.logs import error_log as log
from hybrid.tls_facts import ServerTLS

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                "required": ssl.CERT_REQUIRED}
_PEM_END = "-----END CERTIFICATE-----"


def load(cfg: Config, hooks: Hooks = NO_HOOKS) -> ServerTLS | None:
    """The server's TLS from --certfile and the rest (None without a
    --certfile); ConfigError, one line, for a file that cannot be used. A
    config file's ssl_context hook, given the settings and a factory of this
    default context, returns the context to use instead (gunicorn's hook); ALPN
    is set on it after, from what the worker class serves."""
    if not cfg.certfile:
        return None
    _check_files(cfg)
    if "ssl_context" not in hooks:
        return _serving(_context(cfg), cfg)
    try:
        context = hooks.call_strictly("ssl_context", cfg, lambda: _context(cfg))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"the ssl_context hook failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(context, ssl.SSLContext):
        raise ConfigError(f"the ssl_context hook returned {type(context).__name__}, not an "
                          f"ssl.SSLContext")
    return _serving(context, cfg)


def _serving(context: ssl.SSLContext, cfg: Config) -> ServerTLS:
    """`context` offering by ALPN what the class serves, as workers are handed it;
    a warning if the ciphers keep h2 from the asgi class (or an `auto` one's pick)."""
    assert cfg.certfile
    http2_options.offer_alpn(context, cfg, cfg.worker_class)
    could_serve = http2_options.ASGI if cfg.worker_class == http2_options.AUTO \
        else cfg.worker_class
    if http2_options.serves_h2(cfg, could_serve):
        problem = http2_options.h2_cipher_problem(context)
        if problem:
            log.warning("%s", problem)
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
