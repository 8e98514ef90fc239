"""The layering DESIGN.md promises, checked on the imports themselves.

Every module of the package is parsed and each import (top of the file,
inside functions, under TYPE_CHECKING alike) resolved to the full name of
what it imports, so a rule cannot be dodged by spelling an import another way.
ARCHITECTURE.md's "Import rules" lists the rules in words.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {"socket", "selectors", "select", "threading", "asyncio", "ssl", "uvloop",
              "concurrent", "multiprocessing", "subprocess", "os", "signal", "mmap"}


def module_name(path: Path) -> str:
    """The name a source file installs as (`workers/` is `hybrid.workers`)."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "workers":
        parts.insert(0, "hybrid")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    files = [*(ROOT / "hybrid").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]
    return {module_name(path): path for path in files}


MODULES = package_modules()


@functools.cache  # (asked of each module again and again: each file is parsed once)
def imports_of(path: Path, on_import_only: bool = False) -> frozenset[str]:
    """Every module `path` imports; `from a import b` counts as a and as a.b.
    `on_import_only`: leave out the imports inside functions (those run when
    the function is called, not when the module is imported)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text()), on_import_only):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _nodes(tree: ast.AST, skip_functions: bool) -> list[ast.AST]:
    if not skip_functions:
        return list(ast.walk(tree))
    found: list[ast.AST] = []
    waiting = [tree]
    while waiting:
        node = waiting.pop()
        found.append(node)
        waiting.extend(child for child in ast.iter_child_nodes(node)
                       if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.Lambda)))
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules_under(prefix: str) -> list[str]:
    return sorted(name for name in MODULES if within(name, prefix))


def modules_imported_by(name: str, on_import_only: bool = False) -> set[str]:
    """The modules of the package that `name` imports itself."""
    imported = imports_of(MODULES[name], on_import_only)
    return {module for module in MODULES if module != name and module in imported}


def import_chain(start: str, prefix: str) -> list[str]:
    """How `start` comes to load a module within `prefix`, through the modules
    of the package it imports and theirs: the chain of names, [] if it never does.

    A package's `__init__` on the way counts with what it imports when it is
    imported: the imports in its functions run only when they are called
    (`hybrid.run()` loads the command line). The packages above a module are
    not followed either: `hybrid` imports nothing when imported, and the
    registry (`hybrid.workers`) is the settings' own."""
    came_from: dict[str, str] = {start: ""}
    waiting = [start]
    while waiting:
        current = waiting.pop(0)
        if current != start and within(current, prefix):
            chain = [current]
            while came_from[chain[0]]:
                chain.insert(0, came_from[chain[0]])
            return chain
        package = MODULES[current].name == "__init__.py" and current != start
        for module in sorted(modules_imported_by(current, on_import_only=package)):
            if module not in came_from:
                came_from[module] = current
                waiting.append(module)
    return []


def test_the_rules_see_every_module_of_the_package():
    assert {"hybrid.config", "hybrid.arbiter", "hybrid.protocol.parser", "hybrid.workers",
            "hybrid.workers.base", "hybrid.workers.thread"} <= set(MODULES)


@pytest.mark.parametrize("directory", ["hybrid", "workers", "tests", "benchmarks", "examples"])
def test_nothing_imports_a_top_level_workers_name(directory):
    for path in (ROOT / directory).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not any(within(name, "workers") for name in names), path


@pytest.mark.parametrize("name", ["hybrid.config", "hybrid.validators", "hybrid.sources"])
def test_the_settings_import_no_worker_code(name):
    assert not {n for n in imports_of(MODULES[name]) if within(n, "hybrid.workers")}


def test_the_settings_table_is_the_table_alone():
    # (what it reads from, and the peers' names for it, build on it: not the other way)
    assert not {n for n in imports_of(MODULES["hybrid.config"])
                if n in ("hybrid.sources", "hybrid.peers", "hybrid.gunicorn_conf")}


@pytest.mark.parametrize("name", [n for n in MODULES if not within(n, "hybrid.workers")])
def test_the_supervisor_reaches_workers_only_through_the_registry(name):
    worker_modules = [n for n in MODULES if n.startswith("hybrid.workers.")]
    reached = {n for n in imports_of(MODULES[name])
               if any(within(n, module) for module in worker_modules)}
    assert not reached, name


@pytest.mark.parametrize("name", modules_under("hybrid.protocol"))
def test_the_protocol_core_imports_no_io_process_or_settings_module(name):
    imported = imports_of(MODULES[name])
    assert not {n.split(".")[0] for n in imported} & IO_MODULES, name
    outside = {n for n in imported if within(n, "hybrid") and not within(n, "hybrid.protocol")}
    assert not outside, (name, outside)


SUPERVISOR_ROOMS = ["hybrid.arbiter", "hybrid.cli", "hybrid.sockets", "hybrid.tls",
                    "hybrid.startup", "hybrid.signals", "hybrid.generations", "hybrid.worker_process",
                    "hybrid.respawn", "hybrid.watchdog", "hybrid.process", "hybrid.memory_watch",
                    "hybrid.reload", "hybrid.reexec", "hybrid.stopping", "hybrid.control",
                    "hybrid.probes"]
"""The arbiter's side: the command line, binding, the TLS context built from the
settings, forking and its policies, the control listener. A worker is handed
what they make (its sockets, a `ServerTLS`) and imports none of them."""
SHARED_LEAVES = ["hybrid.addresses", "hybrid.reuse_port", "hybrid.tls_facts",
                 "hybrid.forwarded", "hybrid.heap"]
"""What both sides (or every worker class) use, apart from the side that binds."""
PEP_3333 = ["hybrid.wsgi", "hybrid.wsgi_environ", "hybrid.wsgi_input"]
BYTE_MOVERS = {"socket", "select", "selectors", "ssl", "asyncio", "uvloop"}
HTTP_PARSERS = {"httptools", "h11", "llhttp"}


def test_the_supervisor_rooms_named_are_modules():
    assert set(SUPERVISOR_ROOMS) - set(MODULES) == set()


@pytest.mark.parametrize("name", modules_under("hybrid.workers"))
def test_workers_never_load_the_supervisor(name):
    for room in SUPERVISOR_ROOMS:
        chain = import_chain(name, room)
        assert not chain, " -> ".join(chain)


@pytest.mark.parametrize("name", [*PEP_3333, "hybrid.bridge"])
def test_pep_3333_and_the_bridge_load_no_settings(name):
    # (an app may use the bridge under another server: it brings no settings table)
    chain = import_chain(name, "hybrid.config")
    assert not chain, " -> ".join(chain)


@pytest.mark.parametrize("name", PEP_3333)
def test_pep_3333_writes_no_bytes_itself(name):
    # (it hands start, body and end to a responder: the driver's is what writes)
    assert not {n.split(".")[0] for n in imports_of(MODULES[name])} & BYTE_MOVERS, name


@pytest.mark.parametrize("name", modules_under("hybrid.workers.asgi"))
def test_the_asgi_class_loads_nothing_of_the_blocking_classes(name):
    # (what every class shares about accepting is hybrid.workers.accept)
    chain = import_chain(name, "hybrid.workers.blocking")
    assert not chain, " -> ".join(chain)


@pytest.mark.parametrize("name", SHARED_LEAVES)
def test_the_shared_leaves_import_nothing_of_the_package(name):
    assert not modules_imported_by(name), name


@pytest.mark.parametrize("name", [*SHARED_LEAVES, "hybrid.workers.accept"])
def test_the_shared_rooms_load_neither_the_settings_nor_the_supervisor(name):
    for room in ["hybrid.config", "hybrid.validators", "hybrid.sources", *SUPERVISOR_ROOMS]:
        chain = import_chain(name, room)
        assert not chain, " -> ".join(chain)


@pytest.mark.parametrize("room", ["hybrid.loader", "hybrid.wsgi", "hybrid.bridge",
                                  "hybrid.workers"])
def test_the_control_listener_never_reaches_app_code(room):
    chain = import_chain("hybrid.control", room)
    assert not chain, " -> ".join(chain)


def test_only_one_http_parser_exists():
    users = [p.relative_to(ROOT) for p in MODULES.values() if "HttpRequestParser" in p.read_text()]
    assert users == [Path("hybrid/protocol/parser.py")]
    importers = sorted(name for name, path in MODULES.items()
                       if {n.split(".")[0] for n in imports_of(path)} & HTTP_PARSERS)
    # (head.py holds the parser's callbacks, and reads an absolute target with
    # httptools' URL parser.)
    assert importers == ["hybrid.protocol.head", "hybrid.protocol.parser"]


def test_no_module_of_the_package_imports_itself_back():
    """No import cycle, not even one only a type checker follows."""
    graph = {name: {m for m in MODULES if m != name and m in imports_of(path)}
             for name, path in MODULES.items()}
    # A package's own __init__ is imported by its modules implicitly: not a cycle.
    graph = {name: {m for m in deps if not within(name, m)} for name, deps in graph.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, " -> ".join(visiting[visiting.index(name):] + [name])
        if name in done:
            return
        visiting.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def architecture_names() -> set[str]:
    """The modules ARCHITECTURE.md's module tables name: the first cell of a
    row, a path from the repository's root (`workers/thread/pool.py`)."""
    named: set[str] = set()
    for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        if line.startswith("| `") and line.split("`")[1].endswith(".py"):
            named.add(line.split("`")[1])
    return named


def test_architecture_md_names_every_module_of_the_package():
    files = {path.relative_to(ROOT).as_posix()
             for path in [*(ROOT / "hybrid").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]}
    named = architecture_names()
    assert files - named == set(), "modules ARCHITECTURE.md does not name"
    assert named - files == set(), "names in ARCHITECTURE.md that are no module"
