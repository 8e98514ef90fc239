"""What a worker knows of TLS, and what a TLS connection tells the app.

`ServerTLS` is what the arbiter hands each worker (`hybrid.tls.load` builds
it from the settings): the context to wrap accepted sockets with, and the
server's certificate. `describe()` gives what the app learns about one
connection, in the shape of the ASGI TLS extension
(`scope["extensions"]["tls"]`); `wsgi_environ()` maps the same facts to
mod_ssl's environ names for WSGI apps.

This room imports no settings: PEP 3333's environ (`hybrid.wsgi_environ`),
the bridge and the workers read TLS facts here without the settings table
coming along.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The TLS versions' numbers on the wire, as the ASGI extension gives them.
_WIRE_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
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
