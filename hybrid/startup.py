"""What the arbiter readies before its loop, and what a reload readies again.

At start: the workers' user (`--user`, `--group`), the environment (`--env`,
`--env-file`), the process title and the captured output, the listening
sockets and the control socket (bound here, or inherited from an upgrading
arbiter or systemd), the lines that say what serves where, and the app held
before fork (`--preload`'s, or `hybrid.run()`'s) with the worker class that
serves it (and the HTTP/2 asked for). On a reload: the settings read again
from the same sources, kept only if all of them load. The arbiter calls these
in order and keeps what they return; none of them forks or waits on a worker.

With --preload the arbiter imports the app before it forks, without a time
limit (as gunicorn: --timeout bounds a worker's import), logging every
process.IMPORT_REPORT_INTERVAL that it still imports; INT, QUIT or TERM meanwhile
ends the import and stops.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from hybrid import (
    addresses,
    config,
    http2_options,
    logs,
    process,
    proctitle,
    reexec,
    sockets,
    sources,
    tls,
    workers,
)
from hybrid.control import ControlServer
from hybrid.heartbeat import BOOT_ERROR
from hybrid.hooks import Hooks
from hybrid.loader import AppLoadError, app_interface, interface_mismatch, load_app_for
from hybrid.logs import error_log as log
from hybrid.process import StartupError
from hybrid.tls_facts import ServerTLS


def worker_identity(cfg: config.Config) -> tuple[int, int] | None:
    """The (uid, gid) the workers switch to (`--user`, `--group`); StartupError when
    only root could switch to them and this is not root."""
    identity = process.worker_identity(cfg.user, cfg.group)
    if identity is not None and os.geteuid() != 0 and identity != (os.geteuid(), os.getegid()):
        raise StartupError(f"--user / --group: switching the workers to uid "
                           f"{identity[0]}, gid {identity[1]} needs root "
                           f"(this runs as uid {os.geteuid()})")
    return identity


class Environment:
    """--env and --env-file in `os.environ`, set before anything imports the app."""

    def __init__(self) -> None:
        self.file_names: set[str] = set()  # the variables --env-file has set

    def apply(self, cfg: config.Config) -> None:
        """A file's variable does not replace one set before hybrid started; --env
        does. A reload reads the file again."""
        if cfg.env_file:
            for name, value in sources.read_env_file(cfg.env_file).items():
                if name not in os.environ or name in self.file_names:
                    os.environ[name] = value
                    self.file_names.add(name)
        for assignment in cfg.env:
            name, _, value = assignment.partition("=")
            os.environ[name.strip()] = value


def set_title_and_output(cfg: config.Config) -> None:
    """The arbiter's process title (--proc-name), and where the app's own output
    goes (--capture-output)."""
    if cfg.proc_name and not proctitle.AVAILABLE:
        log.warning("%s", proctitle.MISSING)
    proctitle.set_title(f"arbiter [{cfg.proc_name or cfg.app}]")
    if cfg.capture_output:
        if cfg.error_logfile == "-":
            log.warning("--capture-output: the error log is stderr already, where the "
                        "app's output goes")
        else:
            logs.capture_output(cfg.error_logfile)


def open_listeners(cfg: config.Config, listeners: list[socket.socket],
                   owned_paths: list[str]) -> list[str]:
    """The listening sockets, into `listeners`: inherited, or bound to --bind with
    each UNIX socket file made added to `owned_paths` at once (so that a failure
    halfway still removes it). Returns the socket files an upgrading arbiter made."""
    inherited = sockets.inherited()
    if inherited is None:
        for text in cfg.bind:
            address = addresses.parse_address(text)
            listeners.append(sockets.bind(address, cfg.backlog, cfg.reuse_port))
            if address.kind == "unix":
                owned_paths.append(address.path)
        return []
    found, giver = inherited
    listeners.extend(found)
    log.info("Using %d listening socket(s) from %s instead of --bind",
             len(listeners), "the upgrading arbiter" if giver == "upgrade"
             else "systemd (socket activation)")
    if giver != "upgrade":
        return []
    # The files the old arbiter made become ours once we serve (not before:
    # a new arbiter that fails must not remove what the old one serves on).
    return reexec.owned_paths_from_environment()


def control_listener(cfg: config.Config, passed: str,
                     owned_paths: list[str]) -> socket.socket | None:
    """--control-bind's socket: the one an upgrading arbiter passed (`passed`, its
    descriptor), or bound here; None without --control-bind."""
    if not cfg.control_bind:
        if passed.isdigit():
            os.close(int(passed))  # the old arbiter's control socket: not configured here
        return None
    address = addresses.parse_address(cfg.control_bind)
    if passed.isdigit():
        return sockets.adopt(int(passed))
    control = sockets.bind(address, 64)
    if address.kind == "unix":
        owned_paths.append(address.path)
    return control


def log_listeners(cfg: config.Config, listeners: list[socket.socket],
                  control: ControlServer | None, server_tls: ServerTLS | None) -> None:
    """Where the server listens, and what --reuse-port cannot do on this kernel."""
    if cfg.reuse_port and not process.kernel_migrates_queued_connections():
        log.warning("--reuse-port: connections queued on a worker that stops are reset; "
                    "set sysctl net.ipv4.tcp_migrate_req=1 (Linux 5.14+) to have the "
                    "kernel hand them to the other workers")
    for listener in listeners:
        log.info("Listening at: %s", addresses.describe(listener, "https" if server_tls else "http"))
    if control is not None:
        log.info("Control endpoint (/livez, /readyz, /metrics) at: %s",
                 addresses.describe(control.listener))


def worker_class_note(cfg: config.Config, source: str) -> str:
    """What the start's "Using worker class" line adds: how the class was chosen,
    `source` being where -k's value came from."""
    if source == workers.THREADS_CHOSE_THREAD:
        return f" ({workers.THREADS_CHOSE_THREAD})"
    if cfg.worker_class == workers.AUTO:
        return " (sync for a WSGI app, asgi for an ASGI app; -k chooses)"
    if workers.GIVEN_AS in source:
        given = source.partition(workers.GIVEN_AS)
        return f" ({given[1]}{given[2]}: hybrid's own class in its place)"
    return ""


def app_before_fork(cfg: config.Config, worker_class: type[workers.Worker], given_app: Any,
                    ) -> tuple[Any, config.Config, type[workers.Worker]]:
    """The app the arbiter holds before it forks: --preload's, or the one
    `hybrid.run()` was given (None without either), with the config and class
    that serve it; loader.Interrupted if a stop signal ends --preload's import."""
    if cfg.preload:
        return preload(cfg, worker_class)
    if given_app is None:
        return None, cfg, worker_class
    try:
        fitted, worker_class = fit_to_app(given_app, cfg)
    except AppLoadError as exc:
        raise StartupError(str(exc), BOOT_ERROR) from None
    except config.ConfigError as exc:
        raise StartupError(str(exc)) from None
    return given_app, fitted, worker_class


def preload(cfg: config.Config, worker_class: type[workers.Worker],
            ) -> tuple[Any, config.Config, type[workers.Worker]]:
    """--preload: import the app here, for as long as that takes (as gunicorn:
    --timeout is the workers'), saying so while it goes on; a stop signal
    meanwhile raises loader.Interrupted. Returns the app, with the config and
    class that serve it."""
    try:
        with process.stopped_by_signals(), process.reporting_slow_import(cfg.app or ""):
            app = load_app_for(cfg, worker_class.interfaces)
    except AppLoadError as exc:
        raise StartupError(f"app failed to load: {exc}", BOOT_ERROR) from None
    try:
        fitted, worker_class = fit_to_app(app, cfg)
    except config.ConfigError as exc:
        raise StartupError(str(exc)) from None
    if fitted.worker_class != cfg.worker_class:
        log.info("Serving %s with the %r worker class", fitted.app, fitted.worker_class)
    return app, fitted, worker_class


def fit_to_app(app: Any, cfg: config.Config) -> tuple[config.Config, type[workers.Worker]]:
    """The config and class that serve the preloaded app (`auto` picks one);
    AppLoadError if the configured class cannot serve it, ConfigError if HTTP/2
    was asked for outright and the class picked does not serve it."""
    interface = app_interface(app, cfg.interface)
    name = workers.class_for(cfg.worker_class, interface)
    worker_class = workers.load_class(name)
    if interface not in worker_class.interfaces:
        raise AppLoadError(interface_mismatch(cfg, interface, worker_class.interfaces))
    http2_options.check(cfg, name)  # (its warnings were said when the class was resolved)
    return replace(cfg, worker_class=name), worker_class


@dataclass(frozen=True)
class Reloaded:
    """What a reload serves with, every part of it loaded."""

    cfg: config.Config
    worker_class: type[workers.Worker]
    hooks: Hooks
    tls: ServerTLS | None


def reread(cli_values: Mapping[str, Any], running: config.Config, app: Any,
           environment: Environment) -> Reloaded | None:
    """The settings read again from their sources, for a reload (the old app kept
    under --preload); None, said why, when any part fails to load: the running
    workers serve on. --bind and --control-bind keep their running values."""
    try:
        loaded = workers.resolve(sources.load(cli_values))
        new = loaded.config
        if app is not None:  # --preload: the reload keeps the old app
            new, worker_class = fit_to_app(app, new)
        else:
            worker_class = workers.load_class(new.worker_class)
        new_hooks = Hooks(loaded.hooks)
        environment.apply(new)
        new_tls = tls.load(new, new_hooks)
    except (config.ConfigError, AppLoadError, ValueError) as exc:
        log.error("Reload aborted, keeping the running workers: %s", exc)
        return None
    if new.bind != running.bind:
        log.warning("--bind changed; the new addresses take effect after a restart")
        new = replace(new, bind=running.bind)
    if new.control_bind != running.control_bind:
        log.warning("--control-bind changed; the new address takes effect after a restart")
        new = replace(new, control_bind=running.control_bind)
    try:
        logs.setup(new.log_level, new.error_logfile, new.access_logfile)
        logs.apply_config(new.log_config, new.log_config_dict)
    except logs.LogFileError as exc:
        log.error("Reload aborted, keeping the running workers: %s", exc)
        return None
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return Reloaded(new, worker_class, new_hooks, new_tls)
