"""What a value given to one of gunicorn's or uvicorn's flags becomes here.

Each function takes the value as given on the command line (None for a flag
without one) and gives hybrid's settings for it, or the note to log at start
about it; a value hybrid cannot honour raises ConfigError, one line naming
what to use instead. `hybrid.peers` names, for each flag, which of these
applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hybrid.config import ConfigError
from hybrid.gunicorn_conf import websocket_max_message_size
from hybrid.sources import json_file, ssl_version_settings

Settings = Callable[[str | None], dict[str, Any]]


def constant(**settings: Any) -> Settings:
    """The same settings whatever the value (a flag without one)."""
    return lambda _value: settings


def setting(name: str) -> Settings:
    """The value, as it is, for hybrid's setting `name`."""
    return lambda value: {name: value}


def ssl_version(value: str | None) -> dict[str, Any]:
    return ssl_version_settings(value or "")


def log_config_json(value: str | None) -> dict[str, Any]:
    return {"log_config_dict": json_file(value or "", "--log-config-json")}


def ws(value: str | None) -> dict[str, Any]:
    if (value or "").strip().lower() == "none":
        raise ConfigError("--ws none: the asgi class always serves WebSockets (with wsproto); "
                          "an app that wants none refuses them in its websocket.connect")
    return {}


def ws_max_size(value: str | None) -> dict[str, Any]:
    """gunicorn's --websocket-max-message-size (its 0, no limit, is hybrid's largest)."""
    return {"ws_max_size": websocket_max_message_size(value)}


def header_map(value: str | None) -> dict[str, Any]:
    if (value or "").strip().lower() != "drop":
        raise ConfigError(f"--header-map {value}: header fields with an underscore are always "
                          f"dropped (gunicorn's 'drop'), so that a proxy's checks cannot be "
                          f"dodged by spelling X-Forwarded-For as X_Forwarded_For")
    return {}


def protocol(value: str | None) -> dict[str, Any]:
    """gunicorn's --protocol: its http is how hybrid works; uWSGI's is not spoken."""
    if (value or "").strip().lower() != "http":
        raise ConfigError(f"--protocol {value}: hybrid speaks HTTP only, not uWSGI's binary "
                          f"protocol: point nginx's proxy_pass at it instead of uwsgi_pass")
    return {}


# --http: uvicorn's names its HTTP/1.1 parser (or a protocol class), granian's the versions.
_GRANIAN_HTTP = {"1": {"http_protocols": "h1"},
                 "2": {"http_protocols": "h2", "http2_cleartext": "prior-knowledge"}}


def http(value: str | None) -> dict[str, Any]:
    text = (value or "").strip().lower()
    if text.isdigit() and text not in _GRANIAN_HTTP:
        raise ConfigError(f"--http {value}: granian's versions are auto, 1 and 2 (HTTP/3 is "
                          f"not served)")
    return _GRANIAN_HTTP.get(text, {})


def http_note(value: str | None) -> str:
    text = (value or "").strip().lower()
    if text in _GRANIAN_HTTP:
        return ""
    if text == "auto":
        return "hybrid's default, --http-protocols auto (h2c only with --http2-cleartext)"
    return "hybrid's own HTTP/1.1 core (httptools underneath) serves every class"
