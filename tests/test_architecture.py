"""The layering DESIGN.md promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {"socket", "selectors", "select", "threading", "asyncio", "ssl", "uvloop",
              "concurrent", "multiprocessing"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_core_does_no_io():
    for path in (ROOT / "hybrid" / "protocol").glob("*.py"):
        assert not imported_modules(path) & IO_MODULES, path.name


def test_supervisor_package_does_not_import_worker_classes_directly():
    for path in (ROOT / "hybrid").rglob("*.py"):
        source = path.read_text()
        assert "workers.sync" not in source, path.name


def test_only_one_http_parser_exists():
    users = [p.relative_to(ROOT) for p in list((ROOT / "hybrid").rglob("*.py")) +
             list((ROOT / "workers").rglob("*.py")) if "HttpRequestParser" in p.read_text()]
    assert users == [Path("hybrid/protocol/parser.py")]
