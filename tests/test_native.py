"""Which build runs: the compiled request path where one was built, the
interpreted one when asked for, and a loud fallback, never a stale or broken
extension run silently, never the two builds mixed."""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid import native
from tests.conftest import ROOT

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def a_compiler_is_here() -> bool:
    return native.missing_for_c() == ""


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in install: each compiled module's source and extension file, and a
    manifest naming their sources' hashes (its library, `json`, always loads)."""
    package, workers = tmp_path / "hybrid", tmp_path / "hybrid" / "workers"
    hashes = {}
    for module in native.COMPILED:
        base = Path(native.module_path(module, str(package), str(workers)))
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".py").write_text(f"# {module}\n")
        Path(str(base) + SUFFIX).write_bytes(b"")
        hashes[module] = native.source_hash(str(base.with_suffix(".py")))
    whole_heads = package / "protocol" / "whole_head.pyx"
    whole_heads.write_text("# the Cython piece\n")
    Path(str(whole_heads.with_suffix("")) + SUFFIX).write_bytes(b"")
    manifest = {"compiler": "mypyc 9.9", "python": "cpython-00", "library": "json",
                "modules": hashes, "whole_heads": {
                    "compiler": "Cython 9.9", "source": native.source_hash(str(whole_heads))}}
    (package / native.MANIFEST).write_text(json.dumps(manifest))
    return package, workers


def rewrite_manifest(installed: tuple[Path, Path], **entries: object) -> None:
    path = installed[0] / native.MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), **entries}))


def decided(installed: tuple[Path, Path]) -> native.Build:
    return native.decide(str(installed[0]), str(installed[1]))


@pytest.fixture(autouse=True)
def extensions_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.NO_EXTENSIONS, raising=False)


def test_a_complete_fresh_build_is_the_compiled_one(installed, capsys):
    modules = len(native.COMPILED)
    assert decided(installed) == native.Build(
        True, f"mypyc 9.9, {modules} modules, whole heads by Cython 9.9", "mypyc 9.9",
        whole_heads=True)
    assert capsys.readouterr().err == ""


def test_a_build_without_the_whole_head_reader_says_why_quietly(installed, capsys):
    rewrite_manifest(installed, whole_heads={"not_built": "Cython was not installed at build"})
    modules = len(native.COMPILED)
    assert decided(installed) == native.Build(
        True, f"mypyc 9.9, {modules} modules; heads by llhttp alone: Cython was not installed "
              "at build", "mypyc 9.9")
    assert capsys.readouterr().err == ""


def test_a_stale_whole_head_reader_is_not_used_and_said(installed, capsys):
    (installed[0] / "protocol" / "whole_head.pyx").write_text("# edited\n")
    build = decided(installed)
    assert build.compiled and not build.whole_heads
    assert "whole_head.pyx changed since it was compiled" in capsys.readouterr().err


def test_a_missing_whole_head_extension_is_said(installed, capsys):
    Path(str(installed[0] / "protocol" / "whole_head") + SUFFIX).unlink()
    build = decided(installed)
    assert build.compiled and not build.whole_heads
    assert "the whole-head reader is not used" in capsys.readouterr().err


def test_no_extensions_asks_for_the_interpreted_build_quietly(installed, monkeypatch, capsys):
    monkeypatch.setenv(native.NO_EXTENSIONS, "1")
    assert decided(installed) == native.Build(False, "HYBRID_NO_EXTENSIONS=1")
    assert capsys.readouterr().err == ""


def test_without_a_manifest_nothing_was_compiled(installed, capsys):
    (installed[0] / native.MANIFEST).unlink()
    assert decided(installed) == native.Build(False, "no compiled modules are installed")
    assert capsys.readouterr().err == ""


def test_a_source_edited_since_the_compile_falls_back_loudly(installed, capsys):
    edited = installed[0] / "protocol" / "parser.py"
    edited.write_text("# edited\n")
    build = decided(installed)
    assert not build.compiled
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("hybrid: warning: the compiled build is not used: ")
    assert os.path.relpath(edited) in line and "changed since it was compiled" in line


def test_a_missing_extension_falls_back_loudly(installed, capsys):
    Path(str(installed[1] / "thread" / "worker") + SUFFIX).unlink()
    assert not decided(installed).compiled
    (line,) = capsys.readouterr().err.splitlines()
    assert "thread/worker.py has no compiled module" in line


def test_a_library_that_does_not_load_falls_back_loudly(installed, capsys):
    manifest = json.loads((installed[0] / native.MANIFEST).read_text())
    manifest["library"] = "hybrid._no_such_library__mypyc"
    (installed[0] / native.MANIFEST).write_text(json.dumps(manifest))
    assert not decided(installed).compiled
    (line,) = capsys.readouterr().err.splitlines()
    assert "its library does not load: ModuleNotFoundError" in line


def test_a_build_for_another_python_is_left_quietly(installed, capsys):
    for extension in installed[0].rglob("*" + SUFFIX):
        extension.unlink()
    build = decided(installed)
    assert build == native.Build(False, "compiled for cpython-00, not for this one")
    assert capsys.readouterr().err == ""


def test_an_unreadable_manifest_falls_back_loudly(installed, capsys):
    (installed[0] / native.MANIFEST).write_text("{")
    assert not decided(installed).compiled
    assert "its manifest _compiled.json is unreadable" in capsys.readouterr().err


@pytest.mark.skipif(native.extensions_refused(), reason="HYBRID_NO_EXTENSIONS=1 asks for the "
                    "interpreted build")
@pytest.mark.skipif(not a_compiler_is_here(), reason="this machine cannot compile C "
                    "extensions: the interpreted build is the one installed")
def test_the_compiled_build_runs_wherever_a_compiler_is():
    import hybrid.protocol.parser
    import hybrid.workers.thread.worker

    assert native.build().compiled, native.build().describe()
    assert hybrid.protocol.parser.__file__.endswith(SUFFIX)
    assert hybrid.workers.thread.worker.__file__.endswith(SUFFIX)
    # (Cython is one of the build's requirements, so it is there wherever mypyc is.)
    assert native.build().whole_heads, native.build().describe()
    assert hybrid.protocol.parser._WHOLE_HEADS is not None


def test_no_extensions_loads_every_module_from_its_source():
    shown = subprocess.run(
        [sys.executable, "-c", "import importlib, hybrid.native as n\n"
         "files = [importlib.import_module(m).__file__ for m in n.COMPILED]\n"
         "print(n.build().describe(), sum(f.endswith('.py') for f in files))"],
        env={**os.environ, native.NO_EXTENSIONS: "1"}, cwd=ROOT, capture_output=True,
        text=True, check=True, timeout=60)
    assert shown.stdout.split() == ["interpreted", "(HYBRID_NO_EXTENSIONS=1)",
                                    str(len(native.COMPILED))]
    assert shown.stderr == ""


def test_the_interpreted_build_never_loads_the_whole_head_reader():
    shown = subprocess.run(
        [sys.executable, "-c", "import hybrid.protocol.parser as p\n"
         "try:\n    import hybrid.protocol.whole_head\nexcept ModuleNotFoundError as e:\n"
         "    print(p._WHOLE_HEADS, e)"],
        env={**os.environ, native.NO_EXTENSIONS: "1"}, cwd=ROOT, capture_output=True,
        text=True, check=True, timeout=60)
    assert shown.stdout == "None hybrid.protocol.whole_head is not part of the build that runs\n"


def test_an_install_that_could_not_compile_says_why_quietly(installed, capsys):
    (installed[0] / native.MANIFEST).write_text(json.dumps(
        {"interpreted": "the compile failed at install: CompileError: no gcc"}))
    assert decided(installed) == native.Build(
        False, "the compile failed at install: CompileError: no gcc")
    assert capsys.readouterr().err == ""


def _unfinal_constants(source: str) -> list[str]:
    """The module-level UPPER_CASE names bound in `source` without `Final` (type
    variables aside)."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and "TypeVar(" not in ast.unparse(node.value):
            targets = [name for target in node.targets
                       for name in (target.elts if isinstance(target, ast.Tuple) else [target])]
        elif isinstance(node, ast.AnnAssign) and "Final" not in ast.unparse(node.annotation):
            targets = [node.target]
        else:
            continue
        found += [t.id for t in targets if isinstance(t, ast.Name)
                  and t.id.lstrip("_").isupper() and t.id != "__all__"]
    return found


# A constant a test swaps for another value, which compiled code must see.
SWAPPED_BY_TESTS = {"hybrid.protocol.flood": {"STREAMS_PER_CONNECTION"}}


@pytest.mark.parametrize("module", native.COMPILED)
def test_a_compiled_modules_constants_are_final(module):
    # mypyc keeps a Final name in a C static (an int one inlined); any other
    # module-level name is looked up in the module's dict at every use.
    path = native.module_path(module, str(ROOT / "hybrid"), str(ROOT / "workers")) + ".py"
    unfinal = set(_unfinal_constants(Path(path).read_text())) - SWAPPED_BY_TESTS.get(module, set())
    assert not unfinal, f"{module}: make these Final: {sorted(unfinal)}"
