"""`hybrid.run()`: the settings of the command line, by their table names, for
`if __name__ == "__main__":` scripts."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

import hybrid
from tests.conftest import child_env, free_port, wait_for

SCRIPT = """\
import hybrid

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the object"]

if __name__ == "__main__":
    hybrid.run({target}, {settings})
"""


def run_script(tmp_path, target: str, settings: str) -> subprocess.Popen[str]:
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT.format(target=target, settings=settings))
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=child_env(None),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def answers(port: int, path: str = "/") -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text
    except httpx.HTTPError:
        return None


def stopped(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    return proc.returncode, output


def finished(proc: subprocess.Popen[str]) -> tuple[int, str]:
    output = proc.communicate(timeout=30)[0]
    return proc.returncode, output


def test_an_import_string_is_served_with_settings_by_their_names(tmp_path):
    port = free_port()
    proc = run_script(tmp_path, '"tests.apps.basic:app"',
                      f'bind=["127.0.0.1:{port}"], workers=2, worker_class="thread"')
    try:
        wait_for(lambda: answers(port) == "hello", message="an answer")
    finally:
        code, output = stopped(proc)
    assert code == 0, output
    assert output.count("booted (thread)") == 2


def test_the_app_object_itself_is_served(tmp_path):
    port = free_port()
    proc = run_script(tmp_path, "app", f'bind="127.0.0.1:{port}", worker_class="sync"')
    try:
        wait_for(lambda: answers(port) == "from the object", message="an answer")
    finally:
        code, output = stopped(proc)
    assert code == 0, output


def test_a_bad_value_is_the_command_lines_one_line_and_exit_status(tmp_path):
    proc = run_script(tmp_path, '"tests.apps.basic:app"', 'workers="many"')
    code, output = finished(proc)
    assert code == 1
    assert output.strip() == ("hybrid: error: --workers: expected a whole number, got 'many' "
                              "(from hybrid.run())")


def test_reload_with_an_app_object_is_refused(tmp_path):
    proc = run_script(tmp_path, "app", "reload=True")
    code, output = finished(proc)
    assert code == 1
    assert "reload: give the app as an import string" in output


def test_a_name_that_is_no_setting_is_a_type_error():
    with pytest.raises(TypeError, match="no setting named wrokers"):
        hybrid.run("tests.apps.basic:app", wrokers=2)
