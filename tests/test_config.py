"""The settings table: validation, layering and the file formats (no processes)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from hybrid import config, sources, validators
from hybrid.config import ConfigError
from hybrid.addresses import parse_address


def load(cli=None, env=None):
    return sources.load(cli or {}, env or {})


def test_defaults_match_gunicorn():
    cfg = load().config
    assert cfg.bind == ("127.0.0.1:8000",)
    # (gunicorn's default class is sync: "auto" is sync for every WSGI app)
    assert (cfg.workers, cfg.worker_class, cfg.timeout, cfg.graceful_timeout) == (1, "auto", 30, 30)
    assert cfg.backlog == 2048


def test_every_setting_has_an_env_variable_and_a_flag():
    for name, setting in config.SETTINGS.items():
        assert config.env_name(name) == "HYBRID_" + name.upper()
        assert setting.flags and setting.help


def test_environment_beats_file_and_command_line_beats_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = 2\ntimeout = 3\nbacklog = 4\n")
    loaded = load({"config": str(path), "backlog": "6"}, {"HYBRID_TIMEOUT": "5", "HYBRID_BACKLOG": "5"})
    assert (loaded.config.workers, loaded.config.timeout, loaded.config.backlog) == (2, 5, 6)
    assert loaded.sources["workers"] == f"file {path}"
    assert loaded.sources["timeout"] == "env HYBRID_TIMEOUT"
    assert loaded.sources["backlog"] == "command line"


def test_config_file_can_come_from_the_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = 7\n")
    assert load(env={"HYBRID_CONFIG": str(path)}).config.workers == 7


def test_port_and_web_concurrency_are_platform_defaults():
    cfg = load(env={"PORT": "9000", "WEB_CONCURRENCY": "3"}).config
    assert cfg.bind == ("0.0.0.0:9000",) and cfg.workers == 3


def test_bind_accepts_a_list_from_env_and_repeated_flags():
    assert load(env={"HYBRID_BIND": "127.0.0.1:1, unix:/tmp/x.sock"}).config.bind == (
        "127.0.0.1:1", "unix:/tmp/x.sock")
    assert load({"bind": ["[::1]:80", "fd://3"]}).config.bind == ("[::1]:80", "fd://3")


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("1", True), ("yes", True), ("off", False), ("0", False), (True, True),
])
def test_booleans_from_text(raw, expected):
    assert load(env={"HYBRID_PRELOAD": raw} if isinstance(raw, str) else None,
                cli={"preload": raw} if not isinstance(raw, str) else None).config.preload is expected


def test_bad_boolean_is_an_error():
    with pytest.raises(ConfigError, match="--preload: expected true or false"):
        load(env={"HYBRID_PRELOAD": "maybe"})


def test_toml_values_keep_their_types(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('bind = ["127.0.0.1:1", "127.0.0.1:2"]\npreload = true\ngraceful_timeout = 1.5\n')
    cfg = load({"config": str(path)}).config
    assert cfg.bind == ("127.0.0.1:1", "127.0.0.1:2") and cfg.preload and cfg.graceful_timeout == 1.5


def test_toml_with_a_wrong_type_names_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = true\n")
    with pytest.raises(ConfigError, match=r"--workers: .* \(from file "):
        load({"config": str(path)})


def test_broken_python_config_is_one_line(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("workers = 1 / 0\n")
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        load({"config": str(path)})


def test_config_file_must_exist_and_have_a_known_suffix(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load({"config": str(tmp_path / "missing.toml")})
    other = tmp_path / "c.ini"
    other.write_text("")
    with pytest.raises(ConfigError, match="use a .toml or .py file"):
        load({"config": str(other)})


@pytest.mark.parametrize("text, kind, host, port", [
    ("127.0.0.1:8000", "tcp", "127.0.0.1", 8000),
    ("localhost", "tcp", "localhost", 8000),
    (":9000", "tcp", "0.0.0.0", 9000),
    ("[::1]:8080", "tcp", "::1", 8080),
    ("[::]", "tcp", "::", 8000),
])
def test_tcp_addresses(text, kind, host, port):
    address = parse_address(text)
    assert (address.kind, address.host, address.port) == (kind, host, port)


def test_unix_and_fd_addresses():
    assert parse_address("unix:/run/app.sock").path == "/run/app.sock"
    assert parse_address("fd://3").fd == 3


@pytest.mark.parametrize("text", ["::1:80", "[::1", "host:99999", "unix:", "fd://x", "h:p"])
def test_bad_addresses(text):
    with pytest.raises(ValueError):
        parse_address(text)


# --- bounds: every number has one, stated in the help ------------------------------

FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(config.Config)}
NUMERIC = [name for name, kind in FIELD_TYPES.items() if kind in ("int", "float", "int | None")]


def test_every_numeric_setting_states_its_bound_in_its_help():
    for name in NUMERIC:
        parse = config.SETTINGS[name].parse
        assert isinstance(parse, validators.Bounded), name
        assert config.SETTINGS[name].help.endswith(f"; accepted: {parse.bounds}"), name


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_setting_refuses_a_20_digit_value_in_one_line(name):
    with pytest.raises(ConfigError) as refused:
        load({name: "9" * 20})
    message = str(refused.value)
    assert message.startswith(config.flag_name(name) + ": ") and "\n" not in message


def test_a_billion_threads_is_refused():
    with pytest.raises(ConfigError, match="^--threads: must be at most 1024, got 1000000000$"):
        load({"threads": "1000000000"})


def test_a_20_digit_request_line_limit_is_refused():
    with pytest.raises(ConfigError, match="^--limit-request-line: must be at most 8190 "):
        load({"limit_request_line": "99999999999999999999"})


@pytest.mark.parametrize("name, given, taken", [
    ("limit_request_line", "10000", 8190),  # gunicorn's clamp
    ("limit_request_line", "0", 8190),  # gunicorn's "no limit": a head always has one here
    ("limit_request_fields", "40000", 32768),  # gunicorn's clamp
    ("limit_request_fields", "0", 32768),  # gunicorn's meaning of 0
])
def test_a_request_limit_gunicorn_clamps_is_clamped_with_one_warning(name, given, taken):
    loaded = load({name: given})
    assert getattr(loaded.config, name) == taken
    [warning] = loaded.warnings
    assert warning.startswith(f"{config.flag_name(name)} {given} (from command line) is taken "
                              f"as {taken}: ")


def test_the_request_head_stays_bounded_at_the_widest_limits():
    loaded = load({"limit_request_line": "0", "limit_request_field_size": "2000000000"})
    head = loaded.config.request_limits().head
    assert head == validators.MAX_REQUEST_LINE + validators.MAX_FIELD_SIZE + 4 < 2 * 1024 * 1024


# --- access log format ----------------------------------------------------------------

@pytest.mark.parametrize("logformat", ["%(", "%(h)s %", "%(h)", "%(h)s %y", "%(b)d"])
def test_an_access_log_format_that_cannot_format_a_line_is_refused(logformat):
    with pytest.raises(ConfigError, match="^--access-logformat: .* a literal % is %%\\)$"):
        load({"access_logformat": logformat})


@pytest.mark.parametrize("logformat", [
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',  # gunicorn's default
    "%(s)d %(M)d %({x-forwarded-for}i)s 100%%", "json", "no atoms at all"])
def test_a_working_access_log_format_is_accepted(logformat):
    assert load({"access_logformat": logformat}).config.access_logformat == logformat


# --- the types a config file gives ----------------------------------------------------

TAKES_A_NUMBER_AS_WELL = {"user", "group", "cert_reqs", "tls_min_version"}  # uids, ssl.CERT_*
WRONG_TYPES = {
    "int": [True, 2.5, [1]],
    "float": [True, [1.0]],
    "bool": [1, ["yes"]],
    "str": [5, ["x"]],
    "str | None": [5, ["x"]],
    "tuple[str, ...]": [5, [5]],
    "int | None": [2.5, [1]],
    "dict[str, Any] | None": [5, [1]],
}


def wrong_values(name):
    values = WRONG_TYPES[FIELD_TYPES[name]]
    return [v for v in values if not (name in TAKES_A_NUMBER_AS_WELL and isinstance(v, int))]


@pytest.mark.parametrize("name", [name for name in config.SETTINGS if name != "config"])
def test_every_setting_refuses_a_python_config_value_of_the_wrong_type(tmp_path, name):
    for number, value in enumerate(wrong_values(name)):
        path = tmp_path / f"c{number}.py"
        path.write_text(f"{name} = {value!r}\n")
        with pytest.raises(ConfigError) as refused:
            load({"config": str(path)})
        message = str(refused.value)
        assert message.startswith(f"{config.flag_name(name)}: expected "), message
        assert f"(from file {path})" in message and "\n" not in message


@pytest.mark.parametrize("line, expected", [
    ("bind = 5", "--bind: expected text or a list of texts, got the number 5"),
    ("preload = 1", "--preload: expected true or false, got the number 1"),
    ("workers = 2.5", "--workers: expected a whole number, got the number 2.5"),
    ("access_logfile = ['-']", "--access-logfile: expected text, got the list ['-']"),
    ("timeout = [30]", "--timeout: expected a number of seconds, got the list [30]"),
    ("proc_name = {a = 1}", "--name: expected text, got the table {'a': 1}"),
])
def test_a_toml_value_of_the_wrong_type_is_refused_with_its_name_and_type(tmp_path, line, expected):
    path = tmp_path / "c.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)} \\(from file "):
        load({"config": str(path)})


def test_a_python_config_may_give_numbers_as_text_and_none_for_unset(tmp_path):
    # (gunicorn.conf.py files read numbers from os.environ, and leave pidfile = None.)
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("workers = '3'\ntimeout = '40'\npidfile = None\nuser = 0\nkeepalive = 2\n")
    cfg = load({"config": str(path)}).config
    assert (cfg.workers, cfg.timeout, cfg.pid, cfg.user, cfg.keep_alive) == (3, 40, None, "0", 2)


def test_gunicorns_example_config_leaves_user_and_group_as_none(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("user = None\ngroup = None\n")
    cfg = load({"config": str(path)}).config
    assert (cfg.user, cfg.group) == ("", "")


def test_an_access_log_format_without_an_access_log_file_is_a_warning():
    loaded = sources.load({"access_logformat": "json"}, {})
    assert any("--access-logformat (from command line) is ignored without --access-logfile"
               in warning for warning in loaded.warnings)


def test_an_access_log_format_with_a_file_or_a_logging_config_is_no_warning():
    for extra in ({"access_logfile": "-"}, {"log_config_dict": '{"version": 1}'}):
        loaded = sources.load({"access_logformat": "json", **extra}, {})
        assert not any("--access-logformat" in warning for warning in loaded.warnings)
