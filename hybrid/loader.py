"""Find the application: "pkg.mod:attr", "pkg.mod:attr.sub", "pkg.mod:factory()"
or "pkg.mod:factory('arg')", and tell WSGI from ASGI.

Every failure is an `AppLoadError` whose message is one line a person can act
on; the traceback is logged only at debug level.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from hybrid.config import Config


class AppLoadError(Exception):
    """The app could not be imported or is not an application."""


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
        except Exception as exc:
            _debug_traceback()
            raise AppLoadError(f"factory {attr_path!r} failed: {type(exc).__name__}: {exc}") from None
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
        _debug_traceback()
        raise AppLoadError(f"importing {module_name!r} failed: {exc}") from None
    except SyntaxError as exc:
        _debug_traceback()
        raise AppLoadError(f"importing {module_name!r} failed: SyntaxError: {exc.msg} "
                           f"({exc.filename}, line {exc.lineno})") from None
    except SystemExit as exc:
        _app_exited(exc, f"importing {module_name!r}")
    except Exception as exc:
        _debug_traceback()
        where = _innermost_frame(exc)
        raise AppLoadError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}{where}") from None


def _app_exited(exc: SystemExit, during: str) -> NoReturn:
    """The app called sys.exit() while it was being loaded: a load failure. A
    subclass of SystemExit is the server's own (a worker stopping): passed on."""
    if type(exc) is not SystemExit:
        raise exc
    where = _innermost_frame(exc)
    raise AppLoadError(f"the app called sys.exit({exc.code!r}) while {during}{where}") from None


def _innermost_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" ({last.filename}, line {last.lineno})"


def _debug_traceback() -> None:
    import logging

    logging.getLogger("hybrid.error").debug("app import traceback:\n%s", traceback.format_exc())


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
