"""The HTTP/2 settings: gunicorn's flags and bounds, the peers' spellings,
what ALPN offers for each class and install, the one-line refusals of HTTP/2
asked for where it cannot be served, and RFC 9113's TLS 1.2 cipher rule. A
missing `http2` extra is simulated by `engine_installed` answering False."""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl

import pytest
import trustme

from hybrid import cli, config, http2_options, logs, peer_defaults, peers, sources, tls, workers
from hybrid.config import ConfigError
from hybrid.hooks import Hooks
from hybrid.protocol import ProtocolError, RequestParser
from hybrid.startup import fit_to_app
from hybrid.validators import CLEARTEXT_MODES
from tests.apps.asgi_basic import app as asgi_app
from tests.apps.basic import app as wsgi_app
from tests.conftest import one_line_error, read_until_closed, run_hybrid, wait_for

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MISSING_EXTRA = "pip install 'hybrid-server[http2]'"


def parsed(*argv: str) -> config.Config:
    """The settings `hybrid run APP ARGV` would serve with (no process)."""
    args = vars(cli.build_parser().parse_args(["run", "app:app", *argv]))
    args.pop("command")
    translated, _, _ = peers.translate(args.pop("peer_flags", {}))
    return sources.load({**translated, **args}, {}).config


def resolved(**settings: object) -> sources.Loaded:
    """The settings with the worker class settled, as `hybrid run` and `check` have them."""
    return workers.resolve(sources.load(settings, {}))


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http2_options, "engine_installed", lambda: False)


@pytest.fixture(scope="module")
def cert_flags(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], trustme.CA]:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = directory / "server.pem", directory / "server.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return ["--certfile", str(cert), "--keyfile", str(key)], ca


def negotiated(server_context: ssl.SSLContext, offered: list[str]) -> str | None:
    """The protocol ALPN settles on between `server_context` and a client offering
    `offered`, over a real handshake in memory."""
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    client_context.set_alpn_protocols(offered)
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    server = server_context.wrap_bio(pipes[0], pipes[1], server_side=True)
    client = client_context.wrap_bio(pipes[2], pipes[3], server_hostname="localhost")
    for _ in range(10):
        for end, outgoing, incoming in ((client, pipes[3], pipes[0]),
                                        (server, pipes[1], pipes[2])):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
            incoming.write(outgoing.read())
    return client.selected_alpn_protocol()


def tls_of(cert_flags: tuple[list[str], trustme.CA], *flags: str) -> ssl.SSLContext:
    loaded = tls.load(parsed(*cert_flags[0], *flags))
    assert loaded is not None
    return loaded.context


# --- the settings ----------------------------------------------------------------------

def test_the_defaults_are_auto_without_h2c_and_gunicorns_figures():
    cfg = parsed()
    assert cfg.http_protocols == ("auto",)
    assert (cfg.http2_cleartext, cfg.http2_max_concurrent_streams, cfg.http2_initial_window_size,
            cfg.http2_max_frame_size, cfg.http2_max_header_list_size) == \
        ("off", 100, 65535, 16384, 65536)


@pytest.mark.parametrize(("given", "held"), [
    ("h2,h1", ("h2", "h1")), ("h1,h2", ("h1", "h2")), ("h1", ("h1",)), ("h2", ("h2",)),
    (" H2 , h1 ", ("h2", "h1")), ("auto", ("auto",))])
def test_http_protocols_keeps_gunicorns_list_in_its_order(given, held):
    assert parsed("--http-protocols", given).http_protocols == held


def test_http_protocols_takes_a_list_in_a_config_file(tmp_path):
    path = tmp_path / "hybrid.toml"
    path.write_text('http_protocols = ["h2", "h1"]\n')
    assert sources.load({"config": str(path)}, {}).config.http_protocols == ("h2", "h1")


@pytest.mark.parametrize(("given", "why"), [
    ("h3", "HTTP/3"), ("h2,h3", "HTTP/3"), ("auto,h2", "auto alone"), ("h2,h2", "more than once"),
    ("spdy", "expected h1, h2"), ("", "expected h1, h2")])
def test_an_http_protocols_value_not_served_is_one_line(one_line_refusal, given, why):
    line = one_line_refusal("run", "app:app", "--http-protocols", given)
    assert line.startswith("hybrid: error: --http-protocols: ") and why in line


@pytest.mark.parametrize("mode", ["off", "prior-knowledge", "upgrade", "both"])
def test_http2_cleartext_takes_gunicorns_modes(mode):
    assert parsed("--http2-cleartext", mode, "-k", "asgi").http2_cleartext == mode


def test_an_unknown_http2_cleartext_mode_is_one_line(one_line_refusal):
    assert "--http2-cleartext: expected one of off, prior-knowledge" in \
        one_line_refusal("run", "app:app", "--http2-cleartext", "sometimes")


@pytest.mark.parametrize(("flag", "least", "most"), [
    ("--http2-max-concurrent-streams", 1, 10_000),
    ("--http2-initial-window-size", 1024, 2**31 - 1),
    ("--http2-max-frame-size", 16384, 2**24 - 1),  # RFC 9113, 6.5.2
])
def test_each_http2_figure_is_bounded(one_line_refusal, flag, least, most):
    name = peers.setting_of(flag)
    assert getattr(parsed(flag, str(least)), name) == least
    assert getattr(parsed(flag, str(most)), name) == most
    assert f"must be at least {least}" in one_line_refusal("run", "app:app", flag, str(least - 1))
    assert f"must be at most {most}" in one_line_refusal("run", "app:app", flag, str(most + 1))


def test_gunicorns_unlimited_header_list_is_taken_as_the_most_with_a_warning():
    loaded = sources.load({"http2_max_header_list_size": "0"}, {})
    assert loaded.config.http2_max_header_list_size == 2 * 1024 * 1024
    assert any("HPACK" in warning for warning in loaded.warnings)


def test_the_bounds_end_each_settings_help():
    assert config.SETTINGS["http2_max_frame_size"].help.endswith(
        "accepted: 16384 to 16777215 bytes")


# --- gunicorn's, granian's and uvicorn's spellings ----------------------------------------

def test_a_gunicorn_conf_py_sets_the_http2_settings_by_their_names(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text('http_protocols = "h2,h1"\nhttp2_cleartext = True\n'
                    'http2_max_concurrent_streams = 50\nhttp2_initial_window_size = 1048576\n'
                    'http2_max_frame_size = 32768\nhttp2_max_header_list_size = 32768\n')
    cfg = sources.load({"config": str(path)}, {}).config
    assert (cfg.http_protocols, cfg.http2_cleartext, cfg.http2_max_concurrent_streams,
            cfg.http2_initial_window_size, cfg.http2_max_frame_size,
            cfg.http2_max_header_list_size) == (("h2", "h1"), "prior-knowledge", 50, 1048576,
                                                32768, 32768)


@pytest.mark.parametrize(("peer", "native"), [
    (["--http", "1"], ["--http-protocols", "h1"]),
    (["--http", "2"], ["--http-protocols", "h2", "--http2-cleartext", "prior-knowledge"]),
    (["--http", "auto"], []),
    (["--http", "httptools"], []),
    (["--http", "zttp", "--http2"],
     ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]),
])
def test_a_peers_http_version_flag_gives_the_same_settings_as_hybrids(peer, native):
    assert parsed(*peer) == parsed(*native)


def test_uvicorns_http_implementation_is_accepted_with_a_note():
    _, notes, _ = peers.translate({"--http": "h11"})
    assert notes == ["--http (uvicorn, granian's): accepted; hybrid's own HTTP/1.1 core "
                     "(httptools underneath) serves every class"]


def test_a_granian_version_not_served_is_one_line_and_exit_2(capsys):
    assert cli.main(["run", "app:app", "--http", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hybrid: error: --http 3: granian's versions are auto, 1 and 2 (HTTP/3 is "
                   "not served)"]


def test_the_migration_table_says_hybrid_offers_h2_by_default():
    rows = {(row.what, row.peers): row for row in peer_defaults.differences()}
    for peer in ("gunicorn", "uvicorn"):
        row = rows[("`http_protocols`", peer)]
        assert row.restore == ("--http-protocols", "h1") and "h2" in row.ours


# --- the refusals at start --------------------------------------------------------------

@pytest.mark.parametrize("klass", ["sync", "thread", "gthread"])
def test_h2_asked_of_a_wsgi_class_is_one_line_naming_k_asgi(one_line_refusal, klass):
    line = one_line_refusal("run", "app:app", "-k", klass, "--http-protocols", "h2,h1")
    assert line.startswith("hybrid: error: --http-protocols h2,h1: HTTP/2 is served by the asgi "
                           "class") and "-k asgi" in line


def test_hybrid_run_refuses_h2_on_the_thread_class_in_one_line():
    line = one_line_error("-k", "thread", "--http-protocols", "h2,h1")
    assert "-k asgi" in line


def test_hybrid_check_refuses_h2_on_the_thread_class_in_one_line():
    done = run_hybrid("check", "tests.apps.basic:app", "-k", "thread", "--http-protocols", "h2,h1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "hybrid: error: --http-protocols h2,h1: HTTP/2 is served by the asgi class, not by "
        "'thread': give -k asgi (a WSGI app runs on its bridge)"]


def test_h2c_asked_of_a_wsgi_class_is_one_line(one_line_refusal):
    line = one_line_refusal("run", "app:app", "-k", "sync", "--http2-cleartext", "upgrade")
    assert line.startswith("hybrid: error: --http2-cleartext upgrade: HTTP/2 is served by")


@pytest.mark.parametrize("flags", [["--http-protocols", "h2"], ["--http2-cleartext", "both"],
                                   ["--http2"]])
def test_h2_asked_for_without_the_extra_is_one_line_naming_it(one_line_refusal, without_extra,
                                                              flags):
    line = one_line_refusal("run", "app:app", "-k", "asgi", *flags)
    assert line.endswith(f"asks for HTTP/2, which needs the http2 extra (the ngh2 engine): "
                         f"{MISSING_EXTRA}")


def test_h2c_with_h2_left_out_is_one_line(one_line_refusal):
    line = one_line_refusal("run", "app:app", "-k", "asgi", "--http-protocols", "h1",
                            "--http2-cleartext", "prior-knowledge")
    assert line == ("hybrid: error: --http2-cleartext prior-knowledge needs h2 in "
                    "--http-protocols (given: h1)")


@pytest.mark.parametrize("klass", ["sync", "thread", "asgi", "auto"])
def test_the_default_asks_for_nothing_whatever_the_class_or_install(without_extra, klass):
    assert resolved(worker_class=klass).warnings == ()


def test_the_missing_extra_is_looked_for_by_its_module():
    http2_options.engine_installed.cache_clear()
    assert http2_options.ENGINE_MODULE == "ngh2"
    assert http2_options.engine_installed() is True  # (the test dependencies install it)


def test_h2_without_tls_or_h2c_is_a_warning_that_no_client_gets_it():
    warnings = resolved(worker_class="asgi", http_protocols="h2,h1").warnings
    assert warnings == ("--http-protocols h2,h1: without --certfile (ALPN) or "
                        "--http2-cleartext, no client gets HTTP/2",)


def test_h2c_under_tls_is_a_warning_that_it_is_not_used(cert_flags):
    loaded = workers.resolve(sources.load(
        {"worker_class": "asgi", "http2_cleartext": "both", "certfile": cert_flags[0][1],
         "keyfile": cert_flags[0][3]}, {}))
    assert loaded.warnings == ("--http2-cleartext both is not used: with --certfile every "
                               "connection is TLS, where ALPN chooses HTTP/2",)


def test_an_auto_class_is_checked_once_its_pick_is_known():
    cfg = resolved(http_protocols="h2,h1", http2_cleartext="prior-knowledge").config
    assert fit_to_app(asgi_app, cfg)[0].worker_class == "asgi"
    with pytest.raises(ConfigError, match="not by 'sync': give -k asgi"):
        fit_to_app(wsgi_app, cfg)


def test_hybrid_check_refuses_h2_for_the_class_an_auto_class_would_pick():
    done = run_hybrid("check", "tests.apps.basic:app", "--http-protocols", "h2,h1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "hybrid: error: --http-protocols h2,h1: HTTP/2 is served by the asgi class, not by "
        "'sync': give -k asgi (a WSGI app runs on its bridge)"]


def test_an_auto_worker_that_picks_sync_for_h2_stops_the_start_with_the_line():
    done = run_hybrid("run", "tests.apps.basic:app", "--bind", "127.0.0.1:0",
                      "--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge",
                      timeout=60)
    assert done.returncode != 0
    assert "HTTP/2 is served by the asgi class, not by 'sync': give -k asgi" in done.stderr


# --- what ALPN offers -------------------------------------------------------------------

@pytest.mark.parametrize(("protocols", "offered"), [
    ("auto", ["h2", "http/1.1"]), ("h2,h1", ["h2", "http/1.1"]), ("h1,h2", ["http/1.1", "h2"]),
    ("h2", ["h2"]), ("h1", ["http/1.1"])])
def test_alpn_offers_the_asgi_class_what_http_protocols_says_in_its_order(protocols, offered):
    assert http2_options.alpn_protocols(parsed("--http-protocols", protocols), "asgi") == offered


@pytest.mark.parametrize("klass", ["sync", "thread", "auto"])
def test_alpn_offers_other_classes_http_1_1_alone(klass):
    assert http2_options.alpn_protocols(parsed(), klass) == ["http/1.1"]


def test_alpn_offers_http_1_1_alone_without_the_extra(without_extra):
    assert http2_options.alpn_protocols(parsed(), "asgi") == ["http/1.1"]


def test_the_h2c_modes_read_as_the_worker_asks_them():
    modes = {mode: parsed("--http2-cleartext", mode) for mode in CLEARTEXT_MODES}
    assert [mode for mode, cfg in modes.items() if http2_options.cleartext_prior_knowledge(cfg)] \
        == ["prior-knowledge", "both"]
    assert [mode for mode, cfg in modes.items() if http2_options.cleartext_upgrade(cfg)] == \
        ["upgrade", "both"]


def test_a_tls_context_for_the_asgi_class_negotiates_h2_first(cert_flags):
    context = tls_of(cert_flags, "-k", "asgi")
    assert negotiated(context, ["http/1.1", "h2"]) == "h2"
    assert negotiated(context, ["http/1.1"]) == "http/1.1"


def test_a_tls_context_for_the_thread_class_negotiates_http_1_1(cert_flags):
    assert negotiated(tls_of(cert_flags, "-k", "thread"), ["h2", "http/1.1"]) == "http/1.1"


def test_a_tls_context_without_the_extra_negotiates_http_1_1(cert_flags, without_extra):
    assert negotiated(tls_of(cert_flags, "-k", "asgi"), ["h2", "http/1.1"]) == "http/1.1"


def test_the_ssl_context_hooks_context_offers_what_the_class_serves(cert_flags):
    hooks = Hooks({"ssl_context": lambda cfg, default: default()})
    loaded = tls.load(parsed(*cert_flags[0], "-k", "thread"), hooks)
    assert loaded is not None and negotiated(loaded.context, ["h2", "http/1.1"]) == "http/1.1"


def handshake(port: int, ca: trustme.CA) -> str | None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls_sock:
            return tls_sock.selected_alpn_protocol()


@pytest.mark.parametrize(("app", "flags", "chosen"), [
    ("tests.apps.asgi_basic:app", [], "h2"),  # (the auto class, its pick made in the worker)
    ("tests.apps.basic:app", ["-k", "asgi"], "h2"),  # (the bridge)
    ("tests.apps.basic:app", [], "http/1.1"),  # (auto picks sync)
    ("tests.apps.asgi_basic:app", ["--preload"], "h2"),
])
def test_a_served_worker_offers_h2_by_alpn_where_its_class_serves_it(start_server, cert_flags,
                                                                     app, flags, chosen):
    server = start_server(app, *cert_flags[0], *flags)
    server.wait_workers(1)
    assert handshake(server.port, cert_flags[1]) == chosen


# --- RFC 9113, 9.2: TLS 1.2's ciphers for h2 -----------------------------------------------

def context_with(ciphers: str, oldest: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = oldest
    context.set_ciphers(ciphers)
    return context


@pytest.mark.parametrize("ciphers", ["ECDHE-RSA-AES128-GCM-SHA256",
                                     "ECDHE-ECDSA-CHACHA20-POLY1305", "DHE-RSA-AES256-GCM-SHA384",
                                     "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"])
def test_ciphers_with_an_ephemeral_aead_suite_keep_h2(ciphers):
    assert http2_options.h2_cipher_problem(context_with(ciphers)) is None


@pytest.mark.parametrize("ciphers", ["AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
                                     "AES128-SHA:DHE-RSA-AES256-SHA256"])
def test_ciphers_without_one_rule_h2_out_saying_why(ciphers):
    problem = http2_options.h2_cipher_problem(context_with(ciphers))
    assert problem is not None and "RFC 9113 9.2.2" in problem and "\n" not in problem


def test_the_cipher_rule_is_tls_1_2s_alone():
    assert http2_options.h2_cipher_problem(context_with("AES256-GCM-SHA384",
                                                        ssl.TLSVersion.TLSv1_3)) is None


def test_the_cipher_rule_reads_the_settings_too():
    weak = dataclasses.replace(parsed(), ciphers="AES256-GCM-SHA384")
    assert http2_options.h2_cipher_problem(parsed()) is None
    assert http2_options.h2_cipher_problem(weak) is not None
    assert http2_options.h2_cipher_problem(dataclasses.replace(weak, tls_min_version="1.3")) \
        is None


def test_ciphers_that_rule_h2_out_leave_alpn_http_1_1_and_one_warning(cert_flags, caplog):
    with caplog.at_level(logging.WARNING, logger="hybrid.error"):
        context = tls_of(cert_flags, "-k", "asgi", "--ciphers", "AES256-GCM-SHA384")
    assert negotiated(context, ["h2", "http/1.1"]) == "http/1.1"
    assert [record.getMessage() for record in caplog.records] == \
        [http2_options.h2_cipher_problem(context)]


def test_ciphers_that_rule_h2_out_say_nothing_for_a_class_without_h2(cert_flags, caplog):
    with caplog.at_level(logging.WARNING, logger="hybrid.error"):
        tls_of(cert_flags, "-k", "thread", "--ciphers", "AES256-GCM-SHA384")
    assert caplog.records == []


# --- the HTTP/1-only classes and the HTTP/2 preface -----------------------------------------

def preface_error() -> ProtocolError:
    events = RequestParser().feed(PREFACE)
    error = next(event for event in events if isinstance(event, ProtocolError))
    assert error.status == 505
    return error


def test_the_rejection_line_names_k_asgi_for_an_http2_preface(caplog):
    with caplog.at_level(logging.DEBUG, logger="hybrid.error"):
        logs.rejected("10.0.0.1", preface_error(), logs.HTTP2_ON_ASGI)
        logs.rejected("10.0.0.1", ProtocolError(400, "bad"), logs.HTTP2_ON_ASGI)
    lines = [record.getMessage() for record in caplog.records]
    assert "-k asgi" in lines[0] and "-k asgi" not in lines[1]


@pytest.mark.parametrize("klass", ["sync", "thread"])
def test_a_wsgi_class_answers_the_preface_505_and_logs_k_asgi(start_server, klass):
    server = start_server("tests.apps.basic:app", "-k", klass, "--log-level", "debug")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(PREFACE)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 505 ")
    wait_for(lambda: "HTTP/2 is served by the asgi class: -k asgi" in server.log(),
             message="the rejection's line naming -k asgi")

