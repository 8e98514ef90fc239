"""`hybrid.run()`: the settings of the command line, by their table names or
by uvicorn.run()'s, for `if __name__ == "__main__":` scripts."""

from __future__ import annotations

import configparser
import logging
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import hybrid
from hybrid import cli, config, peers, sources
from hybrid.config import SETTINGS
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


# --- uvicorn.run()'s keywords (in-process: the Config hybrid.run() would serve with) ---------

UVICORN_RUN_KEYWORDS = """
host port uds fd loop http http2 ws ws_max_size ws_max_queue ws_ping_interval ws_ping_timeout
ws_per_message_deflate lifespan interface reload reload_dirs reload_includes reload_excludes
reload_delay workers env_file log_config log_level access_log proxy_headers server_header
date_header forwarded_allow_ips root_path limit_concurrency backlog limit_max_requests
limit_max_requests_jitter timeout_keep_alive timeout_graceful_shutdown
timeout_worker_healthcheck ssl_keyfile ssl_certfile ssl_keyfile_password ssl_version
ssl_cert_reqs ssl_ca_certs ssl_ciphers ssl_context_factory headers use_colors app_dir factory
h11_max_incomplete_event_size reset_contextvars
""".split()  # uvicorn.run()'s signature, uvicorn 0.55


@pytest.fixture
def served(monkeypatch):
    """What hybrid.run() would serve with, without serving: {"config", "notes"}."""
    seen = {}

    def launch(command, args, source="command line", app=None, notes=()):
        seen["config"] = sources.load(args, {}, source=source).config
        seen["notes"] = list(notes)
        return 0

    monkeypatch.setattr(cli, "_launch", launch)
    return seen


def from_command_line(*argv: str) -> config.Config:
    """The Config `hybrid run tests.apps.basic:app ARGV` serves with (no process)."""
    args = vars(cli.build_parser().parse_args(["run", "tests.apps.basic:app", *argv]))
    args.pop("command")
    translated, _, _ = peers.translate(args.pop("peer_flags", {}))
    return sources.load({**translated, **args}, {}).config


def test_uvicorns_host_and_port_are_served_as_the_bind(served):
    hybrid.run("tests.apps.basic:app", host="0.0.0.0", port=9001)
    assert served["config"].bind == ("0.0.0.0:9001",)


@pytest.mark.parametrize(("keywords", "argv"), [
    ({"port": 9001}, ["--port", "9001"]),
    ({"host": "::1", "port": 9001}, ["--host", "::1", "--port", "9001"]),
    ({"uds": Path("/tmp/app.sock")}, ["--uds", "/tmp/app.sock"]),
    ({"fd": 3}, ["--fd", "3"]),
    ({"workers": 3, "reload": False}, ["--workers", "3"]),
    ({"log_level": "warning"}, ["--log-level", "warning"]),
    ({"log_level": logging.WARNING}, ["--log-level", "warning"]),
    ({"log_level": 5}, ["--log-level", "trace"]),  # uvicorn's TRACE
    ({"log_level": 25}, ["--log-level", "warning"]),
    ({"access_log": True}, ["--access-log"]),
    ({"access_log": False}, ["--no-access-log"]),
    ({"proxy_headers": False}, ["--no-proxy-headers"]),
    ({"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.0/8", "::1"]},
     ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8,::1"]),
    ({"forwarded_allow_ips": "*"}, ["--forwarded-allow-ips", "*"]),
    ({"root_path": "/api", "lifespan": "off", "interface": "asgi3", "loop": "asyncio"},
     ["--root-path", "/api", "--lifespan", "off", "--interface", "asgi3", "--loop", "asyncio"]),
    ({"ssl_certfile": Path("c.pem"), "ssl_keyfile": "k.pem", "ssl_keyfile_password": "pw",
      "ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "ca.pem", "ssl_ciphers": "ECDHE",
      "ssl_version": ssl.PROTOCOL_TLS_SERVER},
     ["--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem", "--ssl-keyfile-password", "pw",
      "--ssl-cert-reqs", "2", "--ssl-ca-certs", "ca.pem", "--ssl-ciphers", "ECDHE",
      "--ssl-version", "17"]),
    ({"ws": "wsproto", "ws_max_size": 1024, "ws_ping_interval": None, "ws_ping_timeout": 5.0,
      "ws_per_message_deflate": False, "ws_max_queue": 32},
     ["--ws", "wsproto", "--ws-max-size", "1024", "--ws-ping-interval", "0",
      "--ws-ping-timeout", "5", "--ws-per-message-deflate", "false", "--ws-max-queue", "32"]),
    ({"timeout_keep_alive": 7, "timeout_graceful_shutdown": 9, "limit_concurrency": 10,
      "limit_max_requests": 100, "limit_max_requests_jitter": 10, "backlog": 64},
     ["--timeout-keep-alive", "7", "--timeout-graceful-shutdown", "9", "--limit-concurrency",
      "10", "--limit-max-requests", "100", "--limit-max-requests-jitter", "10",
      "--backlog", "64"]),
    ({"headers": [("X-Frame-Options", "DENY"), ("X-Served-By", "hybrid")]},
     ["--header", "X-Frame-Options:DENY", "--header", "X-Served-By: hybrid"]),
    ({"server_header": False, "date_header": False}, ["--no-server-header", "--no-date-header"]),
    ({"log_config": {"version": 1, "loggers": {}}},
     ["--log-config-dict", '{"version": 1, "loggers": {}}']),
    ({"log_config": Path("logging.ini")}, ["--log-config", "logging.ini"]),
    ({"http2": True}, ["--http2"]),
    ({"http": "zttp", "http2": True}, ["--http-protocols", "h2,h1", "--http2-cleartext",
                                       "prior-knowledge"]),
    ({"factory": True, "app_dir": "src", "env_file": Path(".env")},
     ["--factory", "--app-dir", "src", "--env-file", ".env"]),
    ({"reload": True, "reload_dirs": ["src", "lib"], "reload_includes": "*.html",
      "reload_delay": 0.25},
     ["--reload", "--reload-dir", "src", "--reload-dir", "lib", "--reload-include", "*.html",
      "--reload-delay", "0.25"]),
])
def test_a_uvicorn_keyword_means_what_uvicorns_flag_means_on_the_command_line(
        served, keywords, argv):
    hybrid.run("tests.apps.basic:app", **keywords)
    assert served["config"] == from_command_line(*argv)


def test_uvicorns_none_leaves_hybrids_default(served):
    hybrid.run("tests.apps.basic:app", workers=None, log_level=None, limit_concurrency=None,
               timeout_graceful_shutdown=None, forwarded_allow_ips=None, uds=None, fd=None,
               ssl_context_factory=None, use_colors=None)
    assert served["config"] == from_command_line()


def test_a_uvicorn_keyword_accepted_as_it_is_is_named_at_start(served):
    hybrid.run("tests.apps.basic:app", http="httptools", use_colors=False)
    assert [note.split(":")[0] for note in served["notes"]] == [
        "http (uvicorn.run()'s)", "use_colors (uvicorn.run()'s)"]


@pytest.mark.parametrize(("keywords", "why"), [
    ({"reload_excludes": ["*.tmp"]}, r"reload_excludes .*narrow --reload-dir"),
    ({"reset_contextvars": True}, r"reset_contextvars .*copy of the context"),
    ({"ssl_context_factory": lambda config, default: default()},
     r"ssl_context_factory: .*ssl_context\(config, default_ssl_context_factory\) hook"),
    ({"log_config": configparser.RawConfigParser()}, r"log_config .*not RawConfigParser"),
])
def test_a_uvicorn_keyword_with_no_meaning_here_is_a_type_error_saying_why(
        served, keywords, why):
    with pytest.raises(TypeError, match=why):
        hybrid.run("tests.apps.basic:app", **keywords)


def test_a_uvicorn_keyword_off_is_no_request():
    assert peers.run_settings({"http2": False, "reset_contextvars": False}) == ({}, [])


@pytest.mark.parametrize("keywords", [{"host": "0.0.0.0", "bind": "127.0.0.1:8000"},
                                      {"keep_alive": 5, "timeout_keep_alive": 7},
                                      {"access_log": True, "access_logfile": "a.log"}])
def test_two_names_for_one_setting_are_a_type_error(served, keywords):
    with pytest.raises(TypeError, match="which both set"):
        hybrid.run("tests.apps.basic:app", **keywords)


def test_a_name_only_uvicorns_config_takes_is_a_type_error():
    with pytest.raises(TypeError, match="no setting named timeout_notify"):
        hybrid.run("tests.apps.basic:app", timeout_notify=30)


def test_a_value_the_command_line_refuses_is_its_one_line_and_exit_2(served, capsys):
    with pytest.raises(SystemExit) as stopped:
        hybrid.run("tests.apps.basic:app", ws="none")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("hybrid: error: --ws none: ")


def test_every_keyword_of_uvicorn_run_has_a_meaning_here():
    assert set(UVICORN_RUN_KEYWORDS) == set(peers.RUN_KEYWORDS) | set(peers.RUN_REFUSED)


@pytest.mark.parametrize("name", sorted(peers.RUN_KEYWORDS))
def test_each_uvicorn_keyword_stands_for_a_flag_the_command_line_knows(name):
    cli_flags = set(peers.by_flag()) | {f for s in SETTINGS.values() for f in s.flags}
    assert set(peers.RUN_KEYWORDS[name].flags()) <= cli_flags
