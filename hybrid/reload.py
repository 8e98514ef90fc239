"""--reload: notice changed source files, so that the arbiter replaces its workers.

The arbiter polls: every RELOAD_INTERVAL seconds `Watcher.changed()` walks
the watched directories and compares each watched file's modification time
and size with the previous walk. Polling rather than inotify: it needs no
dependency, and it sees changes where inotify events never arrive (a source
tree bind-mounted into a container from macOS or Windows, network file
systems); a development tree of a few thousand files costs milliseconds a
walk. Directories that never hold the app's source are skipped: hidden
ones, `__pycache__`, `node_modules` and virtual environments (any directory
with a `pyvenv.cfg`).

What a change does is the arbiter's: the same as HUP (new workers with the
new code; the old ones retire once the new ones serve, or keep serving if
the new code cannot boot).
"""

from __future__ import annotations

import os
from fnmatch import fnmatch

RELOAD_INTERVAL = 0.5
SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules", "site-packages"})

Snapshot = dict[str, tuple[int, int]]  # path -> (mtime in ns, size)


class Watcher:
    """The watched files of `directories`: *.py, and what `include` globs match."""

    def __init__(self, directories: list[str], include: tuple[str, ...]) -> None:
        self.directories = [os.path.abspath(directory) for directory in directories]
        self.patterns = ("*.py", *include)
        self._snapshot = self._scan()

    def changed(self) -> list[str]:
        """The files created, changed or removed since the last call, sorted."""
        before, after = self._snapshot, self._scan()
        self._snapshot = after
        return sorted(path for path in before.keys() | after.keys()
                      if before.get(path) != after.get(path))

    def _scan(self) -> Snapshot:
        found: Snapshot = {}
        for root in self.directories:
            self._walk(root, root, found)
        return found

    def _walk(self, root: str, directory: str, found: Snapshot) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return  # gone or unreadable: what was in it counts as removed
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not _skipped(entry):
                        self._walk(root, entry.path, found)
                elif self._watched(root, entry.path):
                    stat = entry.stat()
                    found[entry.path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue  # removed while walking

    def _watched(self, root: str, path: str) -> bool:
        name, relative = os.path.basename(path), os.path.relpath(path, root)
        return any(fnmatch(name, pattern) or fnmatch(relative, pattern)
                   for pattern in self.patterns)


def _skipped(entry: os.DirEntry[str]) -> bool:
    return (entry.name.startswith(".") or entry.name in SKIPPED_DIRECTORIES
            or os.path.exists(os.path.join(entry.path, "pyvenv.cfg")))
