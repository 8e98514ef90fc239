"""Process titles ("hybrid: worker [app]" in ps and top), when the optional
setproctitle package is there (`pip install 'hybrid-server[proctitle]'`)."""

from __future__ import annotations

import importlib
from types import ModuleType

try:
    _setproctitle: ModuleType | None = importlib.import_module("setproctitle")
except ImportError:  # the titles stay as they are
    _setproctitle = None

AVAILABLE = _setproctitle is not None
MISSING = ("--proc-name: process titles need the setproctitle package "
           "(pip install 'hybrid-server[proctitle]'); the titles stay as they are")


def set_title(title: str) -> None:
    """Show 'hybrid: TITLE' as this process's title, if setproctitle is there."""
    if _setproctitle is not None:
        _setproctitle.setproctitle(f"hybrid: {title}")
