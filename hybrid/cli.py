"""`hybrid run APP` and `hybrid check APP`: argv -> Config, nothing else.

The options are generated from the settings table in `hybrid.config`.
Exit status: 0 fine, 1 a bad setting or a socket that cannot be bound,
2 a usage error (argparse), 3 an app that cannot be loaded (BOOT_ERROR).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from hybrid import (__version__, config, http2_options, logs, native, peers, sources, tls,
                    workers)
from hybrid.config import SETTINGS, ConfigError
from hybrid.loader import AppLoadError, app_interface, interface_mismatch, load_app_for
from hybrid.sockets import BindError

INTERFACES = ("wsgi", "asgi")
PEER_FLAGS = "gunicorn's and uvicorn's flags"  # --help's last group, after the sections


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="hybrid", description="A pre-fork application server for WSGI and ASGI apps.")
    parser.add_argument("--version", action="version", version=f"hybrid {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_OneLineErrors)
    options = _options_parser()
    commands.add_parser("run", parents=[options], help="serve APP",
                        description="Serve APP with a pre-fork pool of workers.")
    commands.add_parser("check", parents=[options], help="import APP and show the settings",
                        description="Import APP, print its interface and the effective "
                                    "settings with where each came from.")
    return parser


def _options_parser() -> _OneLineErrors:
    """The settings' options, grouped by their sections (as the settings page
    groups them), then gunicorn's and uvicorn's flags."""
    parser = _OneLineErrors(add_help=False, argument_default=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"hybrid {__version__}",
                        help="print the version and exit (uvicorn's place for it too)")
    groups = {section: parser.add_argument_group(section) for section in config.SECTIONS}
    for name, setting in SETTINGS.items():
        _add_setting(groups[setting.section], name, setting)
    peer_flags = parser.add_argument_group(
        PEER_FLAGS, "the ones that are not hybrid's own (the docs' page 'Migrating from "
                    "gunicorn and uvicorn' lists every flag of theirs)")
    for peer in peers.FLAGS:
        peer_flags.add_argument(*peer.flags, dest="peer_flags",
                                nargs=None if peer.takes_value else 0,
                                action=_Refused if peer.kind == peers.REFUSED else _PeerFlag,
                                metavar="VALUE", help=f"{peer.peers}'s: {peer.answer}"
                                .replace("%", "%%"))
    return parser


def _add_setting(group: argparse._ArgumentGroup, name: str, setting: config.Setting) -> None:
    default = config.shown(config.DEFAULTS[name])
    help_text = f"{setting.help} [default: {default}; env {config.env_name(name)}]"
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    if not setting.flags[0].startswith("-"):
        group.add_argument(name, nargs="?", metavar=setting.metavar, help=help_text)
    elif setting.switch:
        group.add_argument(*setting.flags, dest=name, action="store_const", const=True,
                           help=help_text)
    else:
        group.add_argument(*setting.flags, dest=name, metavar=setting.metavar,
                           action="append" if setting.repeat else "store", help=help_text)


class _OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line (and exit status 2), as every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hybrid: error: {message} (see '{self.prog} --help')\n")


class _PeerFlag(argparse.Action):
    """Collects gunicorn's and uvicorn's flags as given ({flag: value or None})."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = dict(getattr(namespace, "peer_flags", {}))
        given[str(option_string)] = values if isinstance(values, str) else None
        namespace.peer_flags = given


class _Refused(argparse.Action):
    """A peer's flag hybrid does not take: one line saying what to use instead, exit 2."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sys.exit(_fail(peers.refusal(str(option_string)), 2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    known, unknown = parser.parse_known_args(argv)
    if unknown:  # (said as the command's: `hybrid run --help` lists the flags)
        parser.exit(2, f"hybrid: error: unrecognized arguments: {' '.join(unknown)} (see "
                       f"'hybrid {known.command} --help')\n")
    args = vars(known)
    command = args.pop("command")
    given = args.pop("peer_flags", {})
    try:
        translated, notes, check = peers.translate(given)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    if "bind" in translated and "bind" in args:
        return _fail(f"{', '.join(f for f in given if f in peers.ADDRESS_FLAGS)} and --bind "
                     f"both name the address: give one", 2)
    return _launch("check" if check else command, {**translated, **args}, notes=notes)


def run_app(app: Any, settings: Mapping[str, Any]) -> int:
    """`hybrid.run()`: serve `app`, an import string or the app object itself, with
    `settings` named as the settings table names them (`workers=4`,
    `worker_class="asgi"`, `bind=["0.0.0.0:8000"]`...) or as `uvicorn.run()` names
    them (`host=`, `port=`...: `peers.run_settings`). TypeError for a name that is
    neither; the exit status otherwise, as `hybrid run` would have."""
    try:
        args, notes = peers.run_settings(settings)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    if isinstance(app, str):
        args["app"] = app
        return _launch("run", args, API, notes=notes)
    if args.get("reload"):
        return _fail("reload: give the app as an import string ('module:app'), so that "
                     "new workers can import its new code", 1)
    args["app"] = f"{getattr(app, '__module__', '?')}:{getattr(app, '__qualname__', '?')}"
    return _launch("run", args, API, app, notes=notes)


API = "hybrid.run()"
GUNICORN_DEFAULT_CONFIG = "gunicorn.conf.py"  # read from the working directory without -c


def _launch(command: str, args: dict[str, Any], source: str = "command line",
            app: Any = None, notes: Sequence[str] = ()) -> int:
    """`hybrid COMMAND` with `args` (`app`: the app object, when given one;
    `notes`: what to say at start about peers' flags accepted)."""
    # A reload re-reads the config file after --chdir: remember where it is.
    config_path = args.get("config") or os.environ.get(config.env_name("config"))
    found_here = not config_path and os.path.isfile(GUNICORN_DEFAULT_CONFIG)
    if found_here:
        config_path = GUNICORN_DEFAULT_CONFIG
        notes = [*notes, f"Reading ./{GUNICORN_DEFAULT_CONFIG}, as gunicorn does without -c"]
    if config_path:
        args["config"] = os.path.abspath(config_path)
    start_dir = _start_dir()
    try:
        loaded = workers.resolve(sources.load(args, source=source))
        loaded.notes += tuple(notes)
        if found_here:  # (not given on the command line: found, as gunicorn finds it)
            loaded.sources["config"] = f"./{GUNICORN_DEFAULT_CONFIG}, read without -c"
        if not loaded.config.app:
            raise ConfigError("APP is missing: say which app to serve, e.g. 'hybrid run myapp:app'")
        if loaded.config.chdir:
            _chdir(loaded.config.chdir)
    except ConfigError as exc:
        return _fail(str(exc), 1)
    if command == "check":
        return check(loaded)
    return serve(loaded, args, start_dir, app)


def _start_dir() -> str:
    """Where a USR2 upgrade starts over from (taken before --chdir): $PWD when it
    names the working directory, so that a `current -> release-N` symlink is
    followed again to the new release, as a shell would."""
    cwd = os.getcwd()
    pwd = os.environ.get("PWD", "")
    try:
        if pwd and os.path.samefile(pwd, cwd):
            return pwd
    except OSError:
        pass
    return cwd


def _chdir(path: str) -> None:
    try:
        os.chdir(path)
    except OSError as exc:
        raise ConfigError(f"--chdir: cannot change to {path!r}: {exc.strerror}") from None


def serve(loaded: sources.Loaded, cli_values: dict[str, Any], start_dir: str,
          app: Any = None) -> int:
    from hybrid.arbiter import Arbiter  # keeps `check` light
    from hybrid.process import StartupError

    cfg = loaded.config
    try:
        logs.setup(cfg.log_level, cfg.error_logfile, cfg.access_logfile)
        logs.apply_config(cfg.log_config, cfg.log_config_dict)
        arbiter = Arbiter(loaded, cli_values, start_dir, app)
        return arbiter.run()
    except (BindError, logs.LogFileError, ValueError, OSError) as exc:
        return _fail(str(exc), 1)
    except StartupError as exc:
        return _fail(str(exc), exc.exit_status)


def check(loaded: sources.Loaded) -> int:
    cfg = loaded.config
    logs.setup(cfg.log_level, "-", None)  # (check writes no log file)
    try:
        tls.load(cfg)  # (the certificate files: as `run` would read them)
        app = load_app_for(cfg, INTERFACES)  # reported, whichever class would serve it
    except (ConfigError, AppLoadError) as exc:
        return _fail(str(exc), 1)
    interface = app_interface(app, cfg.interface)
    try:  # (an `auto` class's pick, as its worker will check it)
        http2_options.check(cfg, workers.class_for(cfg.worker_class, interface))
    except ConfigError as exc:
        return _fail(str(exc), 1)
    detected = "detected" if cfg.interface == "auto" else "from --interface"
    warnings = list(loaded.warnings)
    try:
        serves = workers.load_class(cfg.worker_class).interfaces
    except ValueError as exc:  # a 'module:Class' that does not load
        warnings.append(str(exc))
    else:
        if interface not in serves:
            warnings.append(interface_mismatch(cfg, interface, serves))
    lines = [f"warning: {warning}" for warning in warnings]
    lines += [f"note: {note}" for note in loaded.notes]
    lines += [f"app: {cfg.app} ({interface}, {detected})",
              f"build: {native.build().describe()}", "settings:"]
    width = max(len(name) for name in SETTINGS)
    for name in SETTINGS:
        value = config.shown(getattr(cfg, name))
        lines.append(f"  {name:<{width}} = {value:<30} ({loaded.sources[name]})")
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        # The reader left early (`hybrid check APP | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _fail(message: str, status: int) -> int:
    print(f"hybrid: error: {message}", file=sys.stderr)
    return status
