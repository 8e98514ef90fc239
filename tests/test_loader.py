"""Finding the app and telling WSGI from ASGI, and what a user sees when the
app's own code fails (in-process)."""

from __future__ import annotations

import asyncio

import sys

import pytest

from hybrid.loader import AppLoadError, Interrupted, detect_interface, load_app
from hybrid.workers.asgi.lifespan import Lifespan
from tests.apps import basic


@pytest.mark.parametrize("spec, factory", [
    ("tests.apps.basic:app", False),
    ("tests.apps.basic:holder.wsgi", False),
    ("tests.apps.basic:create_app()", False),
    ("tests.apps.basic:create_app", True),
])
def test_app_reference_forms(spec, factory):
    assert load_app(spec, factory=factory) is basic.app


@pytest.mark.parametrize("spec, message", [
    ("tests.apps.basic", "must look like 'module:attribute'"),
    ("tests.apps.basic:", "must look like 'module:attribute'"),
    ("tests.apps.basic:1x", "is not an attribute name"),
    ("tests.apps.basic:create_app(x=1)", "only 'factory()'"),
    ("tests.apps.basic:create_app(os.getcwd())", "must be literals"),
    ("tests.apps.nosuch:app", "no module named 'tests.apps.nosuch'"),
    ("tests.apps.basic:missing", "has no attribute 'missing'"),
    ("tests.apps.basic:not_callable", "not an application"),
    ("tests.apps.basic:app()", "factory 'app' failed: TypeError"),
])
def test_bad_references_say_why(spec, message):
    with pytest.raises(AppLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_app(spec)


def test_a_missing_dependency_inside_the_app_is_not_blamed_on_app(tmp_path, monkeypatch):
    (tmp_path / "needs_dep.py").write_text("import not_installed_dependency\napp = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AppLoadError, match="importing 'needs_dep' failed: No module named"):
        load_app("needs_dep:app")


def _wsgi(environ, start_response):
    return []


async def _asgi(scope, receive, send):
    pass


class _AsgiClass:
    async def __call__(self, scope, receive, send):
        pass


class _ThreeArgs:
    def __call__(self, scope, receive, send):
        return _asgi(scope, receive, send)


@pytest.mark.parametrize("app, interface", [
    (_wsgi, "wsgi"), (_asgi, "asgi"), (_AsgiClass(), "asgi"), (_ThreeArgs(), "asgi"),
    (basic.app, "wsgi"),
])
def test_interface_detection(app, interface):
    assert detect_interface(app) == interface


def test_flask_app_is_wsgi():
    from tests.apps.flask_app import app

    assert detect_interface(app) == "wsgi"


# --- what a user sees when the app's own code fails ----------------------------------

def write_module(tmp_path, monkeypatch, name, source):
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / f"{name}.py"


def test_an_import_failure_names_the_apps_line_not_the_librarys(tmp_path, monkeypatch):
    path = write_module(tmp_path, monkeypatch, "reads_settings",
                        "import json\nsettings = json.loads('{bad')\n")
    with pytest.raises(AppLoadError) as failed:
        load_app("reads_settings:app")
    summary = str(failed.value).splitlines()[0]
    assert summary.startswith("importing 'reads_settings' failed: JSONDecodeError: ")
    assert summary.endswith(f" ({path}, line 2)")


def test_an_import_failure_carries_the_apps_traceback_from_its_first_frame(tmp_path, monkeypatch):
    path = write_module(tmp_path, monkeypatch, "fails_deeper",
                        "import json\nsettings = json.loads('{bad')\n")
    with pytest.raises(AppLoadError) as failed:
        load_app("fails_deeper:app")
    _, traceback_lines = str(failed.value).split("\n", 1)
    lines = traceback_lines.splitlines()
    assert lines[:2] == ["Traceback (most recent call last):",
                         f'  File "{path}", line 2, in <module>']
    assert any("json/decoder.py" in line for line in lines)  # (the library's frames follow)
    assert lines[-1].startswith("json.decoder.JSONDecodeError: ")
    assert "hybrid/loader.py" not in traceback_lines and "importlib" not in traceback_lines


def test_a_factory_failure_carries_the_apps_traceback(tmp_path, monkeypatch):
    path = write_module(tmp_path, monkeypatch, "broken_factory",
                        "def make():\n    return {}['missing']\n")
    with pytest.raises(AppLoadError) as failed:
        load_app("broken_factory:make()")
    summary, shown = str(failed.value).split("\n", 1)
    assert summary == f"factory 'make' failed: KeyError: 'missing' ({path}, line 2)"
    assert shown.splitlines()[1] == f'  File "{path}", line 2, in make'


def test_a_base_exception_from_the_apps_import_is_a_load_failure(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "raises_base",
                 "class Stop(BaseException):\n    pass\n\nraise Stop('at import')\n")
    with pytest.raises(AppLoadError, match=r"^importing 'raises_base' failed: Stop: at import "):
        load_app("raises_base:app")


def test_the_servers_own_interrupt_passes_through_the_import(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "interrupted",
                 "from hybrid.loader import Interrupted\nraise Interrupted('INT')\n")
    with pytest.raises(Interrupted):
        load_app("interrupted:app")


def test_a_failed_lifespan_startup_carries_the_apps_traceback():
    async def app(scope, receive, send):
        await receive()
        {}["database"]

    failure = asyncio.run(Lifespan(app, "on").startup())
    summary, shown = failure.split("\n", 1)
    line = app.__code__.co_firstlineno + 2
    assert summary == f"ASGI lifespan startup raised KeyError: 'database' ({__file__}, line {line})"
    assert shown.splitlines()[:2] == ["Traceback (most recent call last):",
                                      f'  File "{__file__}", line {line}, in app']
    assert "lifespan.py" not in shown


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is Python 3.11's")
def test_an_exception_group_from_the_import_shows_its_members_tracebacks(tmp_path, monkeypatch):
    path = write_module(tmp_path, monkeypatch, "grouped",
                        "def fail():\n    raise ExceptionGroup('two', [ValueError('a'), "
                        "KeyError('b')])\ntry:\n    fail()\nexcept* ValueError as group:\n"
                        "    raise RuntimeError('startup') from group\n")
    with pytest.raises(AppLoadError) as failed:
        load_app("grouped:app")
    assert f'File "{path}", line 2, in fail' in str(failed.value)


def test_an_exception_whose_str_fails_is_still_named(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "bad_str",
                 "class Odd(Exception):\n    def __str__(self):\n        raise TypeError\n"
                 "raise Odd()\n")
    with pytest.raises(AppLoadError, match="importing 'bad_str' failed: Odd: "):
        load_app("bad_str:app")
