"""TLS on every worker class: HTTPS, keep-alive, wss, mutual TLS, the
handshake under --header-timeout, certificate rotation on HUP, and the one
line a bad certificate setting gets. Certificates come from a CA the tests
make (trustme)."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path

import httpx
import psutil
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from websockets.sync.client import connect

from hybrid import config, sources, tls
from hybrid.cli import build_parser
from hybrid.config import ConfigError
from hybrid.tls_facts import distinguished_name, wsgi_environ

from tests.conftest import (
    one_line_error,
    read_response,
    read_until_closed,
    split_response,
    wait_for,
)

# (worker class, app): the bridge is a WSGI app on the asgi class.
SERVED = {
    "sync": "tests.apps.basic:app",
    "thread": "tests.apps.basic:app",
    "asgi": "tests.apps.asgi_basic:app",
    "bridge": "tests.apps.basic:app",
}
KEEPING_ALIVE = ("thread", "asgi", "bridge")


class Certificates:
    """A CA, the server's certificate, and clients' certificates, as files."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(exist_ok=True)
        self.directory = directory
        self.ca = trustme.CA()
        self.server_cert = self.directory / "server.pem"
        self.server_key = self.directory / "server.key"
        self.issue_server_certificate()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.client = self._client(self.ca.issue_cert("client@example.com",
                                                      common_name="client one"), "client")
        other_ca = trustme.CA()
        self.stranger = self._client(other_ca.issue_cert("stranger@example.com"), "stranger")
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        self.expired = self._client(self.ca.issue_cert(
            "expired@example.com", not_before=past - datetime.timedelta(days=30),
            not_after=past), "expired")

    def issue_server_certificate(self) -> str:
        """A new certificate for the server, written over the old files; its PEM."""
        issued = self.ca.issue_cert("localhost", "127.0.0.1")
        issued.private_key_pem.write_to_path(str(self.server_key))
        with open(self.server_cert, "wb") as handle:
            for pem in issued.cert_chain_pems:
                handle.write(pem.bytes())
        return issued.cert_chain_pems[0].bytes().decode()

    def _client(self, issued: trustme.LeafCert, name: str) -> Path:
        path = self.directory / f"{name}.pem"
        issued.private_key_and_cert_chain_pem.write_to_path(str(path))
        return path

    def flags(self, *extra: str) -> list[str]:
        return ["--certfile", str(self.server_cert), "--keyfile", str(self.server_key), *extra]

    def mutual_flags(self, mode: str = "required") -> list[str]:
        return self.flags("--ca-certs", str(self.ca_file), "--cert-reqs", mode)

    @staticmethod
    def trusting(ca: trustme.CA) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    def client_context(self, certificate: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if certificate is not None:
            context.load_cert_chain(str(certificate))
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


def start_tls(start_server, served: str, *flags: str):
    klass = "asgi" if served == "bridge" else served
    server = start_server(SERVED[served], "-k", klass, *flags)
    # (The listener accepts before a worker runs; a handshake waits for one to boot,
    # which on a loaded machine can take most of a client's timeout.)
    server.wait_workers(1)
    server.url = server.url.replace("http://", "https://")
    return server


def report(server, context: ssl.SSLContext) -> dict:
    """What the app saw of its request: the WSGI environ, or the ASGI scope."""
    path = "/scope" if "asgi_basic" in " ".join(server.proc.args) else "/environ"
    response = httpx.get(server.url + path, verify=context, timeout=10)
    assert response.status_code == 200
    return response.json()


def tls_socket(server, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return context.wrap_socket(sock, server_hostname="localhost")


# --- serving over TLS --------------------------------------------------------------

@pytest.mark.parametrize("served", SERVED)
def test_a_request_over_https_is_served_and_the_app_is_told_https(start_server, certs, served):
    server = start_tls(start_server, served, *certs.flags())
    seen = report(server, certs.client_context())
    if served == "asgi":
        assert seen["scheme"] == "https"
        assert seen["extensions"]["tls"]["tls_version"] in (0x0303, 0x0304)
    else:
        assert seen["wsgi.url_scheme"] == "https"
        assert seen["HTTPS"] == "on"
        assert seen["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
        assert seen["SSL_CLIENT_VERIFY"] == "NONE"


@pytest.mark.parametrize("app", ["tests.apps.basic:app", "tests.apps.asgi_basic:app"])
def test_the_default_class_serves_https_too(start_server, certs, app):
    server = start_server(app, *certs.flags())  # (auto: the class the app's interface picks)
    server.url = server.url.replace("http://", "https://")
    assert report(server, certs.client_context())


@pytest.mark.parametrize("served", KEEPING_ALIVE)
def test_keep_alive_carries_several_requests_over_one_tls_connection(start_server, certs,
                                                                     served):
    server = start_tls(start_server, served, *certs.flags())
    with tls_socket(server, certs.client_context()) as sock:
        pids = set()
        for _ in range(3):
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, headers, body = split_response(read_response(sock))
            assert status == 200 and headers.get("connection") != "close"
            pids.add(body)
    assert len(pids) == 1


def test_the_sync_class_answers_one_request_per_tls_connection_and_says_close(start_server,
                                                                               certs):
    server = start_tls(start_server, "sync", *certs.flags())
    with tls_socket(server, certs.client_context()) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = split_response(read_until_closed(sock))
    assert (status, headers["connection"], body) == (200, "close", b"hello")


def test_a_response_body_larger_than_a_tls_record_arrives_whole(start_server, certs):
    server = start_tls(start_server, "thread", *certs.flags())
    payload = b"x" * 300_000
    response = httpx.post(server.url + "/echo", content=payload, verify=certs.client_context(),
                          timeout=10)
    assert response.content == payload


def test_a_websocket_over_wss_echoes(start_server, certs):
    server = start_tls(start_server, "asgi", *certs.flags())
    url = f"wss://localhost:{server.port}/ws/echo"
    with connect(url, ssl=certs.client_context(), open_timeout=10) as websocket:
        websocket.send("over TLS")
        assert websocket.recv(timeout=10) == "over TLS"


def test_alpn_offers_http_1_1_to_openssl_s_client(start_server, certs):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    server = start_tls(start_server, "thread", *certs.flags())
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-alpn", "h2,http/1.1",
         "-CAfile", str(certs.ca_file), "-servername", "localhost", "-ign_eof"],
        input="GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, text=True, timeout=20)
    assert "ALPN protocol: http/1.1" in done.stdout
    assert "Verify return code: 0 (ok)" in done.stdout
    assert "HTTP/1.1 200 OK" in done.stdout


@pytest.mark.parametrize("served", ("thread", "asgi"))
def test_a_client_below_the_minimum_tls_version_is_refused(start_server, certs, served):
    server = start_tls(start_server, served, *certs.flags("--tls-min-version", "1.3"))
    old = certs.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/", verify=old, timeout=10)
    assert httpx.get(server.url + "/", verify=certs.client_context(), timeout=10).status_code == 200


# --- mutual TLS ----------------------------------------------------------------------

@pytest.mark.parametrize("served", SERVED)
def test_mutual_tls_gives_the_app_the_client_certificate(start_server, certs, served):
    server = start_tls(start_server, served, *certs.mutual_flags())
    seen = report(server, certs.client_context(certs.client))
    leaf = certs.client.read_text().split("-----BEGIN CERTIFICATE-----")[1]
    if served == "asgi":
        tls = seen["extensions"]["tls"]
        assert tls["client_cert_name"].startswith("CN=client one,")
        assert leaf in tls["client_cert_chain"][0]
        assert tls["client_cert_error"] is None
        assert "-----BEGIN CERTIFICATE-----" in tls["server_cert"]
        assert isinstance(tls["cipher_suite"], int)
    else:
        assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS"
        assert seen["SSL_CLIENT_S_DN"].startswith("CN=client one,")
        assert leaf in seen["SSL_CLIENT_CERT"]


def refused(server, context: ssl.SSLContext) -> bool:
    """Whether the server refuses this client in the handshake (with TLS 1.3 the
    client learns it when it reads its answer)."""
    try:
        httpx.get(server.url + "/", verify=context, timeout=10)
    except httpx.TransportError:
        return True
    return False


@pytest.mark.parametrize("served", SERVED)
def test_mutual_tls_refuses_a_client_without_a_certificate(start_server, certs, served):
    server = start_tls(start_server, served, *certs.mutual_flags())
    assert refused(server, certs.client_context())
    assert report(server, certs.client_context(certs.client))  # (the worker serves on)


@pytest.mark.parametrize("served", ("sync", "thread", "asgi"))
def test_mutual_tls_refuses_a_certificate_from_another_ca(start_server, certs, served):
    server = start_tls(start_server, served, *certs.mutual_flags())
    assert refused(server, certs.client_context(certs.stranger))


@pytest.mark.parametrize("served", ("sync", "thread", "asgi"))
def test_mutual_tls_refuses_an_expired_certificate(start_server, certs, served):
    server = start_tls(start_server, served, *certs.mutual_flags())
    assert refused(server, certs.client_context(certs.expired))


def test_optional_client_certificates_let_a_client_without_one_in(start_server, certs):
    server = start_tls(start_server, "thread", *certs.mutual_flags("optional"))
    assert report(server, certs.client_context())["SSL_CLIENT_VERIFY"] == "NONE"
    assert report(server, certs.client_context(certs.client))["SSL_CLIENT_VERIFY"] == "SUCCESS"


# --- the handshake --------------------------------------------------------------

@pytest.mark.parametrize("served", ("sync", "thread", "asgi"))
def test_a_client_that_never_says_hello_is_closed_by_the_header_timeout(start_server, certs,
                                                                         served):
    server = start_tls(start_server, served, *certs.flags("--header-timeout", "1"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as silent:
        assert read_until_closed(silent) == b""


@pytest.mark.parametrize("served", ("thread", "asgi"))
def test_stalled_handshakes_do_not_hold_up_other_clients(start_server, certs, served):
    server = start_tls(start_server, served, *certs.flags("--threads", "2"))
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
    try:
        assert report(server, certs.client_context())
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("served", ("thread", "asgi"))
def test_connections_in_their_handshake_count_against_worker_connections(start_server, certs,
                                                                         served):
    server = start_tls(start_server, served, *certs.flags("--worker-connections", "5",
                                                          "--header-timeout", "120"))
    # (The listener is the arbiter's: it accepts before the worker is forked.)
    pids = wait_for(server.worker_pids, message="the worker")
    worker = psutil.Process(next(iter(pids)))
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        # The worker takes 5 (plus its listener) and leaves the rest in the kernel's queue.
        wait_for(lambda: len(worker.net_connections()) >= 6, message="5 connections taken")
        seen = [len(worker.net_connections()) for _ in range(20)]
        assert max(seen) == 6
    finally:
        for sock in silent:
            sock.close()
    assert report(server, certs.client_context())  # (room again: accepting resumed)


@pytest.mark.parametrize("served", ("thread", "asgi"))
def test_a_connection_whose_handshake_is_under_way_at_a_stop_is_served(start_server, certs,
                                                                       served):
    server = start_tls(start_server, served, *certs.flags())
    (pid,) = server.wait_workers(1)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    wait_for(lambda: len(psutil.Process(pid).net_connections()) >= 2, message="the accept")
    server.send(signal.SIGTERM)
    # The handshake begins once the worker has had the stop: the arbiter passes
    # TERM on as it logs it, and a loaded machine may take a moment more.
    wait_for(lambda: "Received TERM: stopping gracefully" in server.log(), message="the stop")
    threading.Event().wait(0.5)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = split_response(read_until_closed(sock))
    assert (status, headers["connection"]) == (200, "close")
    assert server.stop() == 0


@pytest.mark.parametrize("served", ("sync", "thread", "asgi"))
def test_a_failed_handshake_is_one_debug_line_and_the_worker_serves_on(start_server, certs,
                                                                       served):
    server = start_tls(start_server, served, *certs.flags("--log-level", "debug"))
    # Plain HTTP to the TLS port, then a client that trusts another CA.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        read_until_closed(plain)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/", verify=Certificates.trusting(trustme.CA()), timeout=10)
    assert report(server, certs.client_context())
    wait_for(lambda: server.log().count("TLS handshake") >= 1, message="the debug line")
    assert "Traceback" not in server.log()
    assert "[ERROR]" not in server.log()


@pytest.mark.parametrize("served", ("sync", "thread"))
def test_clients_that_reset_before_their_handshake_do_not_upset_the_worker(start_server, certs,
                                                                           served):
    server = start_tls(start_server, served, *certs.flags("-w", "1"))
    (pid,) = server.wait_workers(1)
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # (a reset, maybe before the worker accepts it)
    assert report(server, certs.client_context())
    assert server.worker_pids() == {pid}
    assert "Traceback" not in server.log() and "[ERROR]" not in server.log()


# --- certificates on the way in ----------------------------------------------------

def served_certificate(port: int, certs: Certificates) -> str:
    context = certs.client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der)


def same_certificate(a: str, b: str) -> bool:
    return ssl.PEM_cert_to_DER_cert(a) == ssl.PEM_cert_to_DER_cert(b)


@pytest.mark.parametrize("served", ("thread", "asgi"))
def test_hup_takes_up_certificate_files_replaced_in_place(start_server, tmp_path, served):
    certs = Certificates(tmp_path / "rotating")  # (its own files: this test rewrites them)
    server = start_tls(start_server, served, *certs.flags())
    before = served_certificate(server.port, certs)
    renewed = certs.issue_server_certificate()
    assert not same_certificate(before, renewed)
    server.send(signal.SIGHUP)
    wait_for(lambda: same_certificate(served_certificate(server.port, certs), renewed),
             message="the renewed certificate to be served")


def test_a_reload_with_a_broken_certificate_keeps_the_running_workers(start_server, tmp_path):
    certs = Certificates(tmp_path / "broken")
    server = start_tls(start_server, "thread", *certs.flags())
    before = served_certificate(server.port, certs)
    certs.server_key.write_text("not a key\n")
    server.send(signal.SIGHUP)
    wait_for(lambda: "Reload aborted" in server.log(), message="the reload to be refused")
    assert "--certfile / --keyfile" in server.log()
    assert same_certificate(served_certificate(server.port, certs), before)


# A certificate setting TLS cannot load is refused as the arbiter starts: from a
# real process, in one line (exit 1); the other cases load it here.
def test_a_missing_certificate_file_is_one_line(tmp_path):
    line = one_line_error("--certfile", str(tmp_path / "nowhere.pem"))
    assert "--certfile" in line and "No such file" in line


def test_a_key_that_is_not_the_certificates_is_refused(certs, tmp_path):
    other = trustme.CA().issue_cert("localhost")
    key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(key))
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        tls.load(parsed("--certfile", str(certs.server_cert), "--keyfile", str(key)))


def encrypted_key(certs: Certificates, path: Path, password: bytes) -> Path:
    """The server's key at `path`, encrypted with `password` (PKCS #8, AES-256)."""
    key = serialization.load_pem_private_key(certs.server_key.read_bytes(), None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(password)))
    return path


def test_an_encrypted_key_without_its_password_is_refused(certs, tmp_path):
    key = encrypted_key(certs, tmp_path / "encrypted.key", b"secret")
    with pytest.raises(ConfigError, match="--keyfile-password"):
        tls.load(parsed("--certfile", str(certs.server_cert), "--keyfile", str(key)))


def test_an_encrypted_key_with_its_password_serves(start_server, certs, tmp_path):
    key = encrypted_key(certs, tmp_path / "encrypted.key", b"secret")
    server = start_tls(start_server, "sync", "--certfile", str(certs.server_cert), "--keyfile",
                       str(key), "--keyfile-password", "secret")
    assert report(server, certs.client_context())


@pytest.mark.parametrize("flag", ["--certfile", "--keyfile", "--ca-certs"])
def test_a_file_that_is_no_regular_file_is_refused_at_once(certs, tmp_path, flag):
    fifo = tmp_path / "cert.fifo"
    os.mkfifo(fifo)
    files = {"--certfile": str(certs.server_cert), flag: str(fifo)}
    with pytest.raises(ConfigError, match=f"^{flag}: '{fifo}' is a FIFO, not a regular file"):
        tls.load(parsed(*(item for pair in files.items() for item in pair)))


def test_unknown_ciphers_are_refused(certs):
    with pytest.raises(ConfigError, match="--ciphers"):
        tls.load(parsed(*certs.flags("--ciphers", "NO-SUCH-CIPHER")))


def test_the_listening_line_says_https(start_server, certs):
    server = start_tls(start_server, "thread", *certs.flags())
    wait_for(lambda: f"Listening at: https://127.0.0.1:{server.port}" in server.log(),
             message="the listening line")



# --- the settings ------------------------------------------------------------------

def parsed(*argv: str) -> config.Config:
    args = vars(build_parser().parse_args(["run", "app:app", *argv]))
    args.pop("command")
    return sources.load(args, {}).config


def test_uvicorns_ssl_spellings_give_the_same_settings():
    native = parsed("--certfile", "c.pem", "--keyfile", "k.pem", "--keyfile-password", "pw",
                    "--ca-certs", "ca.pem", "--cert-reqs", "required", "--ciphers", "ECDHE")
    alias = parsed("--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem",
                   "--ssl-keyfile-password", "pw", "--ssl-ca-certs", "ca.pem",
                   "--ssl-cert-reqs", "2", "--ssl-ciphers", "ECDHE")
    assert native == alias


@pytest.mark.parametrize(("given", "meant"), [("0", "none"), ("1", "optional"),
                                              ("2", "required"), ("Optional", "optional")])
def test_cert_reqs_takes_the_ssl_modules_numbers_and_names(given, meant):
    assert parsed("--certfile", "c.pem", "--ca-certs", "ca.pem", "--cert-reqs",
                  given).cert_reqs == meant


@pytest.mark.parametrize("given", ["1.3", "TLSv1.3", "TLSv1_3"])
def test_the_minimum_tls_version_takes_its_usual_spellings(given):
    assert parsed("--certfile", "c.pem", "--tls-min-version", given).tls_min_version == "1.3"


@pytest.mark.parametrize("flags", [("--keyfile", "k.pem"), ("--ca-certs", "ca.pem"),
                                   ("--cert-reqs", "required")])
def test_tls_settings_without_a_certificate_are_an_error(flags):
    with pytest.raises(ConfigError, match="needs --certfile"):
        parsed(*flags)


def test_required_client_certificates_need_the_cas_to_check_them():
    with pytest.raises(ConfigError, match="needs --ca-certs"):
        parsed("--certfile", "c.pem", "--cert-reqs", "required")


def test_cas_without_asking_for_client_certificates_are_a_warning():
    args = {"app": "app:app", "certfile": "c.pem", "ca_certs": "ca.pem"}
    assert any("--ca-certs" in warning for warning in sources.load(args, {}).warnings)


# --- what the app is told ----------------------------------------------------------

def test_a_subject_is_written_most_specific_part_first_with_rfc_4514_escapes():
    subject = ((("countryName", "NL"),), (("organizationName", "Acme, Inc."),),
               (("commonName", " #1 client"),))
    assert distinguished_name(subject) == "CN=\\ #1 client,O=Acme\\, Inc.,C=NL"


def test_the_wsgi_keys_follow_mod_ssl():
    environ = wsgi_environ({"tls_version": 0x0304, "cipher_suite": 0x1301,
                            "client_cert_chain": ["PEM"], "client_cert_name": "CN=a"})
    assert environ == {"HTTPS": "on", "SSL_PROTOCOL": "TLSv1.3",
                       "SSL_CIPHER": "TLS_AES_128_GCM_SHA256", "SSL_CLIENT_VERIFY": "SUCCESS",
                       "SSL_CLIENT_CERT": "PEM", "SSL_CLIENT_S_DN": "CN=a"}
