"""Where settings come from, and how they are merged into one `Config`.

Precedence, lowest first (`config.PRECEDENCE`, the order `load()` merges in):
built-in default < platform variables (`PORT`, `WEB_CONCURRENCY`,
`FORWARDED_ALLOW_IPS`: they only change defaults, as in gunicorn) < config
file (TOML, or Python: a gunicorn.conf.py is read with gunicorn's names,
`hybrid.gunicorn_conf`) < `HYBRID_*` environment < command line. Every value goes
through its setting's validator; a bad one is a `ConfigError` of one line
naming the setting and its source.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybrid import gunicorn_conf
from hybrid.config import DEFAULTS, SETTINGS, Config, ConfigError, env_name, flag_name
from hybrid.validators import Taken

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

@dataclass
class Loaded:
    """A Config plus, for each setting, where its value came from, and the
    warnings to log at start-up (values given but not used, for instance)."""

    config: Config
    sources: dict[str, str]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # said at start: peers' flags accepted, and what they do here
    hooks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # a .py file's


@dataclass
class ConfigFile:
    """What a config file holds: settings ({name: raw value}), notes about
    gunicorn settings it accepts, and (a Python file) its server hooks."""

    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)


def load(cli: Mapping[str, Any], env: Mapping[str, str] | None = None,
         source: str = "command line") -> Loaded:
    """Merge every layer. `cli` holds only the options given on the command line
    (or to `hybrid.run()`: `source` says which, for the error messages)."""
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Any]]] = [("platform", _platform_layer(env))]
    config_path = cli.get("config") or env.get(env_name("config"))
    file = ConfigFile({})
    if config_path:
        file = read_file(config_path)
        layers.append((f"file {config_path}", file.values))
    layers.append(("env", {name: env[env_name(name)] for name in SETTINGS if env_name(name) in env}))
    layers.append((source, cli))

    values = dict(DEFAULTS)
    sources = {name: "default" for name in SETTINGS}
    warnings: list[str] = []
    for index, (source, layer) in enumerate(layers):
        for name, raw in layer.items():
            label = _label(name, source)
            try:
                values[name] = _validate(name, raw, label, warnings)
            except ConfigError as exc:
                if source != "platform" or not any(name in above for _, above in layers[index + 1:]):
                    raise
                # A platform default that a higher layer replaces is not used: no error.
                warnings.append(f"{exc}; ignored, as it is set elsewhere too")
                continue
            sources[name] = label
    cfg = Config(**values)
    if cfg.reload and cfg.preload:
        raise ConfigError("--reload cannot be used with --preload: the arbiter would keep "
                          "the old code; drop one of them")
    _check_tls(cfg, sources, warnings)
    for name in ("reload_dirs", "reload_include"):
        if getattr(cfg, name) and not cfg.reload:
            warnings.append(f"{flag_name(name)} (from {sources[name]}) is ignored without "
                            f"--reload")
    if sources["access_logformat"] != "default" and not cfg.access_logfile \
            and not cfg.log_config and not cfg.log_config_dict:  # (which may route it)
        warnings.append(f"{flag_name('access_logformat')} (from {sources['access_logformat']}) "
                        f"is ignored without {flag_name('access_logfile')}: no access log is "
                        f"written (give --access-logfile - for stdout)")
    return Loaded(cfg, sources, tuple(warnings), tuple(file.notes), file.hooks)


def _check_tls(cfg: Config, sources: Mapping[str, str], warnings: list[str]) -> None:
    """The TLS settings that make sense only together (the files are read by
    `hybrid.tls.load`)."""
    if not cfg.certfile:
        given = [name for name in ("keyfile", "keyfile_password", "ca_certs", "ciphers")
                 if getattr(cfg, name)]
        if cfg.cert_reqs != "none":
            given.append("cert_reqs")
        if given:
            raise ConfigError(f"{flag_name(given[0])} needs --certfile: TLS is on only with a "
                              f"server certificate")
        return
    if cfg.cert_reqs != "none" and not cfg.ca_certs:
        raise ConfigError(f"--cert-reqs {cfg.cert_reqs} needs --ca-certs: the CA certificates "
                          f"that client certificates must chain to")
    if cfg.ca_certs and cfg.cert_reqs == "none":
        warnings.append(f"--ca-certs (from {sources['ca_certs']}) is not used: clients are "
                        f"asked for a certificate only with --cert-reqs optional or required")


def _platform_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if env.get("PORT"):
        layer["bind"] = f"0.0.0.0:{env['PORT']}"
    if env.get("WEB_CONCURRENCY"):
        layer["workers"] = env["WEB_CONCURRENCY"]
    if env.get("FORWARDED_ALLOW_IPS"):
        layer["forwarded_allow_ips"] = env["FORWARDED_ALLOW_IPS"]
    return layer


def _label(name: str, source: str) -> str:
    if source == "env":
        return f"env {env_name(name)}"
    if source == "platform":
        return {"bind": "env PORT", "workers": "env WEB_CONCURRENCY"}.get(
            name, "env FORWARDED_ALLOW_IPS")
    return source


def _validate(name: str, raw: Any, label: str, warnings: list[str]) -> Any:
    """`raw`'s value; a warning for a value taken as another (gunicorn's clamps)."""
    try:
        value = SETTINGS[name].parse(raw)
    except ValueError as exc:
        raise setting_error(name, str(exc), label) from None
    if isinstance(value, Taken):
        warnings.append(f"{flag_name(name)} {raw} (from {label}) is taken as {value.value}: "
                        f"{value.why}")
        return value.value
    return value


def setting_error(name: str, problem: str, source: str) -> ConfigError:
    """The one line that says a setting is wrong, and where the value came from."""
    where = "" if source == "command line" else f" (from {source})"
    return ConfigError(f"{flag_name(name)}: {problem}{where}")


def read_file(path: str) -> ConfigFile:
    """Read a TOML or Python config file."""
    if os.path.isdir(path):
        raise ConfigError(f"config file {path!r} is a directory; give the file in it")
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    if path.endswith(".toml"):
        return ConfigFile(_read_toml(path))
    if path.endswith(".py"):
        return _read_python(path)
    raise ConfigError(f"config file {path!r}: use a .toml or .py file")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not UTF-8 text (byte {exc.object[exc.start]:#x} "
                          f"at offset {exc.start}); TOML files are UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path!r}: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in SETTINGS or name == "config":
            raise ConfigError(f"config file {path!r}: unknown setting {key!r}")
        values[name] = raw
    return values


def read_env_file(path: str) -> dict[str, str]:
    """A .env file's NAME=VALUE lines (# comments, blank lines, an 'export '
    prefix, single or double quotes around the value), as --env-file reads it."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--env-file: cannot read {path!r}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.replace("_", "a").isalnum():
            raise ConfigError(f"--env-file: {path!r} line {number}: expected NAME=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()  # (a comment after an unquoted value)
        values[name] = value
    return values


def ssl_version_settings(value: Any) -> dict[str, Any]:
    """gunicorn's and uvicorn's ssl_version (an ssl.PROTOCOL_* number or name)
    as hybrid's settings: the defaults mean hybrid's; TLS 1.2 is a minimum."""
    text = str(value).strip().upper().removeprefix("PROTOCOL_")
    if text in ("2", "17", "TLS", "TLS_SERVER", "SSLV23"):
        return {}  # (negotiate the best version both sides have: hybrid's way)
    if text in ("5", "TLSV1_2", "TLSV1.2"):
        return {"tls_min_version": "1.2"}
    raise ConfigError(f"--ssl-version {value}: TLS 1.0 and 1.1 are not offered; the oldest "
                      f"version is 1.2 (--tls-min-version 1.2 or 1.3)")


def json_file(path: str, what: str) -> Any:
    """A JSON file's contents; ConfigError naming `what` (a flag or key) if it fails."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {path!r}: {exc}") from None


def _read_python(path: str) -> ConfigFile:
    try:
        namespace = runpy.run_path(path, run_name="__config__")
    except SystemExit as exc:
        raise ConfigError(f"config file {path!r} called sys.exit({exc.code!r}); a config file "
                          f"only sets names") from None
    except Exception as exc:  # the file is user code: report any failure in one line
        raise ConfigError(f"config file {path!r} failed: {type(exc).__name__}: {exc}") from None
    # A Python config may hold helpers and imports, so only setting names count
    # (hybrid's, or gunicorn's spellings of them).
    read = ConfigFile({})
    for name, raw in namespace.items():
        if name in gunicorn_conf.GUNICORN_FILE_REFUSED \
                and not gunicorn_conf.is_gunicorns_default(name, raw):
            raise ConfigError(f"config file {path!r}: {name} is not supported: "
                              f"{gunicorn_conf.GUNICORN_FILE_REFUSED[name]}")
        if name == "header_map" and str(raw).lower() != "drop":
            raise ConfigError(f"config file {path!r}: header_map {raw!r} is not supported: "
                              f"fields with an underscore are always dropped")
        if name == "ssl_version":
            read.values.update(ssl_version_settings(raw))
        if name == "logconfig_json" and raw:
            read.values["log_config_dict"] = json_file(str(raw), "logconfig_json")
        if name in gunicorn_conf.GUNICORN_FILE_ACCEPTED:
            read.notes.append(f"{name} (from file {path}): accepted; "
                              f"{gunicorn_conf.GUNICORN_FILE_ACCEPTED[name]}")
        if name in gunicorn_conf.HOOK_NAMES:
            if not callable(raw):
                raise ConfigError(f"config file {path!r}: {name} is a server hook: it must be "
                                  f"a function, not {type(raw).__name__}")
            read.hooks[name] = raw
        ours = gunicorn_conf.GUNICORN_FILE_NAMES.get(name, name)
        if ours in SETTINGS and ours != "config" and (ours == name or ours not in namespace):
            read.values[ours] = gunicorn_conf.value_for_hybrid(name, raw)
    return read
