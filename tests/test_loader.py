"""Finding the app and telling WSGI from ASGI (in-process)."""

from __future__ import annotations

import pytest

from hybrid.loader import AppLoadError, detect_interface, load_app
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
