"""--reload: an edited module is served by new workers; a syntax error leaves
the old ones serving; --reload-include and --reload-dir widen what is watched."""

from __future__ import annotations

import httpx

from tests.conftest import run_hybrid, wait_for

APP_SOURCE = """\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{body!r}]
"""


def write_app(directory, body: bytes) -> None:
    (directory / "editable.py").write_text(APP_SOURCE.format(body=body))


def serves(server, text: str) -> bool:
    try:
        return httpx.get(server.url + "/", timeout=5).text == text
    except httpx.HTTPError:
        return False


def test_an_edited_module_is_served_after_the_reload(start_server, tmp_path):
    write_app(tmp_path, b"first version")
    server = start_server("editable:app", "--reload", "-k", "thread")
    assert serves(server, "first version")
    write_app(tmp_path, b"the second version")
    wait_for(lambda: serves(server, "the second version"), message="the new code")
    assert "Changed: editable.py; reloading (--reload)" in server.log()


def test_a_syntax_error_keeps_the_old_workers_serving_until_it_is_fixed(start_server, tmp_path):
    write_app(tmp_path, b"working")
    server = start_server("editable:app", "--reload", "-k", "sync")
    # (The listener accepts before the first worker has imported the app: broken
    # before that, the code never served, and the server stops as it should.)
    assert serves(server, "working")
    (tmp_path / "editable.py").write_text("def app(:\n")
    wait_for(lambda: "Reload failed" in server.log(), message="the failed reload")
    assert serves(server, "working")
    assert server.log().count("SyntaxError") == 1
    write_app(tmp_path, b"fixed at last")
    wait_for(lambda: serves(server, "fixed at last"), message="the fixed code")


def test_reload_include_watches_files_besides_python(start_server, tmp_path):
    (tmp_path / "page.txt").write_text("old page")
    (tmp_path / "paged.py").write_text(
        "import pathlib\n"
        "PAGE = (pathlib.Path(__file__).parent / 'page.txt').read_bytes()\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [PAGE]\n")
    server = start_server("paged:app", "--reload", "--reload-include", "*.txt")
    assert serves(server, "old page")
    (tmp_path / "page.txt").write_text("the new page")
    wait_for(lambda: serves(server, "the new page"), message="the reload")


def test_reload_dir_sets_what_is_watched(start_server, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    write_app(tmp_path, b"unchanged")
    server = start_server("editable:app", "--reload", "--reload-dir", str(watched))
    # (The watcher's first look is before this line: a file written sooner is no change.)
    wait_for(lambda: f"Watching for changes in {watched}" in server.log(), message="the watch")
    (watched / "other.py").write_text("X = 1\n")
    wait_for(lambda: "Changed: watched/other.py" in server.log(), message="the reload")


def test_reload_with_preload_is_refused_in_one_line(one_line_refusal):
    assert one_line_refusal("run", "tests.apps.basic:app", "--reload", "--preload") == (
        "hybrid: error: --reload cannot be used with --preload: the arbiter would keep the old "
        "code; drop one of them")


def test_reload_dir_without_reload_is_a_warning(tmp_path):
    result = run_hybrid("check", "tests.apps.basic:app", "--reload-dir", str(tmp_path))
    assert result.returncode == 0
    assert "--reload-dir (from command line) is ignored without --reload" in result.stdout


def test_a_broken_edit_before_the_first_worker_served_waits_for_it_instead_of_stopping(
        start_server, tmp_path):
    # The first worker takes a while to import the app; the edit comes meanwhile,
    # once it has read the source (it says so with a file: the listener is the
    # arbiter's, and accepts before the worker is forked).
    (tmp_path / "editable.py").write_text(
        "import pathlib, time\npathlib.Path(__file__).with_name('importing').touch()\n"
        "time.sleep(2)\n" + APP_SOURCE.format(body=b"slow to boot"))
    server = start_server("editable:app", "--reload", "-k", "sync")
    wait_for((tmp_path / "importing").exists, message="the first worker's import")
    (tmp_path / "editable.py").write_text("def app(:\n")
    wait_for(lambda: "Reload failed" in server.log(), message="the failed reload")
    wait_for(lambda: serves(server, "slow to boot"), message="the first worker")
    assert "Shutting down" not in server.log()
