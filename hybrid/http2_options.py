"""What the HTTP/2 settings ask for, and whether this install can serve it.

The settings (`--http-protocols`, `--http2-cleartext`...) say what is
wanted; whether HTTP/2 is served also depends on the worker class (the asgi
class serves it, a WSGI app on its bridge) and on the `http2` extra, which
installs the engine (`ngh2`). This room answers for the TLS code (what ALPN
offers) and the workers (whether to speak h2, and h2c how): `check()` at
start refuses, in one line, HTTP/2 asked for outright where it cannot be
served; the default, `auto`, quietly means HTTP/1.1 there.

A leaf: it reads the settings table and nothing of the workers or the
supervisor, so both sides may ask it.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl

from hybrid.config import Config, ConfigError, flag_name
from hybrid.validators import AUTO_PROTOCOLS

ENGINE_MODULE = "ngh2"
EXTRA_INSTALL = "pip install 'hybrid-server[http2]'"
ASGI, AUTO = "asgi", "auto"  # (the worker classes' names, as hybrid.workers has them)
ALPN_NAMES = {"h1": "http/1.1", "h2": "h2"}
_EPHEMERAL = ("kx-ecdhe", "kx-dhe")  # OpenSSL's names of (EC)DHE key exchanges, PSK's too


@functools.cache
def engine_installed() -> bool:
    """Whether the http2 extra's engine can be imported (looked for once)."""
    return importlib.util.find_spec(ENGINE_MODULE) is not None


def missing_engine(asked: str) -> str:
    """The one line for HTTP/2 asked for (by `asked`) without the extra."""
    return f"{asked} asks for HTTP/2, which needs the http2 extra (the {ENGINE_MODULE} " \
           f"engine): {EXTRA_INSTALL}"


def asked_outright(cfg: Config) -> str:
    """The setting that asks for HTTP/2 outright, as given ('' when none does:
    the default `auto` asks for nothing)."""
    if "h2" in cfg.http_protocols:
        return f"{flag_name('http_protocols')} {','.join(cfg.http_protocols)}"
    if cfg.http2_cleartext != "off":
        return f"{flag_name('http2_cleartext')} {cfg.http2_cleartext}"
    return ""


def serves_h2(cfg: Config, worker_class: str) -> bool:
    """Whether the `worker_class` worker serves HTTP/2 with these settings (an
    `auto` class has not picked yet: HTTP/1.1 until its pick says otherwise)."""
    wanted = cfg.http_protocols == AUTO_PROTOCOLS or "h2" in cfg.http_protocols
    return worker_class == ASGI and wanted and engine_installed()


def alpn_protocols(cfg: Config, worker_class: str) -> list[str]:
    """What ALPN offers over TLS, the preferred first."""
    if not serves_h2(cfg, worker_class):
        return [ALPN_NAMES["h1"]]
    if cfg.http_protocols == AUTO_PROTOCOLS:
        return [ALPN_NAMES["h2"], ALPN_NAMES["h1"]]
    return [ALPN_NAMES[name] for name in cfg.http_protocols]


def cleartext_prior_knowledge(cfg: Config) -> bool:
    """Whether a cleartext connection that opens with the HTTP/2 preface is h2c."""
    return cfg.http2_cleartext in ("prior-knowledge", "both")


def cleartext_upgrade(cfg: Config) -> bool:
    """Whether an HTTP/1.1 request with `Upgrade: h2c` switches to HTTP/2."""
    return cfg.http2_cleartext in ("upgrade", "both")


def check(cfg: Config, worker_class: str) -> tuple[str, ...]:
    """ConfigError, one line, for HTTP/2 asked for outright where it cannot be
    served (or h2c asked for with h2 left out); the warnings to say at start,
    for settings that leave what was asked for unused. `worker_class`: the
    class settled, or `auto` (whose pick is checked again once made)."""
    cleartext = f"{flag_name('http2_cleartext')} {cfg.http2_cleartext}"
    if cfg.http2_cleartext != "off" and cfg.http_protocols != AUTO_PROTOCOLS \
            and "h2" not in cfg.http_protocols:
        raise ConfigError(f"{cleartext} needs h2 in {flag_name('http_protocols')} (given: "
                          f"{','.join(cfg.http_protocols)})")
    asked = asked_outright(cfg)
    if not asked:
        return ()
    if worker_class not in (ASGI, AUTO):
        raise ConfigError(f"{asked}: HTTP/2 is served by the asgi class, not by "
                          f"{worker_class!r}: give -k asgi (a WSGI app runs on its bridge)")
    if not engine_installed():
        raise ConfigError(missing_engine(asked))
    if cfg.certfile and cfg.http2_cleartext != "off":
        return (f"{cleartext} is not used: with --certfile every connection is TLS, where "
                f"ALPN chooses HTTP/2",)
    if not cfg.certfile and cfg.http2_cleartext == "off":
        return (f"{asked}: without --certfile (ALPN) or {flag_name('http2_cleartext')}, no "
                f"client gets HTTP/2",)
    return ()


def h2_cipher_problem(context_or_cfg: ssl.SSLContext | Config) -> str | None:
    """Why HTTP/2 cannot be offered over TLS with these ciphers, or None: RFC
    9113 (9.2.2) allows TLS 1.2 only with an ephemeral key exchange and an
    AEAD cipher, so where TLS 1.2 is allowed and --ciphers leaves no such
    suite, a client would have to end the connection it negotiated h2 on."""
    context = context_or_cfg if isinstance(context_or_cfg, ssl.SSLContext) \
        else _context_of(context_or_cfg)
    if context is None or not _allows_tls_1_2(context):
        return None
    for suite in context.get_ciphers():
        if suite["protocol"] != "TLSv1.3" and suite["aead"] \
                and str(suite["kea"]).startswith(_EPHEMERAL):
            return None
    return ("--ciphers leaves no TLS 1.2 suite HTTP/2 allows (ECDHE or DHE with AES-GCM or "
            "CHACHA20-POLY1305, RFC 9113 9.2.2), so ALPN does not offer h2; add one, such as "
            "ECDHE-RSA-AES128-GCM-SHA256, or give --tls-min-version 1.3")


def offer_alpn(context: ssl.SSLContext, cfg: Config, worker_class: str) -> None:
    """Set what `context` offers by ALPN for the `worker_class` worker: h2 is
    left out where the ciphers rule it out (`h2_cipher_problem`, said at start)."""
    offered = alpn_protocols(cfg, worker_class)
    if ALPN_NAMES["h2"] in offered and h2_cipher_problem(context):
        offered = [name for name in offered if name != ALPN_NAMES["h2"]] or [ALPN_NAMES["h1"]]
    context.set_alpn_protocols(offered)


def _context_of(cfg: Config) -> ssl.SSLContext | None:
    """A bare server context with `cfg`'s ciphers and oldest version (None without
    --ciphers, or with a list OpenSSL refuses: hybrid.tls says so)."""
    if not cfg.ciphers:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if cfg.tls_min_version == "1.3":
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.set_ciphers(cfg.ciphers)
    except ssl.SSLError:
        return None
    return context


def _allows_tls_1_2(context: ssl.SSLContext) -> bool:
    lowest, highest = context.minimum_version, context.maximum_version
    return (lowest == ssl.TLSVersion.MINIMUM_SUPPORTED or lowest <= ssl.TLSVersion.TLSv1_2) \
        and (highest == ssl.TLSVersion.MAXIMUM_SUPPORTED or highest >= ssl.TLSVersion.TLSv1_2)
