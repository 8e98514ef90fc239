"""The documentation: the mkdocs site builds with no warning, and every code
block in it and in the README is what it claims to be. Python is compiled
(and the app examples are served), shell lines pass `bash -n` as printed,
the Kubernetes pod spec passes kubernetes-validate, the systemd unit parses,
and the nginx server block is balanced; every `hybrid run` line is given
to `hybrid check` as printed, against apps of the names it uses. (The
generated pages, settings.md and migrating.md, are test_docs.py's.)"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import trustme
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
GENERATED = {"settings.md", "migrating.md", "changelog.md"}
KUBERNETES_VERSION = "1.30.0"
FENCED = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def blocks(page: Path) -> list[tuple[str, str]]:
    """A page's code blocks as (language, text): fenced ones with their language,
    indented ones (four spaces, after a blank line) as "shell"."""
    text = page.read_text()
    found = [(language, code) for language, code in FENCED.findall(text)]
    prose = FENCED.sub("", text)
    for chunk in re.findall(r"(?:^\n)((?:^    .*\n|^\n)+)", prose, re.M):
        lines = [line[4:] for line in chunk.splitlines() if line.strip()]
        if lines and not lines[0].lstrip().startswith(("*", "-")):
            found.append(("shell", "\n".join(lines) + "\n"))
    return found


def every_block(language: str) -> list[tuple[str, str]]:
    return [(f"{page.name}: {code.splitlines()[0][:60]}", code)
            for page in PAGES if page.name not in GENERATED
            for lang, code in blocks(page) if lang == language]


def test_the_site_builds_with_no_warning(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("where, code", every_block("python"))
def test_python_blocks_compile(where, code):
    compile(code, where, "exec")


@pytest.mark.parametrize("where, code", every_block("shell"))
def test_shell_lines_are_valid_as_printed(where, code):
    done = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("where, code", every_block("yaml"))
def test_kubernetes_yaml_is_a_valid_pod_spec(where, code):
    spec = yaml.safe_load(code)
    if "containers" in spec:  # (a pod's spec, as the page shows one)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("where, code", every_block("ini"))
def test_systemd_units_parse(where, code):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(code)
    assert unit.has_section("Service")


@pytest.mark.parametrize("where, code", every_block("nginx"))
def test_nginx_blocks_are_balanced(where, code):
    depth = 0
    for character in code:
        depth += {"{": 1, "}": -1}.get(character, 0)
        assert depth >= 0
    assert depth == 0
    statements = [line.strip() for line in code.splitlines()
                  if line.strip() and not line.strip().endswith(("{", "}"))]
    assert all(statement.endswith(";") for statement in statements)


def readme_example(name: str) -> str:
    """The README's Python example that defines `app` with `name` (Flask or FastAPI)."""
    return next(code for language, code in blocks(ROOT / "README.md")
                if language == "python" and name in code)


@pytest.mark.parametrize("framework, module, expected", [
    ("Flask", "app", "hello"),
    ("FastAPI", "main", '{"hello":"world"}'),
])
def test_the_readmes_apps_serve_as_it_says(start_server, tmp_path, framework, module,
                                           expected):
    if not _importable(framework.lower()):
        pytest.skip(f"{framework} is not installed")
    (tmp_path / f"{module}.py").write_text(readme_example(framework))
    server = start_server(f"{module}:app", "-w", "1")
    assert httpx.get(server.url + "/", timeout=10).text == expected


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


# --- the `hybrid run` command lines, as printed ----------------------------------------

STUB_APPS = {
    "app.py": "def app(environ, start_response):\n"
              "    start_response('200 OK', [])\n    return [b'hello']\n\n\n"
              "def create_app():\n    return app\n",
    "main.py": "async def app(scope, receive, send):\n    pass\n",
    "mysite/__init__.py": "",
    "mysite/wsgi.py": "from app import app as application\n",
    "mysite/asgi.py": "from main import app as application\n",
    "myproject/__init__.py": "",
    "myproject/wsgi.py": "from app import app as application\n",
}


def hybrid_run_lines() -> list[tuple[str, list[str]]]:
    """Every `hybrid run` command line of the docs and the README, as its words."""
    found = []
    for page in PAGES:
        for language, code in blocks(page):
            if language != "shell":
                continue
            for line in code.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:2] == ["hybrid", "run"]:
                    found.append((f"{page.name}: {line.strip()[:70]}", words))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Apps under the names the docs use, and the certificate files they name."""
    directory = tmp_path_factory.mktemp("docs")
    for name, text in STUB_APPS.items():
        (directory / name).parent.mkdir(exist_ok=True)
        (directory / name).write_text(text)
    ca = trustme.CA()
    issued = ca.issue_cert("localhost")
    issued.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    issued.private_key_pem.write_to_path(str(directory / "key.pem"))
    ca.cert_pem.write_to_path(str(directory / "clients-ca.pem"))
    return directory


@pytest.mark.parametrize("where, words", hybrid_run_lines())
def test_every_hybrid_run_line_is_accepted_as_printed(workdir, where, words):
    """`hybrid check` with the line's own flags: the app imports and every
    setting is valid, as `hybrid run` would find them."""
    done = subprocess.run([sys.executable, "-m", "hybrid", "check", *words[2:]], cwd=workdir,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
