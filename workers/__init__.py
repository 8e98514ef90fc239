"""The worker-class registry: names to dotted paths, imported only when used.

It owns the worker names: the aliases, the check of a `--worker-class`
value, and gunicorn's rule that the sync class given threads is the thread
class. The arbiter reaches worker code only through these paths, so
importing the supervisor never imports a worker's I/O stack.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

from hybrid import http2_options
from hybrid.config import DEFAULTS, Config, flag_name, shown
from hybrid.sources import Loaded, setting_error

if TYPE_CHECKING:
    from hybrid.workers.base import Worker as Worker  # (for annotations elsewhere)

WORKER_CLASSES: dict[str, str] = {
    "sync": "hybrid.workers.sync:SyncWorker",
    "thread": "hybrid.workers.thread:ThreadWorker",
    "asgi": "hybrid.workers.asgi.worker:AsgiWorker",
}
AUTO = "auto"  # the default: the app's interface picks (hybrid.workers.auto)
AUTO_PATH = "hybrid.workers.auto:AutoWorker"
CLASS_FOR_INTERFACE = {"wsgi": "sync", "asgi": "asgi"}
"""The class `auto` picks for an app of each interface."""
ALIASES = {
    # What gunicorn users give -k for the classes ours replace.
    "gthread": "thread",
    "egg:gunicorn#sync": "sync",
    "egg:gunicorn#gthread": "thread",
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gunicorn.workers.gthread.ThreadWorker": "thread",
    "uvicorn.workers.UvicornWorker": "asgi",
    "uvicorn.workers.UvicornH11Worker": "asgi",
    "uvicorn_worker.UvicornWorker": "asgi",
    "uvicorn_worker.UvicornH11Worker": "asgi",
}
GREEN_THREADS = ("gevent", "eventlet", "tornado")  # gunicorn classes with no counterpart
THREADS_CHOSE_THREAD = "--threads > 1 chose the thread class"
GIVEN_AS = "given as "  # how a source names the gunicorn or uvicorn spelling it came as

USED_ONLY_BY: dict[str, tuple[str, ...]] = {
    "threads": ("thread", "asgi"),  # asgi: the bridge's pool, for a WSGI app
    "worker_connections": ("thread", "asgi"),
    "keep_alive": ("thread", "asgi"),  # sync answers one request per connection
    "loop": ("asgi",),
    "lifespan": ("asgi",),
    "limit_concurrency": ("asgi",),
    "ws_max_size": ("asgi",),
    "ws_ping_interval": ("asgi",),
    "ws_ping_timeout": ("asgi",),
    "ws_per_message_deflate": ("asgi",),
    "ws_deflate_window_bits": ("asgi",),
    "ws_deflate_mem_level": ("asgi",),
    "gather_body": ("thread",),
    "sendfile": ("sync", "thread"),
    "http2_max_concurrent_streams": ("asgi",),
    "http2_initial_window_size": ("asgi",),
    "http2_max_frame_size": ("asgi",),
    "http2_max_header_list_size": ("asgi",),
}
"""The settings only some registered classes read; given to another, they are
ignored, and start-up says so."""


def resolve_name(name: str) -> str:
    """Validate a `--worker-class` value: a registered name or 'module:Class'."""
    if any(green in name.lower() for green in GREEN_THREADS):
        raise ValueError(f"hybrid has no {name!r} worker: for many concurrent connections use "
                         f"-k thread (WSGI, keep-alive, a pool of --threads) or -k asgi (an event "
                         f"loop; a WSGI app runs on its --threads pool)")
    name = ALIASES.get(name, name)
    if name in WORKER_CLASSES or name == AUTO or (":" in name and all(name.partition(":")[::2])):
        return name
    known = ", ".join([AUTO, *sorted(WORKER_CLASSES)])
    raise ValueError(f"unknown worker class {name!r}; choose one of: {known} (or 'module:Class')")


def resolve(loaded: Loaded) -> Loaded:
    """The configuration with its worker class settled: validated, the alias
    followed, and sync or auto given --threads > 1 turned into thread
    (gunicorn's rule; only a thread count someone set counts, not the default),
    with a warning for each given setting the class never reads; HTTP/2 asked
    of a class that cannot serve it is a ConfigError (`http2_options.check`)."""
    cfg, sources = loaded.config, loaded.sources
    try:
        name = resolve_name(cfg.worker_class)
    except ValueError as exc:
        raise setting_error("worker_class", str(exc), sources["worker_class"]) from None
    if name in ("sync", AUTO) and cfg.threads > 1 and sources["threads"] != "default":
        # (Under auto too: --threads asks for the thread class, as in gunicorn; an
        # ASGI app then needs -k asgi, and the refusal says so.)
        name, sources = "thread", {**sources, "worker_class": THREADS_CHOSE_THREAD}
    elif cfg.worker_class in ALIASES:
        given = f"{GIVEN_AS}{cfg.worker_class}"
        sources = {**sources, "worker_class": f"{sources['worker_class']}, {given}"}
    if name != cfg.worker_class:
        cfg = dataclasses.replace(cfg, worker_class=name)
    http2 = http2_options.check(cfg, name)  # (ConfigError: HTTP/2 asked of a class without it)
    return Loaded(cfg, sources, loaded.warnings + _unused_settings(name, loaded) + http2,
                  loaded.notes, loaded.hooks)


def ignored_by_the_pick(name: str, cfg: Config) -> list[str]:
    """In an `auto` worker, once the app's interface has picked `name`: the
    settings set to other than their default that `name` never reads, though
    the class picked for the other interface would. (The sources are not known
    there; the ones no pick reads were named at start-up.)"""
    picks = CLASS_FOR_INTERFACE.values()
    return [f"{flag_name(setting)} {shown(getattr(cfg, setting))} is ignored: the {name!r} "
            f"worker class does not use it"
            for setting, classes in USED_ONLY_BY.items()
            if name not in classes and any(pick in classes for pick in picks)
            and getattr(cfg, setting) != DEFAULTS[setting]]


def _unused_settings(name: str, loaded: Loaded) -> tuple[str, ...]:
    """A warning for each setting someone gave that the `name` class never reads."""
    if name not in WORKER_CLASSES and name != AUTO:
        return ()  # a class of the user's own: what it reads is its business
    warnings = []
    for setting, classes in USED_ONLY_BY.items():
        source = loaded.sources[setting]
        value = getattr(loaded.config, setting)
        reads = CLASS_FOR_INTERFACE.values() if name == AUTO else (name,)
        if any(reader in classes for reader in reads) or source == "default" \
                or (setting == "threads" and value == 1):
            continue
        users = " and ".join(f"-k {c}" for c in classes)
        verb = "use" if len(classes) > 1 else "uses"
        warnings.append(f"{flag_name(setting)} (from {source}) is ignored: the {name!r} worker "
                        f"class does not use it ({users} {verb} it)")
    return tuple(warnings)


def class_for(name: str, interface: str) -> str:
    """The class that serves an app of `interface` when `name` was chosen."""
    return CLASS_FOR_INTERFACE[interface] if name == AUTO else name


def load_class(name: str) -> type[Worker]:
    """Import the worker class behind a `--worker-class` value; ValueError, one
    line, for a path that names nothing, or something that is no worker class."""
    from hybrid.workers.base import Worker

    path = AUTO_PATH if name == AUTO else WORKER_CLASSES.get(name, name)
    module_name, _, attr = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load worker class {name!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, Worker)):
        what = "a class" if isinstance(found, type) else f"a {type(found).__name__}"
        raise ValueError(f"--worker-class: {name!r} names {what}, not a worker class (a "
                         f"subclass of hybrid.workers.base.Worker)")
    return found
