"""What a user installs: the wheel, its one top-level name, and a project of
the user's own that has a `workers` package (as Celery projects often do)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hybrid.native import MANIFEST, NO_EXTENSIONS
from tests.conftest import ROOT, Server, free_port, wait_for

# A wheel takes seconds to build, but its isolated build environment is installed
# first (the fixture's time counts in the first test).
pytestmark = pytest.mark.timeout(300)

CLASSES_AND_APPS = [("sync", "wsgi_app:app"), ("thread", "wsgi_app:app"), ("asgi", "asgi_app:app")]


def build_wheel(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Path:
    # Built from a copy of the sources: a build/ folder or compiled modules left
    # in the checkout by an earlier build would slip into the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("hybrid", "workers"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", MANIFEST))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(source)], check=True, timeout=400, env={**os.environ, **env})
    (built,) = out.glob("hybrid_server-*.whl")
    return built


def _unpacked_elsewhere(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed alone into a folder of its own (pip places a wheel's
    .data folders, which unzipping would not)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(target), str(wheel)], check=True, timeout=120)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, interpreted (HYBRID_NO_EXTENSIONS=1): the same files, built in
    seconds. The compiled wheel is what the image installs: its build stage
    fails unless that wheel runs compiled (deploy/Dockerfile, tests/test_container.py)."""
    return build_wheel(tmp_path_factory, **{NO_EXTENSIONS: "1"})


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unpacked_elsewhere(wheel, tmp_path_factory)


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A project with its own `workers` package, imported by its app."""
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / "__init__.py").write_text("")
    (tmp_path / "workers" / "tasks.py").write_text("def job():\n    return b'job done'\n")
    (tmp_path / "wsgi_app.py").write_text(
        "from workers.tasks import job\n\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [job()]\n")
    (tmp_path / "asgi_app.py").write_text(
        "from workers.tasks import job\n\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': job()})\n")
    return tmp_path


def _top_level_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(".dist-info/top_level.txt")]
        return archive.read(path).decode().split()


def _modules_in(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if n.endswith(".py")}


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    assert _top_level_names(wheel) == ["hybrid"]


def test_the_wheel_carries_every_module_of_the_source_tree(wheel: Path) -> None:
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "hybrid").rglob("*.py")}
    expected |= {"hybrid/workers/" + str(p.relative_to(ROOT / "workers"))
                 for p in (ROOT / "workers").rglob("*.py")}
    assert _modules_in(wheel) == expected


def test_the_wheel_carries_the_cython_pieces_source_and_stub(wheel: Path) -> None:
    # (hybrid.native hashes the source to know the extension fresh; the stub types it)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"hybrid/protocol/whole_head.pyx", "hybrid/protocol/whole_head.pyi"} <= names


def _build_of(unpacked: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import hybrid.native as n; print(n.build().describe())"],
        env={"PYTHONPATH": str(unpacked)}, cwd=unpacked, capture_output=True, text=True,
        timeout=60, check=True)
    assert done.stderr == ""
    return done.stdout.strip()


def _extensions_in(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n.split(".")[0].replace("/", ".") for n in archive.namelist()
                if n.endswith(".so") or n.endswith(".pyd")}


def test_a_wheel_built_without_extensions_is_the_interpreted_build(
        wheel: Path, unpacked: Path) -> None:
    assert _extensions_in(wheel) == set()
    assert _build_of(unpacked) == "interpreted (no compiled modules are installed)"


def test_a_wheel_built_without_a_compiler_installs_the_interpreted_build_and_says_why(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    interpreted = build_wheel(tmp_path_factory, **{NO_EXTENSIONS: "", "CC": "/no/such/cc"})
    assert _extensions_in(interpreted) == set()
    build = _build_of(_unpacked_elsewhere(interpreted, tmp_path_factory))
    assert build == "interpreted (the compile failed at install: no C compiler: /no/such/cc " \
                    "is not found)"


def test_the_worker_classes_import_as_hybrid_workers_from_the_wheel(unpacked: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import hybrid.workers.sync, hybrid.workers.thread, "
         "hybrid.workers.asgi as m; print(m.__file__)"],
        env={"PYTHONPATH": str(unpacked)}, cwd=unpacked, capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(unpacked / "hybrid" / "workers"))


@pytest.fixture
def served(user_project: Path, unpacked: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("worker_class,app", CLASSES_AND_APPS)
def test_a_project_with_its_own_workers_package_boots_and_serves(
        user_project: Path, unpacked: Path, served: list[Server], worker_class: str,
        app: str) -> None:
    port = free_port()
    # Only the unpacked wheel on the path: nothing of the repository's layout.
    server = Server([app, "-k", worker_class, "--bind", f"127.0.0.1:{port}"], user_project,
                    {"PYTHONPATH": str(unpacked)}, port)
    served.append(server)
    wait_for(server.accepts, message="the server to accept connections")
    # (The worker may still be importing: nothing of the unpacked wheel is compiled yet.)
    assert httpx.get(server.url, timeout=30).text == "job done", server.log()
