"""Which build of hybrid runs: its request path compiled to C by mypyc, or interpreted.

`setup.py` compiles the modules named in COMPILED from the same typed source
when it can (a C compiler, mypy at build time) and, once the compile
succeeded, writes MANIFEST beside this module: the mypyc version, its shared
library and each compiled module's source hash. A build whose compile failed
(no compiler) writes why instead; one with HYBRID_NO_EXTENSIONS=1 writes none.

`hybrid/__init__.py` calls `choose()` before anything else of hybrid loads. The
compiled modules are used only when every one of them is there, for this
Python, built from the source beside it, and its library loads; otherwise an
import hook (`_BuildFinder`) makes Python load the `.py` files instead, all of
them, so the two builds never mix. The compiled build's one Cython piece
(WHOLE_HEADS) is held to the same rule on its own: used only fresh, and never
by the interpreted build. A fallback that was not asked for is said
in one warning line on stderr: an editable install after an edit (a stale
extension) or a library that does not load is never run silently.
HYBRID_NO_EXTENSIONS=1 asks for the interpreted build, at build and at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import NamedTuple

# The request path: the core, the WSGI glue, the thread worker's and the asgi
# class's per-request code, the bridge. What mypyc compiles, nothing else.
COMPILED = (
    "hybrid.protocol.body_readers",
    "hybrid.protocol.events",
    "hybrid.protocol.fields",
    "hybrid.protocol.flood",
    "hybrid.protocol.head",
    "hybrid.protocol.memo",
    "hybrid.protocol.pace",
    "hybrid.protocol.parser",
    "hybrid.protocol.persistence",
    "hybrid.protocol.proxy_protocol",
    "hybrid.protocol.response",
    "hybrid.protocol.state",
    "hybrid.protocol.stream_request",
    "hybrid.protocol.stream_response",
    "hybrid.wsgi",
    "hybrid.wsgi_environ",
    "hybrid.wsgi_input",
    "hybrid.handoff",
    "hybrid.bridge",
    "hybrid.workers.blocking",
    "hybrid.workers.wsgi_runner",
    "hybrid.workers.thread.client",
    "hybrid.workers.thread.gather",
    "hybrid.workers.thread.pool",
    "hybrid.workers.thread.serving",
    "hybrid.workers.thread.worker",
    "hybrid.workers.asgi.connection",
    "hybrid.workers.asgi.cycle",
    "hybrid.workers.asgi.flow",
    "hybrid.workers.asgi.http_cycle",
    "hybrid.workers.asgi.lifetime",
    "hybrid.workers.asgi.preamble",
    "hybrid.workers.asgi.wsgi_cycle",
)

# The one piece of the compiled build written in Cython rather than compiled from
# the typed source: whole clean requests in one call, before llhttp (its module
# docstring says what clean is; the llhttp path stays the reference). Built
# where Cython was there at build time; the compiled build runs without it.
WHOLE_HEADS = "hybrid.protocol.whole_head"

MANIFEST = "_compiled.json"
NO_EXTENSIONS = "HYBRID_NO_EXTENSIONS"


class Build(NamedTuple):
    compiled: bool
    detail: str  # for the boot log and `hybrid check`: which, and why
    compiler: str = ""  # "mypyc 1.x" when compiled
    whole_heads: bool = False  # the compiled build reads clean heads with WHOLE_HEADS

    @property
    def name(self) -> str:
        return "compiled" if self.compiled else "interpreted"

    def describe(self) -> str:
        return f"{self.name} ({self.detail})"


_chosen = Build(False, "hybrid has not been imported")


def build() -> Build:
    """The build this process runs (decided once, when hybrid was imported)."""
    return _chosen


def extensions_refused() -> bool:
    """Whether HYBRID_NO_EXTENSIONS asks for the interpreted build."""
    return os.environ.get(NO_EXTENSIONS, "") not in ("", "0")


def missing_for_c() -> str:
    """What this machine lacks to compile the extensions (setup.py asks): "" if nothing."""
    import shlex  # (here: a server's start never asks)
    import shutil
    import sysconfig

    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[0]
    if shutil.which(compiler) is None:
        return f"no C compiler: {compiler} is not found"
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        return "Python's headers (Python.h) are not installed: python3-dev on Debian"
    return ""


def source_hash(path: str) -> str:
    with open(path, "rb") as source:
        return hashlib.sha256(source.read()).hexdigest()


def choose(package_dir: str) -> Build:
    """Decide the build for this process, and make imports follow it."""
    global _chosen
    _chosen = decide(package_dir, _workers_dir(package_dir))
    if not _chosen.compiled or not _chosen.whole_heads:
        _follow(_chosen)
    return _chosen


def decide(package_dir: str, workers_dir: str) -> Build:
    """Which build the modules installed in these folders make (a warning line
    on stderr for a fallback that was not asked for)."""
    if extensions_refused():
        return Build(False, f"{NO_EXTENSIONS}=1")
    try:
        with open(os.path.join(package_dir, MANIFEST), encoding="utf-8") as file:
            manifest = json.load(file)
    except FileNotFoundError:
        return Build(False, "no compiled modules are installed")
    except (OSError, ValueError) as exc:
        return _fall_back(f"its manifest {MANIFEST} is unreadable: {exc}")
    if "interpreted" in manifest:  # (the install could not compile, and said why)
        return Build(False, str(manifest["interpreted"]))
    missing, stale = _compared(manifest.get("modules", {}), package_dir, workers_dir)
    if len(missing) == len(COMPILED):
        # Built for another Python (the extension's name carries its ABI): the
        # .py files load, consistently, with nothing to warn about.
        return Build(False, f"compiled for {manifest.get('python', 'another Python')}, "
                            f"not for this one")
    if missing:
        return _fall_back(f"{_listed(missing)} has no compiled module")
    if stale:
        return _fall_back(f"{_listed(stale)} changed since it was compiled: rebuild "
                          f"(`make native`, or `pip install -e .`)")
    try:
        importlib.import_module(manifest["library"])
    except Exception as exc:  # (any failure of a C library's init is this one line)
        return _fall_back(f"its library does not load: {type(exc).__name__}: {exc}")
    compiler = str(manifest.get("compiler", "mypyc"))
    detail = f"{compiler}, {len(COMPILED)} modules"
    whole_heads, why_not = _whole_heads_state(manifest.get("whole_heads"), package_dir)
    if whole_heads:
        return Build(True, f"{detail}, whole heads by {whole_heads}", compiler, True)
    return Build(True, f"{detail}; heads by llhttp alone: {why_not}", compiler)


def _whole_heads_state(built: object, package_dir: str) -> tuple[str, str]:
    """The compiler of the WHOLE_HEADS extension where it is fresh, or why it is not
    used ("", why): a stale one is said in a warning line, as a stale module is."""
    if not isinstance(built, dict):
        return "", "it was not built"
    if "compiler" not in built:  # (setup.py said why)
        return "", str(built.get("not_built", "it was not built"))
    base = os.path.join(package_dir, *WHOLE_HEADS.split(".")[1:])
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not os.path.exists(base + suffix):
        return "", _warned(f"{os.path.relpath(base + suffix)} is missing")
    if not os.path.exists(base + ".pyx") or source_hash(base + ".pyx") != built.get("source"):
        return "", _warned(f"{os.path.relpath(base + '.pyx')} changed since it was compiled: "
                           f"rebuild (`make native`, or `pip install -e .`)")
    return str(built["compiler"]), ""


def _compared(hashes: dict[str, str], package_dir: str,
              workers_dir: str) -> tuple[list[str], list[str]]:
    """The compiled modules whose extension is missing, and those whose source
    differs from the one they were compiled from (as paths)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    missing, stale = [], []
    for module in COMPILED:
        base = module_path(module, package_dir, workers_dir)
        if not os.path.exists(base + suffix):
            missing.append(base + ".py")
        elif not os.path.exists(base + ".py") or source_hash(base + ".py") != hashes.get(module):
            stale.append(base + ".py")
    return missing, stale


def _workers_dir(package_dir: str) -> str:
    """Where hybrid.workers lives: hybrid/workers in a wheel; the repository's
    top-level workers/ in an editable install (found without importing it)."""
    spec = importlib.util.find_spec("hybrid.workers")
    if spec is not None and spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return os.path.join(package_dir, "workers")


def module_path(module: str, package_dir: str, workers_dir: str) -> str:
    """A compiled module's path without its suffix (`hybrid.workers.X` lives in
    `workers_dir`: the repository's `workers/`, or `hybrid/workers` installed)."""
    parts = module.split(".")[1:]
    if parts[0] == "workers":
        return os.path.join(workers_dir, *parts[1:])
    return os.path.join(package_dir, *parts)


def _listed(paths: list[str]) -> str:
    shown = os.path.relpath(paths[0])
    return shown if len(paths) == 1 else f"{shown} (and {len(paths) - 1} more)"


def _fall_back(why: str) -> Build:
    detail = f"the compiled build is not used: {why}"
    print(f"hybrid: warning: {detail}", file=sys.stderr, flush=True)
    return Build(False, detail)


def _warned(why: str) -> str:
    print(f"hybrid: warning: the whole-head reader is not used: {why}", file=sys.stderr,
          flush=True)
    return why


def _follow(build: Build) -> None:
    """Make imports follow `build` (which is not the compiled one whole)."""
    for finder in [f for f in sys.meta_path if isinstance(f, _BuildFinder)]:
        sys.meta_path.remove(finder)
    sys.meta_path.insert(0, _BuildFinder(interpreted=not build.compiled))


class _BuildFinder(importlib.abc.MetaPathFinder):
    """Keeps the extensions a build does not use from loading: the interpreted
    build loads a compiled module's `.py` file where its extension sits beside
    it (Python's own finder prefers the extension), and neither it nor a
    compiled build without a fresh one loads WHOLE_HEADS (the parser then
    reads every head with llhttp)."""

    def __init__(self, interpreted: bool) -> None:
        self.interpreted = interpreted

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname == WHOLE_HEADS:
            raise ModuleNotFoundError(f"{fullname} is not part of the build that runs",
                                      name=fullname)
        if fullname not in COMPILED or not self.interpreted:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or \
                not spec.origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return spec
        source = os.path.join(os.path.dirname(spec.origin), fullname.rpartition(".")[2] + ".py")
        return importlib.util.spec_from_file_location(fullname, source)
