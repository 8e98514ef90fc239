"""Switching from gunicorn or uvicorn is a change of command name: their
flags work with the same meaning, or are refused in one line (exit 2), and
the settings that came with them (--env, --env-file, --header, logging...)
do what they do there."""

from __future__ import annotations

import importlib
import json
import logging
import signal

import httpx
import pytest

from hybrid import cli, config, gunicorn_conf, logs, peers, sources
from hybrid.config import SETTINGS, ConfigError
from hybrid.protocol import ResponseFramer, set_server_fields
from hybrid.validators import MAX_WS_MESSAGE
from tests.conftest import free_port, run_hybrid, wait_for


def parsed(*argv: str) -> config.Config:
    """The settings `hybrid run APP ARGV` would serve with (no process)."""
    args = vars(cli.build_parser().parse_args(["run", "app:app", *argv]))
    args.pop("command")
    translated, _, _ = peers.translate(args.pop("peer_flags", {}))
    return sources.load({**translated, **args}, {}).config


# --- the table ------------------------------------------------------------------------

@pytest.mark.parametrize("flag", sorted({f for flags in peers.SAME.values() for f in flags}))
def test_each_flag_said_to_be_the_same_is_a_flag_of_a_setting(flag):
    assert peers.setting_of(flag) in SETTINGS


def test_every_peer_flag_has_an_answer_for_the_readme():
    rows = peers.table()
    assert len(rows) == len({row[0] for row in rows})
    assert all(answer for _, _, answer in rows)


# Every flag of theirs the peer table answers, so that the docs' table lists it too.
PEER_TABLE_FLAGS = set(peers.by_flag()) | {flag for flags in peers.SAME.values() for flag in flags}


def test_every_flag_of_gunicorns_installed_settings_is_in_the_peer_table():
    gunicorn_config = pytest.importorskip("gunicorn.config")
    flags = [flag for setting in gunicorn_config.KNOWN_SETTINGS for flag in setting.cli or ()]
    assert [flag for flag in flags if flag not in PEER_TABLE_FLAGS] == []


def test_every_option_of_uvicorns_installed_command_is_in_the_peer_table():
    pytest.importorskip("uvicorn")
    command = importlib.import_module("uvicorn.main").main  # (uvicorn.main is the command too)
    flags = [flag for param in command.params for flag in (*param.opts, *param.secondary_opts)
             if flag.startswith("-") and flag != "--version"]  # (hybrid's own --version)
    assert [flag for flag in flags if flag not in PEER_TABLE_FLAGS] == []


# --- translated flags -----------------------------------------------------------------

def test_uvicorns_host_and_port_are_a_bind():
    assert parsed("--host", "0.0.0.0", "--port", "9001") == parsed("--bind", "0.0.0.0:9001")


def test_an_ipv6_host_is_bracketed():
    assert parsed("--host", "::1", "--port", "9001").bind == ("[::1]:9001",)


def test_a_port_alone_keeps_uvicorns_default_host():
    assert parsed("--port", "9001").bind == ("127.0.0.1:9001",)


def test_uds_and_fd_are_binds():
    assert parsed("--uds", "/tmp/app.sock").bind == ("unix:/tmp/app.sock",)
    assert parsed("--fd", "3").bind == ("fd://3",)


@pytest.mark.parametrize(("peer", "native"), [
    (["--timeout-keep-alive", "7"], ["--keep-alive", "7"]),
    (["--timeout-graceful-shutdown", "9"], ["--graceful-timeout", "9"]),
    (["--limit-max-requests", "100"], ["--max-requests", "100"]),
    (["--access-log"], ["--access-logfile", "-"]),
    (["--no-proxy-headers"], ["--forwarded-allow-ips", ""]),
    (["--app-dir", "src"], ["--pythonpath", "src"]),
    (["-n", "shop"], ["--proc-name", "shop"]),
    (["--no-sendfile"], ["--sendfile", "false"]),
    (["--ssl-version", "17"], []),
    (["--loop", "auto"], ["--loop", "uvloop"]),
    (["--interface", "asgi3"], ["--interface", "asgi"]),
    (["--log-level", "trace"], ["--log-level", "debug"]),
    (["--asgi-lifespan", "off"], ["--lifespan", "off"]),
    (["--asgi-loop", "auto"], ["--loop", "uvloop"]),
    (["--asgi-loop", "asyncio"], ["--loop", "asyncio"]),
    (["--websocket-max-message-size", "65536"], ["--ws-max-size", "65536"]),
    (["--websocket-max-message-size", "0"], ["--ws-max-size", str(MAX_WS_MESSAGE)]),
    (["--protocol", "http"], []),
])
def test_a_peers_spelling_gives_the_same_settings_as_hybrids(peer, native):
    assert parsed(*peer) == parsed(*native)


def test_no_access_log_turns_the_access_log_off():
    assert parsed("--access-logfile", "-", "--no-access-log").access_logfile == "-"  # (ours win)
    assert parsed("--no-access-log").access_logfile is None


def test_host_and_bind_together_are_one_line_and_exit_2(capsys):
    assert cli.main(["run", "app:app", "--host", "0.0.0.0", "--bind", "127.0.0.1:1"]) == 2
    assert "--host and --bind both name the address" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [flag for peer in peers.FLAGS if peer.kind == peers.REFUSED
                                  for flag in peer.flags])
def test_each_refused_flag_is_one_line_and_exit_2(capsys, flag):
    peer = peers.by_flag()[flag]
    argv = ["run", "app:app", flag] + (["x"] if peer.takes_value else [])
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert err == [f"hybrid: error: {peers.refusal(flag)}"]


@pytest.mark.parametrize("argv", [["--ssl-version", "TLSv1"], ["--ws", "none"],
                                  ["--header-map", "refuse"], ["--protocol", "uwsgi"]])
def test_a_refused_value_is_one_line_and_exit_2(capsys, argv):
    assert cli.main(["run", "app:app", *argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", [flag for peer in peers.FLAGS if peer.kind == peers.ACCEPTED
                                  for flag in peer.flags])
def test_each_accepted_flag_is_named_in_a_note_at_start(flag):
    peer = peers.by_flag()[flag]
    argv = ["run", "app:app", flag] + (["x"] if peer.takes_value else [])
    _, notes, _ = peers.translate(vars(cli.build_parser().parse_args(argv))["peer_flags"])
    assert notes == [f"{flag} ({peer.peers}'s): accepted; {peer.answer}"]


def test_check_config_checks_the_app_and_exits():
    done = run_hybrid("run", "tests.apps.basic:app", "--check-config")
    assert done.returncode == 0
    assert "app: tests.apps.basic:app (wsgi" in done.stdout


def test_check_config_fails_for_an_app_that_does_not_load():
    assert run_hybrid("run", "tests.apps.nowhere:app", "--check-config").returncode == 1


# --- real command lines ---------------------------------------------------------------

def test_a_gunicorn_command_line_serves_unchanged_but_for_the_command(start_server, tmp_path):
    # As a Dockerfile of a FastAPI app on gunicorn would have it (app and port aside).
    server = start_server(
        "tests.apps.asgi_basic:app", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
        "--timeout", "60", "--graceful-timeout", "30", "--keep-alive", "5",
        "--max-requests", "1000", "--max-requests-jitter", "50", "--access-logfile", "-",
        "--error-logfile", "-", "--log-level", "info", "--forwarded-allow-ips", "*",
        "--worker-tmp-dir", "/dev/shm", "--capture-output")
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    wait_for(lambda: "--worker-tmp-dir (gunicorn's): accepted" in server.log(),
             message="the note on --worker-tmp-dir")


def test_a_uvicorn_command_line_serves_unchanged_but_for_the_command(start_server):
    port = free_port()
    server = start_server(
        "tests.apps.asgi_basic:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--proxy-headers", "--forwarded-allow-ips", "*",
        "--timeout-keep-alive", "5", "--no-server-header", "--header", "X-Frame-Options:DENY",
        "--log-level", "warning", "--no-access-log", "--http", "httptools", "--loop", "uvloop",
        port=port, bind=False)
    response = httpx.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "server" not in response.headers


# --- what the settings do -------------------------------------------------------------

@pytest.mark.parametrize("klass", ["sync", "thread", "asgi"])
def test_header_adds_a_field_to_every_response_and_date_and_server_can_go(start_server, klass):
    app = "tests.apps.asgi_basic:app" if klass == "asgi" else "tests.apps.basic:app"
    server = start_server(app, "-k", klass, "--header", "X-Served-By: hybrid-tests",
                          "--no-date-header", "--no-server-header")
    response = httpx.get(server.url + "/", timeout=10)
    assert response.headers["x-served-by"] == "hybrid-tests"
    assert "date" not in response.headers and "server" not in response.headers
    missing = httpx.get(server.url + "/no-such-page", timeout=10)
    assert missing.headers["x-served-by"] == "hybrid-tests"


def test_an_apps_own_server_field_replaces_hybrids(start_server):
    server = start_server("tests.apps.basic:app", "-k", "thread")
    assert httpx.get(server.url + "/server-header", timeout=10).headers.get_list("server") == [
        "my-app"]


def test_the_core_writes_no_date_when_told_and_the_apps_own_date_when_given():
    set_server_fields(date=False, server=True, extra=[])
    try:
        head = ResponseFramer().head("GET", "1.1", True, 200, b"OK", [(b"content-length", b"0")])
        assert b"date:" not in head.lower()
    finally:
        set_server_fields(date=True, server=True, extra=[])
    own = ResponseFramer().head("GET", "1.1", True, 200, b"OK",
                                [(b"Date", b"Tue, 01 Dec 2026 00:00:00 GMT")])
    assert own.lower().count(b"date:") == 1


def test_env_and_env_file_reach_the_app(start_server, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# settings\nexport FROM_FILE="file value"\nBOTH=from file\n'
                        "KEPT=from file\n")
    server = start_server("tests.apps.basic:app", "-e", "FROM_FLAG=a,b=c", "--env", "BOTH=flag",
                          "--env-file", str(env_file), env={"KEPT": "from the environment"})
    seen = {name: httpx.get(f"{server.url}/getenv?name={name}", timeout=10).text
            for name in ("FROM_FLAG", "FROM_FILE", "BOTH", "KEPT")}
    assert seen == {"FROM_FLAG": "a,b=c", "FROM_FILE": "file value", "BOTH": "flag",
                    "KEPT": "from the environment"}


def test_a_broken_env_file_is_one_line(tmp_path):
    # (Read as the arbiter starts: its refusal is one line, as any other is, in
    # test_cli.py's test_a_real_process_refusing_a_setting_says_it_in_one_line_and_exits_1.)
    env_file = tmp_path / ".env"
    env_file.write_text("NOT A LINE\n")
    with pytest.raises(ConfigError) as refused:
        sources.read_env_file(str(env_file))
    assert str(refused.value) == f"--env-file: {str(env_file)!r} line 1: expected NAME=VALUE"


def test_capture_output_puts_the_apps_prints_in_the_error_log(start_server, tmp_path):
    error_log = tmp_path / "error.log"
    server = start_server("tests.apps.basic:app", "--error-logfile", str(error_log),
                          "--capture-output")
    httpx.get(server.url + "/print?text=hello-from-print", timeout=10)
    wait_for(lambda: "hello-from-print" in error_log.read_text(), message="the print in the log")


def test_a_log_config_file_configures_hybrids_loggers(start_server, tmp_path):
    written = tmp_path / "from-config.log"
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps({
        "version": 1,
        "formatters": {"plain": {"format": "CONFIGURED %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(written),
                              "formatter": "plain"}},
        # gunicorn's logger name: it configures hybrid's error log.
        "loggers": {"gunicorn.error": {"handlers": ["file"], "level": "INFO"}},
    }))
    start_server("tests.apps.basic:app", "--log-config", str(log_config))
    wait_for(lambda: written.exists() and "CONFIGURED Worker" in written.read_text(),
             message="the worker's boot line through the configured handler")


def test_a_log_config_dict_keeps_the_loggers_it_does_not_name():
    logs.apply_config(None, {"loggers": {"tests.elsewhere": {"level": "INFO"}}})
    assert not logging.getLogger("hybrid.error").disabled


def test_a_log_config_that_fails_is_one_line(tmp_path):
    broken = tmp_path / "logging.ini"
    broken.write_text("[loggers]\nkeys=nothing\n")
    with pytest.raises(logs.LogFileError) as refused:
        logs.apply_config(str(broken), None)
    assert str(refused.value).startswith("--log-config") and "\n" not in str(refused.value)


def test_the_process_titles_name_the_app(start_server):
    pytest.importorskip("setproctitle")
    server = start_server("tests.apps.basic:app", "--proc-name", "shop")
    (pid,) = server.wait_workers(1)
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        assert handle.read().startswith(b"hybrid: worker [shop]")
    with open(f"/proc/{server.pid}/cmdline", "rb") as handle:
        assert handle.read().startswith(b"hybrid: arbiter [shop]")


def test_no_sendfile_still_sends_the_whole_file(start_server):
    server = start_server("tests.apps.basic:app", "-k", "thread", "--no-sendfile")
    plain = start_server("tests.apps.basic:app", "-k", "thread")
    assert httpx.get(server.url + "/file", timeout=10).content == \
        httpx.get(plain.url + "/file", timeout=10).content


# --- gunicorn.conf.py's names ---------------------------------------------------------

def test_gunicorn_config_file_names_set_hybrids_settings(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('accesslog = "-"\nerrorlog = "-"\nloglevel = "debug"\nkeepalive = 7\n'
                    'preload_app = True\npidfile = "/tmp/app.pid"\nraw_env = ["A=1"]\n'
                    'access_log_format = "%(h)s %(r)s"\nworker_tmp_dir = "/dev/shm"\n')
    loaded = sources.load({"config": str(path)}, {})
    cfg = loaded.config
    assert (cfg.access_logfile, cfg.log_level, cfg.keep_alive, cfg.preload, cfg.pid, cfg.env,
            cfg.access_logformat) == ("-", "debug", 7.0, True, "/tmp/app.pid", ("A=1",),
                                      "%(h)s %(r)s")
    assert any(note.startswith("worker_tmp_dir") for note in loaded.notes)


def test_a_gunicorn_setting_hybrid_refuses_is_one_line(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('statsd_host = "localhost:8125"\n')
    with pytest.raises(ConfigError, match="statsd_host is not supported"):
        sources.load({"config": str(path)}, {})


def test_gunicorn_27s_names_for_hybrids_settings_set_them(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('asgi_lifespan = "off"\nasgi_loop = "asyncio"\n'
                    'websocket_max_message_size = 0\n')
    cfg = sources.load({"config": str(path)}, {}).config
    assert (cfg.lifespan, cfg.loop, cfg.ws_max_size) == ("off", "asyncio", MAX_WS_MESSAGE)


def test_gunicorn_27s_names_for_what_hybrid_does_anyway_are_named_at_start(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('asgi_disconnect_grace_period = 10\nhttp_parser = "fast"\n'
                    'control_socket_disable = True\n')
    notes = sources.load({"config": str(path)}, {}).notes
    assert [note.split(" ")[0] for note in notes if "accepted" in note] == [
        "asgi_disconnect_grace_period", "http_parser", "control_socket_disable"]


@pytest.mark.parametrize(("name", "value"), [
    ("protocol", '"uwsgi"'), ("uwsgi_allow_ips", '"*"'), ("control_socket", '"/run/app.ctl"'),
    ("control_socket_mode", "0o660"), ("dirty_apps", '["app.ml:Model"]'), ("dirty_workers", "2"),
    ("dirty_timeout", "600"), ("enable_backlog_metric", "True"),
    ("permit_obsolete_folding", "True"), ("raw_paste_global_conf", '["A=1"]'),
    ("on_dirty_starting", "lambda arbiter: None")])
def test_a_gunicorn_27_setting_hybrid_refuses_is_one_line(tmp_path, name, value):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(f"{name} = {value}\n")
    with pytest.raises(ConfigError, match=f"{name} is not supported"):
        sources.load({"config": str(path)}, {})


def test_a_refused_gunicorn_setting_at_gunicorns_default_is_let_be(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(f'control_socket = "{tmp_path}/gunicorn.ctl"\n'
                    'protocol = "http"\nuwsgi_allow_ips = ["127.0.0.1", "::1"]\n'
                    'control_socket_mode = 0o600\ndirty_workers = 0\ndirty_threads = "1"\n'
                    "dirty_timeout = 300\ndirty_graceful_timeout = 30\n"
                    "enable_backlog_metric = False\n")
    sources.load({"config": str(path)}, {})  # (no ConfigError)


def test_a_hook_that_is_not_a_function_is_one_line(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('post_fork = "connect"\n')
    with pytest.raises(ConfigError, match="post_fork is a server hook"):
        sources.load({"config": str(path)}, {})



@pytest.mark.parametrize(("given", "problem"), [
    ("Content-Length: 5", "the server's to write"), ("Connection: keep-alive", "the server's"),
    ("X-Price: €5", "Latin-1"), ("X Bad: 1", "header name"), ("no colon", "NAME:VALUE")])
def test_a_header_the_server_cannot_send_as_given_is_one_line(given, problem):
    with pytest.raises(ConfigError, match=problem):
        parsed("--header", given)


def test_a_server_field_given_with_header_takes_the_place_of_hybrids(start_server):
    server = start_server("tests.apps.basic:app", "-k", "sync", "--header", "Server: edge")
    assert httpx.get(server.url + "/", timeout=10).headers.get_list("server") == ["edge"]


# gunicorn 23's settings, by their config-file names (its docs' settings page).
GUNICORN_SETTINGS = """
config wsgi_app bind backlog workers worker_class threads worker_connections max_requests
max_requests_jitter timeout graceful_timeout keepalive limit_request_line
limit_request_fields limit_request_field_size reload reload_engine reload_extra_files spew
check_config print_config preload_app sendfile reuse_port chdir daemon raw_env pidfile
worker_tmp_dir user group umask initgroups tmp_upload_dir secure_scheme_headers
forwarded_allow_ips accesslog disable_redirect_access_to_syslog access_log_format errorlog
loglevel capture_output logger_class logconfig logconfig_dict logconfig_json syslog_addr
syslog syslog_prefix syslog_facility enable_stdio_inheritance statsd_host dogstatsd_tags
statsd_prefix proc_name default_proc_name pythonpath paste proxy_protocol proxy_allow_ips
keyfile certfile ssl_version cert_reqs ca_certs suppress_ragged_eofs do_handshake_on_connect
ciphers raw_paste_global_conf permit_obsolete_folding strip_header_spaces
permit_unconventional_http_method permit_unconventional_http_version casefold_http_method
forwarder_headers header_map
""".split()


# Every gunicorn.conf.py name that means something here (the last three: read as their flags).
KNOWN_FILE_NAMES = (set(SETTINGS) | set(gunicorn_conf.GUNICORN_FILE_NAMES)
                    | set(gunicorn_conf.GUNICORN_FILE_ACCEPTED)
                    | set(gunicorn_conf.GUNICORN_FILE_REFUSED) | set(gunicorn_conf.HOOK_NAMES)
                    | {"header_map", "ssl_version", "logconfig_json"})


@pytest.mark.parametrize("name", GUNICORN_SETTINGS)
def test_every_gunicorn_setting_name_has_a_meaning_here(name):
    assert name in KNOWN_FILE_NAMES


def test_every_name_of_gunicorns_installed_settings_has_a_meaning_here():
    gunicorn_config = pytest.importorskip("gunicorn.config")
    names = [setting.name for setting in gunicorn_config.KNOWN_SETTINGS]
    assert [name for name in names if name not in KNOWN_FILE_NAMES] == []


def test_a_gunicorn_conf_py_in_the_working_directory_is_read_without_c(start_server, tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text('raw_env = ["FROM_GUNICORN_CONF=yes"]\n')
    server = start_server("tests.apps.basic:app")
    assert httpx.get(f"{server.url}/getenv?name=FROM_GUNICORN_CONF", timeout=10).text == "yes"
    wait_for(lambda: "Reading ./gunicorn.conf.py" in server.log(), message="the note")


def test_hup_reads_the_env_file_again(start_server, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("RELEASE=1\n")
    server = start_server("tests.apps.basic:app", "-e", "PINNED=x", "--env-file", str(env_file))
    assert httpx.get(f"{server.url}/getenv?name=RELEASE", timeout=10).text == "1"
    (old,) = server.wait_workers(1)
    env_file.write_text("RELEASE=2\n")
    server.send(signal.SIGHUP)
    wait_for(lambda: old not in server.worker_pids() and len(server.booted_workers()) == 1,
             message="the reloaded worker")
    assert httpx.get(f"{server.url}/getenv?name=RELEASE", timeout=10).text == "2"


def test_capture_output_follows_the_log_file_after_usr1(start_server, tmp_path):
    error_log = tmp_path / "error.log"
    server = start_server("tests.apps.basic:app", "--error-logfile", str(error_log),
                          "--capture-output")
    wait_for(lambda: "booted" in error_log.read_text(), message="the worker")
    error_log.rename(tmp_path / "error.log.1")
    server.send(signal.SIGUSR1)
    wait_for(lambda: error_log.exists(), message="the reopened log")
    wait_for(lambda: httpx.get(server.url + "/print?text=after-rotation", timeout=10) and
             "after-rotation" in error_log.read_text(), message="the print in the new file")


def test_an_ini_log_config_for_gunicorns_loggers_configures_hybrids(start_server, tmp_path):
    written = tmp_path / "ini.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(f"""[loggers]
keys=root,gunicorn.error

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_gunicorn.error]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.error

[handler_file]
class=logging.FileHandler
formatter=plain
args=({str(written)!r},)

[formatter_plain]
format=INI %(message)s
""")
    start_server("tests.apps.basic:app", "--log-config", str(ini))
    wait_for(lambda: written.exists() and "INI Worker" in written.read_text(),
             message="the worker's boot line through the INI's handler")


def test_a_flag_no_one_has_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", "app:app", "--no-such-flag"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "hybrid: error: unrecognized arguments: --no-such-flag (see 'hybrid run --help')"]


def test_version_is_there_after_run_too(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--version"])
    assert capsys.readouterr().out.startswith("hybrid ")


def test_check_says_a_gunicorn_conf_py_was_found_in_the_working_directory(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("workers = 2\n")
    result = run_hybrid("check", "tests.apps.basic:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["config"]]
    assert line.endswith("(./gunicorn.conf.py, read without -c)")
