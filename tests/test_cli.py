"""`hybrid run` and `hybrid check` as a user meets them: exit statuses and
one-line errors, app references, config files and their precedence."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import psutil
import pytest

import hybrid
from hybrid import config, logs, validators
from hybrid.cli import build_parser
from hybrid.config import SETTINGS
from hybrid.workers import load_class
from tests.conftest import child_env, free_port, run_hybrid, wait_for

APP = "tests.apps.basic:app"


# --- an app that cannot be served ----------------------------------------------

def test_missing_module_is_one_line_and_exit_3(tmp_path):
    result = run_hybrid("run", "nosuch_module:app", "-b", f"127.0.0.1:{free_port()}", "-w", "3",
                        cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("no module named 'nosuch_module'") == 1
    assert "Traceback" not in result.stderr


def test_syntax_error_in_the_app_is_one_line_and_exit_3(tmp_path):
    (tmp_path / "broken.py").write_text("def app(environ, start_response)\n    return []\n")
    result = run_hybrid("run", "broken:app", "-b", f"127.0.0.1:{free_port()}", "-w", "2",
                        cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("SyntaxError") == 1
    assert "broken.py, line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_exception_at_import_names_the_line(tmp_path):
    (tmp_path / "raising.py").write_text("import os\nraise RuntimeError('no database')\n")
    result = run_hybrid("run", "raising:app", "-b", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 3
    assert "RuntimeError: no database" in result.stderr
    assert "raising.py, line 2" in result.stderr


def test_an_app_that_fails_to_import_shows_its_traceback_under_the_summary(tmp_path):
    (tmp_path / "badjson.py").write_text("import json\nsettings = json.loads('{bad')\n")
    result = run_hybrid("run", "badjson:app", "-b", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    summary = next(i for i, line in enumerate(lines) if "Worker failed to boot" in line)
    # The line names the app's own line that failed, not json's, where it raised.
    assert lines[summary].endswith(f"importing 'badjson' failed: JSONDecodeError: Expecting "
                                   f"property name enclosed in double quotes: line 1 column 2 "
                                   f"(char 1) ({tmp_path / 'badjson.py'}, line 2)")
    assert lines[summary + 1:summary + 3] == [
        "Traceback (most recent call last):",
        f'  File "{tmp_path / "badjson.py"}", line 2, in <module>']
    assert "json.decoder.JSONDecodeError: Expecting property name" in result.stderr
    hybrids = os.path.dirname(hybrid.__file__)
    assert not [line for line in lines if line.startswith("  File") and hybrids in line]
    assert "importlib" not in result.stderr


@pytest.mark.parametrize("flags", [[], ["--preload"]])
def test_a_keyboard_interrupt_raised_by_the_apps_import_is_a_boot_failure(tmp_path, flags):
    (tmp_path / "interrupts.py").write_text("import os\nraise KeyboardInterrupt\n")
    result = run_hybrid("run", "interrupts:app", "-b", f"127.0.0.1:{free_port()}", *flags,
                        cwd=tmp_path)
    assert result.returncode == 3
    assert (f"importing 'interrupts' failed: KeyboardInterrupt ({tmp_path / 'interrupts.py'}, "
            f"line 2)\nTraceback (most recent call last):\n  File ") in result.stderr
    assert result.stderr.count("Traceback") == 1 and "importlib" not in result.stderr


def test_int_while_the_arbiter_preloads_the_app_stops_it_as_int_does(tmp_path):
    (tmp_path / "slowapp.py").write_text("import pathlib, time\npathlib.Path('importing').touch()\n"
                                         "time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-m", "hybrid", "run", "slowapp:app", "--preload",
                             "-b", f"127.0.0.1:{free_port()}"], cwd=tmp_path, env=child_env(None),
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "importing").exists(), message="the import to begin")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Received INT while importing the app: stopping" in err
        assert "Traceback" not in err
    finally:
        proc.kill()


def test_missing_attribute_is_reported(tmp_path):
    result = run_hybrid("run", "tests.apps.basic:nope", "-b", f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert "has no attribute 'nope'" in result.stderr


def test_non_callable_app_is_reported():
    result = run_hybrid("run", "tests.apps.basic:not_callable", "-b", f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert "not an application" in result.stderr


def test_asgi_app_on_the_sync_worker_is_refused_with_the_reason():
    result = run_hybrid("run", "tests.apps.asgi_app:app", "-k", "sync", "-b",
                        f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert ("'tests.apps.asgi_app:app' is an ASGI app; the 'sync' worker class serves WSGI only: "
            "use -k asgi") in result.stderr


def test_a_forced_interface_is_named_as_forced():
    result = run_hybrid("run", "tests.apps.basic:app", "-k", "sync", "--interface", "asgi",
                        "-b", f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert ("--interface asgi serves 'tests.apps.basic:app' as ASGI; the 'sync' worker class "
            "serves WSGI only: leave --interface out, or use -k asgi") in result.stderr


def test_a_setting_the_class_does_not_read_is_warned_about():
    result = run_hybrid("check", APP, "-k", "sync", "--worker-connections", "5")
    assert result.stdout.splitlines()[0] == (
        "warning: --worker-connections (from command line) is ignored: the 'sync' worker class "
        "does not use it (-k thread and -k asgi use it)")


@pytest.mark.parametrize("flags", [[], ["--preload"]])
def test_without_k_an_asgi_app_gets_the_asgi_class(start_server, flags):
    server = start_server("tests.apps.asgi_basic:app", *flags)
    assert httpx.get(server.url + "/", timeout=10).text == "hello"
    wait_for(lambda: "booted (asgi)" in server.log(), message="an asgi worker")
    assert "Using worker class: auto (sync for a WSGI app, asgi for an ASGI app" in server.log()


def test_without_k_a_wsgi_app_gets_the_sync_class(start_server):
    server = start_server(APP)
    assert httpx.get(server.url + "/", timeout=10).text == "hello"
    wait_for(lambda: "booted (sync)" in server.log(), message="a sync worker")


def test_without_k_a_term_during_the_import_stops_cleanly(tmp_path):
    (tmp_path / "slowapp.py").write_text("import time\ntime.sleep(1)\n"
                                         "def app(environ, start_response):\n    return []\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hybrid", "run", "slowapp:app", "-b",
                             f"127.0.0.1:{port}"], cwd=tmp_path, env=child_env(None),
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _count_children(proc.pid) == 1, message="a worker")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_without_k_an_int_during_the_import_stops_at_once(tmp_path):
    (tmp_path / "slowapp.py").write_text("import time\ntime.sleep(20)\n")
    proc = subprocess.Popen([sys.executable, "-m", "hybrid", "run", "slowapp:app", "-b",
                             f"127.0.0.1:{free_port()}"], cwd=tmp_path, env=child_env(None),
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _count_children(proc.pid) == 1, message="a worker")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "did not stop in time" not in err and "SIGKILL" not in err
    finally:
        proc.kill()


def test_without_k_what_the_app_starts_at_import_has_no_blocked_signals(start_server, tmp_path):
    (tmp_path / "spawner.py").write_text(
        "import subprocess\nchild = subprocess.Popen(['sleep', '60'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n    return [b'ok']\n")
    start_server("spawner:app")
    child = int(wait_for(lambda: (tmp_path / "child.pid").exists() and
                         (tmp_path / "child.pid").read_text(), message="the child's pid"))
    try:
        status = open(f"/proc/{child}/status").read()
        assert re.search(r"^SigBlk:\s*0+$", status, re.M), status
    finally:
        os.kill(child, signal.SIGKILL)


def _count_children(pid: int) -> int:
    return len(psutil.Process(pid).children())


def test_check_warns_when_the_class_cannot_serve_the_app():
    result = run_hybrid("check", "tests.apps.asgi_app:app", "-k", "sync")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].startswith(
        "warning: 'tests.apps.asgi_app:app' is an ASGI app; the 'sync' worker class serves")


def test_preload_failure_is_reported_by_the_arbiter(tmp_path):
    result = run_hybrid("run", "nosuch_module:app", "--preload", "-b", f"127.0.0.1:{free_port()}",
                        cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("no module named 'nosuch_module'") == 1


@pytest.mark.parametrize("code", ["0", "5"])
def test_an_app_that_exits_at_import_under_preload_is_one_line_and_exit_3(tmp_path, code):
    (tmp_path / "exits.py").write_text(f"import sys\nsys.exit({code})\n")
    result = run_hybrid("run", "exits:app", "--preload", "-b", f"127.0.0.1:{free_port()}",
                        cwd=tmp_path)
    assert result.returncode == 3
    assert (f"hybrid: error: app failed to load: the app called sys.exit({code}) while importing "
            f"'exits' ({tmp_path / 'exits.py'}, line 2)") in result.stderr


@pytest.mark.parametrize("worker_class", ["sync", "thread"])
def test_an_app_that_exits_at_import_is_named_once_after_one_fork(tmp_path, worker_class):
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    result = run_hybrid("run", "exits:app", "-k", worker_class, "-b", f"127.0.0.1:{free_port()}",
                        cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("Booting worker") == 1
    assert result.stderr.count("[ERROR]") == 1
    assert "Worker failed to boot: the app called sys.exit(0) while importing 'exits'" in result.stderr


def test_an_app_that_ends_its_process_at_import_is_named_once_after_one_fork(tmp_path):
    (tmp_path / "exits.py").write_text("import os\nos._exit(7)\n")
    result = run_hybrid("run", "exits:app", "-b", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("Booting worker") == 1
    assert ("Worker failed to boot: the worker died while loading the app (exit status 7)"
            in result.stderr)


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi", "auto"])
def test_an_app_slower_to_import_than_the_timeout_is_killed_and_named(tmp_path, worker_class):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    result = run_hybrid("run", "slow:app", "-k", worker_class, "-t", "2",
                        "-b", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 3
    assert "took longer than --timeout (2 s) to load the app; killing it" in result.stderr
    assert ("Worker failed to boot: the app took longer than --timeout (2 s) to load"
            in result.stderr)
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr


# --- sockets and settings ----------------------------------------------------------

def test_port_in_use_is_one_line_and_exit_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hybrid("run", APP, "-b", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hybrid: error: cannot bind 127.0.0.1:{port}: address already in use "
        "(is another server running?)"]


def test_unknown_worker_class_lists_the_known_ones(one_line_refusal):
    line = one_line_refusal("run", APP, "-k", "turbo")
    assert "unknown worker class 'turbo'" in line
    assert "sync" in line


@pytest.mark.parametrize("flags, expected", [
    (["-w", "zero"], "--workers: expected a whole number, got 'zero'"),
    (["-w", "0"], "--workers: must be at least 1"),
    (["-t", "-3"], "--timeout: must be zero or more seconds"),
    (["--log-level", "loud"], "--log-level: expected one of"),
    (["-b", "[::1"], "--bind: '[::1': expected [IPV6]:PORT"),
    (["-b", "host:http"], "--bind: 'host:http': port must be a number"),
    (["--root-path", "api"], "--root-path: must start with '/'"),
    (["--backlog", "99999999999"], "--backlog: must be at most 65535"),
    (["-t", "inf"], "--timeout: must be at most 1000000 seconds, got 'inf'"),
    (["-t", "1e10"], "--timeout: must be at most 1000000 seconds"),
    (["--graceful-timeout", "nan"], "--graceful-timeout: must be zero or more seconds"),
    (["-w", "100000"], "--workers: 100000 workers is more than this machine can use: it has"),
    (["-b", "127.0.0.1:9", "-b", "127.0.0.1:9"], "--bind: 127.0.0.1:9 is given more than once"),
    (["--threads", "1000000000"], "--threads: must be at most 1024, got 1000000000"),
    (["--limit-request-line", "99999999999999999999"],
     "--limit-request-line: must be at most 8190"),
    (["--access-logformat", "%("], "--access-logformat: incomplete format key in '%('"),
])
def test_bad_setting_is_one_line_and_exit_1(one_line_refusal, flags, expected):
    assert one_line_refusal("run", APP, *flags).startswith(f"hybrid: error: {expected}")


@pytest.mark.parametrize("name, expected", [
    ("os:path", "--worker-class: 'os:path' names a module, not a worker class"),
    ("collections:OrderedDict", "--worker-class: 'collections:OrderedDict' names a class, not a "
                                "worker class"),
])
def test_a_module_and_name_that_are_no_worker_class_are_refused(name, expected):
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}"):
        load_class(name)


# The refusals above, from a real process: the exit status and the one line on stderr
# are the process's, for a setting refused as the settings load and for one refused
# as the arbiter loads the worker class.
@pytest.mark.parametrize("flags, expected", [
    (["-w", "zero"], "--workers: expected a whole number, got 'zero'"),
    (["-k", "os:path"], "--worker-class: 'os:path' names a module, not a worker class"),
])
def test_a_real_process_refusing_a_setting_says_it_in_one_line_and_exits_1(flags, expected):
    result = run_hybrid("run", APP, *flags)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"hybrid: error: {expected}")


def test_bad_environment_value_names_the_variable(one_line_refusal):
    assert "(from env HYBRID_WORKERS)" in one_line_refusal("run", APP,
                                                           env={"HYBRID_WORKERS": "many"})


def test_missing_app_is_explained(one_line_refusal):
    assert "APP is missing" in one_line_refusal("run")


def test_help_lists_gunicorn_flags():
    result = run_hybrid("run", "--help")
    assert result.returncode == 0
    for flag in ("--bind", "--workers", "--worker-class", "--timeout", "--graceful-timeout",
                 "--backlog", "--log-level", "--access-logfile", "--access-logformat", "--pid",
                 "--preload", "--interface", "--factory", "--chdir", "--pythonpath",
                 "--root-path", "HYBRID_WORKERS"):
        assert flag in result.stdout


def test_help_states_the_bound_of_every_numeric_setting(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    bounded = [s.parse for s in SETTINGS.values() if isinstance(s.parse, validators.Bounded)]
    assert len(bounded) >= 25
    for parse in bounded:
        assert f"accepted: {parse.bounds}" in shown



def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "check"])
def test_help_groups_the_settings_by_section_in_the_settings_pages_order(capsys, command):
    titles = [line[:-1] for line in help_text(command, capsys).splitlines()
              if line[:-1] in config.SECTIONS and line.endswith(":")]
    assert titles == list(config.SECTIONS)


def test_help_lists_a_flag_under_its_section(capsys):
    shown = help_text("run", capsys)
    section = shown.index("\nConnections and responses:\n")
    following = shown.index("\nRequest limits and bodies:\n")
    assert section < shown.index("  --keep-alive SECONDS") < following


def test_help_lists_the_peers_flags_after_the_sections(capsys):
    shown = help_text("run", capsys)
    assert shown.index("\nServer mechanics:\n") < shown.index("\ngunicorn's and uvicorn's flags:\n") \
        < shown.index("  -D, --daemon")

# --- hybrid check ----------------------------------------------------------------

def settings_shown(stdout: str) -> dict[str, tuple[str, str]]:
    """`hybrid check` output as {name: (value, source)}."""
    shown = {}
    for line in stdout.splitlines():
        match = re.match(r"  (\w+) += (.*?) +\((.*)\)$", line)
        if match:
            shown[match[1]] = (match[2].strip(), match[3])
    return shown


def test_check_prints_interface_and_sources():
    result = run_hybrid("check", APP, "-w", "3", env={"HYBRID_TIMEOUT": "9"})
    assert result.returncode == 0, result.stderr
    assert "app: tests.apps.basic:app (wsgi, detected)" in result.stdout
    shown = settings_shown(result.stdout)
    assert shown["workers"] == ("3", "command line")
    assert shown["timeout"] == ("9.0", "env HYBRID_TIMEOUT")
    assert shown["backlog"] == ("2048", "default")


def test_check_detects_an_asgi_app():
    result = run_hybrid("check", "tests.apps.asgi_app:app")
    assert result.returncode == 0
    assert "(asgi, detected)" in result.stdout


def test_check_of_a_broken_app_exits_1_with_the_reason():
    result = run_hybrid("check", "nosuch_module:app")
    assert result.returncode == 1
    assert result.stderr.strip() == ("hybrid: error: cannot import 'nosuch_module': no module named "
                                     "'nosuch_module' (check APP, --chdir and --pythonpath)")


def test_config_precedence_is_file_then_env_then_command_line(tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text('workers = 2\ntimeout = 5\nbacklog = 100\nlog-level = "warning"\n')
    result = run_hybrid("check", APP, "-c", str(config), "--backlog", "300",
                        env={"HYBRID_TIMEOUT": "7", "HYBRID_BACKLOG": "200"})
    assert result.returncode == 0, result.stderr
    shown = settings_shown(result.stdout)
    assert shown["workers"] == ("2", f"file {config}")
    assert shown["timeout"] == ("7.0", "env HYBRID_TIMEOUT")
    assert shown["backlog"] == ("300", "command line")
    assert shown["log_level"] == ("warning", f"file {config}")


def test_python_config_file_is_read(tmp_path):
    config = tmp_path / "conf.py"
    config.write_text("import os\nworkers = 1 + 1\nhelper = 'ignored'\nbind = ['127.0.0.1:9999']\n")
    result = run_hybrid("check", APP, "-c", str(config))
    assert result.returncode == 0, result.stderr
    shown = settings_shown(result.stdout)
    assert shown["workers"] == ("2", f"file {config}")
    assert shown["bind"] == ("127.0.0.1:9999", f"file {config}")


def test_unknown_key_in_toml_file_is_an_error(one_line_refusal, tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("wrokers = 2\n")
    assert "unknown setting 'wrokers'" in one_line_refusal("check", APP, "-c", str(config))


@pytest.mark.parametrize("name, content, expected", [
    ("x.toml", b"workers = 2\n# caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 17)"),
    ("x.py", b"import sys\nsys.exit(5)\n", "called sys.exit(5); a config file only sets names"),
    ("x.py", b"import sys\nsys.exit(0)\n", "called sys.exit(0)"),
])
def test_a_broken_config_file_is_one_line_and_exit_1(one_line_refusal, tmp_path, name, content,
                                                     expected):
    config = tmp_path / name
    config.write_bytes(content)
    line = one_line_refusal("run", APP, "-c", str(config))
    assert line.startswith(f"hybrid: error: config file {str(config)!r} {expected}")


def test_a_config_path_that_is_a_directory_says_so(one_line_refusal, tmp_path):
    assert one_line_refusal("run", APP, "-c", str(tmp_path)) == (
        f"hybrid: error: config file {str(tmp_path)!r} is a directory; give the file in it")


def test_a_bad_platform_default_that_is_not_used_is_a_warning():
    result = run_hybrid("check", APP, "--bind", "127.0.0.1:9000", env={"PORT": "abc"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("warning: --bind: '0.0.0.0:abc': port must be a number")
    assert settings_shown(result.stdout)["bind"] == ("127.0.0.1:9000", "command line")


def test_a_bad_platform_default_that_is_used_is_an_error(one_line_refusal):
    assert "(from env PORT)" in one_line_refusal("run", APP, env={"PORT": "abc"})


def test_the_longest_timeout_accepted_serves(start_server):
    for worker_class in ("sync", "thread"):
        server = start_server(APP, "-k", worker_class, "-t", "1000000", "--keep-alive", "1000000")
        assert httpx.get(server.url + "/", timeout=10).text == "hello"


def test_a_setting_the_worker_class_does_not_use_is_a_warning_at_start_up(start_server):
    server = start_server(APP, "-k", "sync", "--lifespan", "on")
    wait_for(lambda: "booted" in server.log(), message="a booted worker")
    assert ("[WARNING] --lifespan (from command line) is ignored: the 'sync' worker class does "
            "not use it (-k asgi uses it)") in server.log()


def test_under_auto_a_setting_the_picked_class_does_not_use_is_a_warning(start_server):
    server = start_server(APP, "--lifespan", "on")
    wait_for(lambda: "booted (sync)" in server.log(), message="a sync worker")
    assert "--lifespan on is ignored: the 'sync' worker class does not use it" in server.log()


def test_settings_a_class_uses_or_nobody_gave_are_not_warned_about():
    result = run_hybrid("check", APP, "-k", "thread", "--keep-alive", "3", "--threads", "2")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout


def test_check_names_each_setting_the_class_ignores(tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("loop = 'asyncio'\n")
    result = run_hybrid("check", APP, "-k", "thread", "-c", str(config))
    assert result.stdout.splitlines()[0] == (
        f"warning: --loop (from file {config}) is ignored: the 'thread' worker class does not "
        f"use it (-k asgi uses it)")


def test_platform_port_and_concurrency_set_defaults():
    result = run_hybrid("check", APP, env={"PORT": "5005", "WEB_CONCURRENCY": "4"})
    shown = settings_shown(result.stdout)
    assert shown["bind"] == ("0.0.0.0:5005", "env PORT")
    assert shown["workers"] == ("4", "env WEB_CONCURRENCY")


def test_config_file_wins_over_platform_defaults(tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("workers = 3\n")
    result = run_hybrid("check", APP, "-c", str(config), env={"WEB_CONCURRENCY": "8"})
    assert settings_shown(result.stdout)["workers"] == ("3", f"file {config}")


# --- serving with these settings ------------------------------------------------------

@pytest.mark.parametrize("spec, flags", [
    ("tests.apps.basic:create_app()", []),
    ("tests.apps.basic:create_app", ["--factory"]),
    ("tests.apps.basic:holder.wsgi", []),
])
def test_app_reference_forms(start_server, spec, flags):
    server = start_server(spec, *flags)
    assert httpx.get(server.url + "/", timeout=10).text == "hello"


def test_config_file_workers_are_started(start_server, tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("workers = 3\n")
    server = start_server(APP, "-c", str(config))
    server.wait_workers(3)


def test_chdir_and_pythonpath_find_the_app(start_server, tmp_path):
    appdir = tmp_path / "site"
    appdir.mkdir()
    (appdir / "siteapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'from chdir']\n")
    server = start_server("siteapp:app", "--chdir", str(appdir))
    assert httpx.get(server.url, timeout=10).text == "from chdir"
    other = start_server("siteapp:app", "--pythonpath", str(appdir))
    assert httpx.get(other.url, timeout=10).text == "from chdir"


def test_access_log_has_one_line_per_request(start_server):
    server = start_server(APP, "--access-logfile", "-")
    httpx.get(server.url + "/stream?n=2", headers={"User-Agent": "spec-agent"}, timeout=10)
    line = wait_for(lambda: next((l for l in server.log().splitlines() if "spec-agent" in l), None),
                    message="the access log line")
    assert '"GET /stream?n=2 HTTP/1.1" 200 16' in line
    assert line.startswith("127.0.0.1 ")
    assert line.endswith('"spec-agent"')  # gunicorn's default line: nothing after the agent


def test_an_access_log_that_cannot_be_opened_is_refused_before_the_logs_change(tmp_path):
    # (`hybrid run` says it in one line and exits 1, as any refusal from the arbiter's
    # side: test_a_real_process_refusing_a_setting_says_it_in_one_line_and_exits_1.)
    with pytest.raises(logs.LogFileError) as refused:
        logs.setup("info", "-", str(tmp_path / "no" / "a.log"))
    assert str(refused.value) == (f"--access-logfile: cannot write to "
                                  f"{str(tmp_path / 'no' / 'a.log')!r}: No such file or directory")


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_an_access_log_lost_after_start_is_reported_once_and_serving_goes_on(
        start_server, tmp_path, worker_class):
    logs = tmp_path / "logs"
    logs.mkdir()
    server = start_server("tests.apps.asgi_basic:app" if worker_class == "asgi" else APP,
                          "-k", worker_class, "--access-logfile", str(logs / "access.log"))
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    (logs / "access.log").unlink()
    logs.rmdir()
    server.send(signal.SIGUSR1)  # reopen: the directory is gone

    def served_and_reported() -> bool:
        raw = b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while chunk := sock.recv(65536):  # the server closes after the second
                raw += chunk
        expected = 1 if worker_class == "sync" else 2  # (sync answers one per connection)
        assert raw.count(b"HTTP/1.1 200 ") == expected
        return "Cannot write the access log" in server.log()

    # (The arbiter passes USR1 on to the worker: its reopen comes a moment later.)
    wait_for(served_and_reported, message="the lost access log reported")
    for _ in range(2):
        served_and_reported()
    log = server.log()
    assert log.count("Cannot write the access log") == 1
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_custom_access_log_format(start_server):
    server = start_server(APP, "--access-logfile", "-", "--access-logformat",
                          "method=%(m)s path=%(U)s status=%(s)s agent=%({user-agent}i)s")
    httpx.get(server.url + "/", headers={"User-Agent": "fmt-agent"}, timeout=10)
    wait_for(lambda: "method=GET path=/ status=200 agent=fmt-agent" in server.log(),
             message="the formatted line")


def test_reload_with_a_broken_app_keeps_the_old_workers(start_server, tmp_path):
    (tmp_path / "editable.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'version 1']\n")
    server = start_server("editable:app", "-w", "2")
    old = server.wait_workers(2)
    (tmp_path / "editable.py").write_text("this is not python\n")
    server.send(signal.SIGHUP)
    wait_for(lambda: "Reload failed" in server.log(), message="the reload to fail")
    assert old <= server.worker_pids()
    assert httpx.get(server.url, timeout=10).text == "version 1"


def test_broken_code_on_disk_is_retried_with_backoff_not_a_fork_storm(start_server, tmp_path):
    (tmp_path / "fragile.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'still here']\n")
    server = start_server("fragile:app", "-w", "2")
    first, second = sorted(server.wait_workers(2))
    (tmp_path / "fragile.py").write_text("def app(:\n")
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: "Next worker boot attempt in 2 s" in server.log(), message="a second retry")
    assert server.log().count("A new worker failed to boot") == 1  # the reason, once
    assert server.log().count("Booting worker") <= 4
    assert second in server.worker_pids()
    assert httpx.get(server.url, timeout=10).text == "still here"


def test_reload_with_a_relative_config_path_after_chdir(start_server, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "hybrid.toml").write_text("workers = 1\n")
    server = start_server(APP, "-c", "hybrid.toml", "--chdir", str(site))
    server.wait_workers(1)
    (tmp_path / "hybrid.toml").write_text("workers = 2\n")
    server.send(signal.SIGHUP)
    server.wait_workers(2)


def test_unix_socket_in_use_is_refused_and_left_alone(start_server, tmp_path):
    path = tmp_path / "busy.sock"
    first = start_server(APP, "--bind", f"unix:{path}", ready=False)
    wait_for(path.exists, message="the unix socket")
    result = run_hybrid("run", APP, "--bind", f"unix:{path}")
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert path.exists()
    assert first.accepts()


def test_inherited_socket_file_is_not_removed_at_exit(tmp_path):
    path = tmp_path / "inherited.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    fd = listener.fileno()
    proc = subprocess.Popen([sys.executable, "-m", "hybrid", "run", APP, "--bind", f"fd://{fd}"],
                            pass_fds=[fd], env=child_env(None), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://localhost", timeout=10) as http:
            wait_for(lambda: _get_text(http) == "hello", message="a response over the fd")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        listener.close()
    assert path.exists()


def _get_text(http: httpx.Client) -> str | None:
    try:
        return http.get("/").text
    except httpx.HTTPError:
        return None


def test_reload_picks_up_new_code(start_server, tmp_path):
    source = ("def app(environ, start_response):\n"
              "    start_response('200 OK', [])\n"
              "    return [b'version %d']\n")
    (tmp_path / "editable2.py").write_text(source % 1)
    server = start_server("editable2:app", "-w", "1")
    server.wait_workers(1)
    (tmp_path / "editable2.py").write_text(source % 2)
    server.send(signal.SIGHUP)
    wait_for(lambda: httpx.get(server.url, timeout=10).text == "version 2", message="new code")


def test_reload_rereads_the_config_file(start_server, tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("workers = 1\n")
    server = start_server(APP, "-c", str(config))
    server.wait_workers(1)
    config.write_text("workers = 3\n")
    server.send(signal.SIGHUP)
    server.wait_workers(3)


def test_quick_reloads_converge_on_the_last_config(start_server, tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("workers = 1\n")
    server = start_server(APP, "-c", str(config))
    server.wait_workers(1)
    # Five HUPs, each after a new config, no waiting; the signals may coalesce.
    # Only the last config makes 8 workers: the older pools together are at most
    # 7, and a pool is forked whole, so 8 live and booted workers are the last pool.
    for workers in (2, 1, 2, 1, 8):
        config.write_text(f"workers = {workers}\n")
        server.send(signal.SIGHUP)
    server.wait_workers(8)


@pytest.mark.parametrize("target", ["-", "/dev/full"])
@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_logs_that_cannot_be_written_lose_lines_not_requests(tmp_path, worker_class, target):
    port = free_port()
    app = "tests.apps.asgi_basic:app" if worker_class == "asgi" else APP
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC, stderr's too
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybrid", "run", app, "-k", worker_class, "--bind",
             f"127.0.0.1:{port}", "--access-logfile", target, "--error-logfile", target],
            cwd=tmp_path, env=child_env(None), stdout=full, stderr=full)
    try:
        wait_for(lambda: _served(port), message="the server to serve")
        raw = b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while chunk := sock.recv(65536):
                raw += chunk
        assert raw.count(b"HTTP/1.1 200 ") == (1 if worker_class == "sync" else 2)
        proc.send_signal(signal.SIGTTIN)  # the arbiter logs it: it must live on
        wait_for(lambda: len(psutil.Process(proc.pid).children()) == 2, message="a second worker")
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def _served(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_reload_under_preload_to_a_class_that_cannot_serve_the_app_is_refused(
        start_server, tmp_path):
    config = tmp_path / "hybrid.toml"
    config.write_text("workers = 1\n")
    server = start_server("tests.apps.asgi_basic:app", "--preload", "-c", str(config))
    server.wait_workers(1)
    config.write_text("workers = 1\nworker_class = 'sync'\n")
    server.send(signal.SIGHUP)
    wait_for(lambda: "Reload aborted" in server.log(), message="the refusal")
    assert ("Reload aborted, keeping the running workers: 'tests.apps.asgi_basic:app' is an "
            "ASGI app; the 'sync' worker class serves WSGI only: use -k asgi") in server.log()
    assert httpx.get(server.url + "/", timeout=10).text == "hello"


@pytest.mark.parametrize(("spelling", "ours", "app"), [
    ("uvicorn.workers.UvicornWorker", "asgi", "tests.apps.asgi_basic:app"),
    ("uvicorn_worker.UvicornWorker", "asgi", "tests.apps.asgi_basic:app"),
    ("gunicorn.workers.gthread.ThreadWorker", "thread", APP),
    ("egg:gunicorn#sync", "sync", APP),
])
def test_gunicorn_worker_class_spellings_select_ours(start_server, spelling, ours, app):
    server = start_server(app, "-k", spelling)
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    assert (f"Using worker class: {ours} (given as {spelling}: hybrid's own class in its "
            f"place)") in server.log()


@pytest.mark.parametrize("spelling", ["gevent", "eventlet", "gunicorn.workers.ggevent.GeventWorker"])
def test_green_thread_worker_classes_are_refused_with_what_to_use(one_line_refusal, spelling):
    assert one_line_refusal("run", APP, "-k", spelling) == (
        f"hybrid: error: --worker-class: hybrid has no {spelling!r} worker: for many concurrent "
        f"connections use -k thread (WSGI, keep-alive, a pool of --threads) or -k asgi (an event "
        f"loop; a WSGI app runs on its --threads pool)")
