"""The worker-class registry: names to dotted paths, imported only when used.

The arbiter reaches worker code only through these paths, so importing the
supervisor never imports a worker's I/O stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybrid.workers.base import Worker

WORKER_CLASSES: dict[str, str] = {
    "sync": "hybrid.workers.sync:SyncWorker",
    "thread": "hybrid.workers.thread:ThreadWorker",
    "asgi": "hybrid.workers.asgi:AsgiWorker",
}
ALIASES = {"gthread": "thread"}  # gunicorn's name


def resolve_name(name: str) -> str:
    """Validate a `--worker-class` value: a registered name or 'module:Class'."""
    name = ALIASES.get(name, name)
    if name in WORKER_CLASSES or (":" in name and all(name.partition(":")[::2])):
        return name
    known = ", ".join(sorted(WORKER_CLASSES))
    raise ValueError(f"unknown worker class {name!r}; choose one of: {known} (or 'module:Class')")


def load_class(name: str) -> type[Worker]:
    """Import the worker class behind a `--worker-class` value."""
    module_name, _, attr = WORKER_CLASSES.get(name, name).partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load worker class {name!r}: {exc}") from None
