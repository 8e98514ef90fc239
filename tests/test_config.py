"""The settings table: validation, layering and the file formats (no processes)."""

from __future__ import annotations

import pytest

from hybrid import config
from hybrid.config import ConfigError
from hybrid.sockets import parse_address


def load(cli=None, env=None):
    return config.load(cli or {}, env or {})


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
