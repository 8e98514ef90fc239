"""Find the application: "pkg.mod:attr", "pkg.mod:attr.sub", "pkg.mod:factory()"
or "pkg.mod:factory('arg')", and tell WSGI from ASGI.

Every failure is an `AppLoadError` whose message begins with one line a
person can act on. An error raised by the app's own code (its import, its
factory) is followed by the app's traceback, as Python prints it but for
hybrid's and importlib's frames (`app_traceback`), so that a user can fix it
without `--log-level debug`; the summary line names the app's line that led
to the error (`app_frame`), not the library line deep under it that raised.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import site
import sys
import sysconfig
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from hybrid.config import Config


class AppLoadError(Exception):
    """The app could not be imported or is not an application: the first line
    says why; the app's traceback follows when its own code raised."""


class Interrupted(BaseException):
    """Raised by the server's own signal handler to end an import it is told to
    stop (INT while the arbiter preloads): passed on, never taken for the app's
    failure, as a `KeyboardInterrupt` the app raises is."""


def prepare_path(pythonpath: tuple[str, ...] = ()) -> None:
    """Put the working directory and --pythonpath first on sys.path, as gunicorn does."""
    for entry in reversed((os.getcwd(), *(os.path.abspath(p) for p in pythonpath))):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def load_app_for(cfg: Config, interfaces: tuple[str, ...]) -> Any:
    """Import the app `cfg` names and check that a worker class serving
    `interfaces` can run it."""
    prepare_path(cfg.pythonpath)
    app = load_app(cfg.app or "", factory=cfg.factory)
    interface = app_interface(app, cfg.interface)
    if interface not in interfaces:
        raise AppLoadError(interface_mismatch(cfg, interface, interfaces))
    return app


_CLASSES_SERVING = {"asgi": "-k asgi", "wsgi": "-k sync or -k thread"}


def interface_mismatch(cfg: Config, interface: str, interfaces: tuple[str, ...]) -> str:
    """Why the configured worker class cannot serve an app of `interface`, and
    what would."""
    serves = " and ".join(i.upper() for i in interfaces)
    if cfg.interface == "auto":
        article = "an" if interface == "asgi" else "a"
        return (f"{cfg.app!r} is {article} {interface.upper()} app; the {cfg.worker_class!r} "
                f"worker class serves {serves} only: use {_CLASSES_SERVING[interface]}")
    return (f"--interface {cfg.interface} serves {cfg.app!r} as {interface.upper()}; the "
            f"{cfg.worker_class!r} worker class serves {serves} only: leave --interface out, "
            f"or use {_CLASSES_SERVING[interface]}")


def app_interface(app: Any, choice: str) -> str:
    """The interface to serve `app` with: `--interface`, unless it says auto."""
    return detect_interface(app) if choice == "auto" else choice


def load_app(spec: str, *, factory: bool = False) -> Any:
    """Import the object `spec` names; call it first when it is a factory."""
    module_name, sep, expression = spec.partition(":")
    if not module_name or not sep or not expression:
        raise AppLoadError(f"APP must look like 'module:attribute', got {spec!r}")
    attr_path, call_args, called = _parse_expression(spec, expression)
    module = _import(module_name)

    app: Any = module
    for part in attr_path.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if called or factory:
        if not callable(app):
            raise AppLoadError(f"{spec!r}: {attr_path!r} is not callable, so it is no factory")
        try:
            app = app(*call_args)
        except SystemExit as exc:
            _app_exited(exc, f"factory {attr_path!r} ran")
        except Interrupted:
            raise
        except BaseException as exc:  # (the app's KeyboardInterrupt too: its failure)
            raise _app_failed(f"factory {attr_path!r} failed: {_described(exc)}", exc) from None
    if not callable(app):
        raise AppLoadError(f"{spec!r} is a {type(app).__name__}, not an application")
    return app


def _parse_expression(spec: str, expression: str) -> tuple[str, tuple[Any, ...], bool]:
    """Split "name.sub" or "factory(arg, ...)" into (attribute path, args, called)."""
    if "(" not in expression:
        if not all(part.isidentifier() for part in expression.split(".")):
            raise AppLoadError(f"{spec!r}: {expression!r} is not an attribute name")
        return expression, (), False
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppLoadError(f"{spec!r}: cannot parse {expression!r}") from None
    if not isinstance(node, ast.Call) or node.keywords:
        raise AppLoadError(f"{spec!r}: only 'factory()' or 'factory(literal, ...)' calls are allowed")
    try:
        args = tuple(ast.literal_eval(arg) for arg in node.args)
    except ValueError:
        raise AppLoadError(f"{spec!r}: factory arguments must be literals") from None
    return ast.unparse(node.func), args, True


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(f"cannot import {module_name!r}: no module named {exc.name!r} "
                               f"(check APP, --chdir and --pythonpath)") from None
        raise _app_failed(f"importing {module_name!r} failed: {exc}", exc) from None
    except SyntaxError as exc:
        raise _app_failed(f"importing {module_name!r} failed: SyntaxError: {exc.msg} "
                          f"({exc.filename}, line {exc.lineno})", exc, where=False) from None
    except SystemExit as exc:
        _app_exited(exc, f"importing {module_name!r}")
    except Interrupted:
        raise
    except BaseException as exc:  # (the app's KeyboardInterrupt too: its failure)
        raise _app_failed(f"importing {module_name!r} failed: {_described(exc)}", exc) from None


def _described(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # (an app's exception whose __str__ fails: named all the same)
        text = "<its str() failed>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _app_failed(summary: str, exc: BaseException, where: bool = True) -> AppLoadError:
    """The error for `exc`, raised by the app's code: `summary`, where in the
    app it happened (unless the summary says so already), and its traceback."""
    if where:
        summary += app_frame(exc)
    shown = app_traceback(exc)
    return AppLoadError(f"{summary}\n{shown}" if shown else summary)


def _app_exited(exc: SystemExit, during: str) -> NoReturn:
    """The app called sys.exit() while it was being loaded: a load failure (its
    line is named, without a traceback: it meant to). A subclass of SystemExit
    is the server's own (a worker stopping): passed on."""
    if type(exc) is not SystemExit:
        raise exc
    raise AppLoadError(f"the app called sys.exit({exc.code!r}) while {during}"
                       f"{app_frame(exc)}") from None


def app_frame(exc: BaseException) -> str:
    """Where the app's code raised `exc`, for the summary line: " (FILE, line N)",
    or "" when no frame is the app's.

    It is the last frame in the user's own code (not hybrid's, importlib's, the
    standard library's or an installed package's): the user's line that led to
    the error, rather than the library line that raised it (`json.loads(...)` in
    the app, not `json/decoder.py, line 353`). An app installed as a package has
    no such frame: then its first frame, where hybrid entered it.
    """
    frames = _app_frames(traceback.extract_tb(exc.__traceback__))
    if not frames:
        return ""
    libraries = _library_directories()
    own = [frame for frame in frames if not frame.filename.startswith(libraries)]
    frame = own[-1] if own else frames[0]
    return f" ({frame.filename}, line {frame.lineno})"


def app_traceback(exc: BaseException) -> str:
    """`exc`'s traceback as Python prints it, from the first frame of the app's
    code on, without hybrid's frames or importlib's (in every exception of the
    chain); "" when no frame is the app's (its module is missing, or is no
    valid Python: the summary line says all there is)."""
    report = traceback.TracebackException.from_exception(exc)
    parts = _chained(report)
    if not any(_app_frames(part.stack) for part in parts):
        return ""
    for part in parts:
        part.stack = traceback.StackSummary.from_list(_app_frames(part.stack))
    return "".join(report.format()).rstrip("\n")


def _chained(report: traceback.TracebackException) -> list[traceback.TracebackException]:
    """`report` and every exception chained to it (causes, contexts, a group's members)."""
    found: list[traceback.TracebackException] = []
    pending: list[traceback.TracebackException | None] = [report]
    while pending:
        part = pending.pop()
        if part is None or any(part is seen for seen in found):
            continue
        found.append(part)
        pending += [part.__cause__, part.__context__, *(getattr(part, "exceptions", None) or ())]
    return found


def _app_frames(frames: list[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """`frames` less hybrid's own and importlib's (the machinery between hybrid
    and the app's module)."""
    hidden = _hybrid_directories()
    return [frame for frame in frames if not frame.filename.startswith(hidden)
            and not frame.filename.startswith("<frozen importlib.")
            and frame.filename != importlib.__file__]


def _hybrid_directories() -> tuple[str, ...]:
    """Where hybrid's modules are (its workers install apart from it in a checkout)."""
    modules = (sys.modules.get(name) for name in ("hybrid", "hybrid.workers"))
    return tuple(os.path.dirname(module.__file__) + os.sep for module in modules
                 if module is not None and module.__file__)


def _library_directories() -> tuple[str, ...]:
    """Where the standard library and installed packages are."""
    paths = sysconfig.get_paths()
    found = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(site.getsitepackages())
    found.add(site.getusersitepackages())
    return tuple(os.path.join(path, "") for path in found)


def detect_interface(app: Any) -> str:
    """'asgi' for ASGI 3 callables, else 'wsgi'."""
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return "wsgi"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return "asgi" if len(positional) == 3 else "wsgi"
