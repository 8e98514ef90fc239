"""hybrid.wsgi without sockets: wsgi.input and the start_response rules."""

from __future__ import annotations

import sys

import pytest

from hybrid.protocol import Request
from hybrid.workers.wsgi_runner import FramingResponder
from hybrid import wsgi, wsgi_environ, wsgi_input
from hybrid.wsgi import run
from hybrid.wsgi_environ import build_environ
from hybrid.wsgi_input import BodyReadError, InputStream


@pytest.fixture
def emptied_caches():
    """The memos of status lines, header lists, hosts and environ keys, empty for
    the test and emptied again after it (a test that fills one to its bound
    would leave the rest of the run nothing to remember)."""
    caches = (wsgi._STATUSES, wsgi._ENCODED_HEADERS, wsgi_environ._HOSTS,
              wsgi_environ._ENVIRON_KEYS)
    for cache in caches:
        cache.clear()
    yield
    for cache in caches:
        cache.clear()


def stream(*pieces: bytes, fail: bool = False) -> InputStream:
    queue = list(pieces)

    def receive() -> bytes:
        if queue:
            return queue.pop(0)
        if fail:
            raise BodyReadError(400, "cut short")
        return b""

    return InputStream(receive)


def test_read_with_size_spans_pieces():
    body = stream(b"ab", b"cd", b"ef")
    assert body.read(3) == b"abc"
    assert body.read(10) == b"def"
    assert body.read(1) == b""


def test_read_all_after_partial_read():
    body = stream(b"ab", b"cd")
    assert body.read(1) == b"a"
    assert body.read() == b"bcd"


def test_readline_respects_size_and_pieces():
    body = stream(b"hel", b"lo\nwor", b"ld\n", b"tail")
    assert body.readline(2) == b"he"
    assert body.readline() == b"llo\n"
    assert body.readline() == b"world\n"
    assert body.readline() == b"tail"
    assert body.readline() == b""


def test_readlines_and_iteration():
    assert stream(b"a\nb\n", b"c").readlines() == [b"a\n", b"b\n", b"c"]
    assert list(stream(b"x\ny")) == [b"x\n", b"y"]


def test_the_input_of_a_request_without_a_body_is_at_its_end():
    body = wsgi_input.EmptyInput()
    assert (body.read(), body.read(5), body.readline(), body.readlines(), list(body)) \
        == (b"", b"", b"", [], [])
    assert body.error is None


def test_truncated_body_raises_instead_of_ending():
    body = stream(b"partial", fail=True)
    with pytest.raises(BodyReadError):
        body.read()


REQUEST = Request("GET", b"/p?q=1", b"/p", b"q=1", "1.1", [(b"host", b"example.com:81")],
                  True, False, False)


def _no_sendfile(file, count):
    raise AssertionError("no sendfile in these tests")


def serve(app, request=REQUEST):
    sent: list[bytes] = []
    environ = build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    responder = FramingResponder(request, sent.append, _no_sendfile,
                                 may_persist=lambda request, willing: True,
                                 server_willing=True)
    outcome = run(app, environ, responder)
    return outcome, b"".join(sent)


def test_server_name_and_port_come_from_host():
    environ = build_environ(REQUEST, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "81")


def _environ_for_host(host: bytes, scheme: str = "http") -> dict:
    request = REQUEST._replace(headers=[(b"host", host)])
    return build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"),
                         url_scheme=scheme)


def test_a_host_seen_before_names_the_server_as_the_first_time(emptied_caches):
    for _ in range(2):
        environ = _environ_for_host(b"[::1]:")
        assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("[::1]", "80")


def test_the_same_host_under_another_scheme_gets_that_schemes_port(emptied_caches):
    assert _environ_for_host(b"example.com")["SERVER_PORT"] == "80"
    assert _environ_for_host(b"example.com", "https")["SERVER_PORT"] == "443"


def test_hosts_are_remembered_for_a_bounded_number_of_names(emptied_caches):
    for n in range(2 * wsgi_environ._HOSTS.entries):
        assert _environ_for_host(b"h%d:%d" % (n, n))["SERVER_NAME"] == "h%d" % n
    assert len(wsgi_environ._HOSTS) == wsgi_environ._HOSTS.entries


def test_status_lines_are_remembered_for_a_bounded_number(emptied_caches):
    for n in range(2 * wsgi._STATUSES.entries):
        status = f"200 reason {n}"

        def app(environ, start_response, status=status):
            start_response(status, [("Content-Length", "0")])
            return []

        outcome, sent = serve(app)
        assert outcome.status == 200 and sent.startswith(b"HTTP/1.1 200 reason %d\r\n" % n)
    assert len(wsgi._STATUSES) == wsgi._STATUSES.entries


def test_a_status_that_is_no_str_is_refused_every_time():
    def app(environ, start_response):
        start_response(b"200 OK", [])
        return [b"x"]

    for _ in range(2):
        outcome, sent = serve(app)
        assert outcome.status == 500


def test_the_same_header_list_gets_each_bodys_own_content_length(emptied_caches):
    for body in (b"short", b"a longer body"):
        def app(environ, start_response, body=body):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        outcome, sent = serve(app)
        assert b"content-length: %d\r\n" % len(body) in sent and sent.endswith(body)
    assert len(wsgi._ENCODED_HEADERS) == 1


def test_a_header_list_that_cannot_be_sent_is_refused_every_time(emptied_caches):

    def app(environ, start_response):
        start_response("200 OK", [("X-Name", "\u20ac")])  # (no Latin-1 for it)
        return [b"x"]

    for _ in range(2):
        outcome, sent = serve(app)
        assert outcome.status == 500
    assert not wsgi._ENCODED_HEADERS


def test_header_pairs_given_as_lists_are_sent_and_not_remembered(emptied_caches):

    def app(environ, start_response):
        start_response("200 OK", [["X-Pair", "list"]])
        return [b"x"]

    for _ in range(2):
        outcome, sent = serve(app)
        assert outcome.status == 200 and b"X-Pair: list\r\n" in sent
    assert not wsgi._ENCODED_HEADERS


def test_header_lists_are_remembered_for_a_bounded_number(emptied_caches):
    for n in range(2 * wsgi._ENCODED_HEADERS.entries):
        def app(environ, start_response, n=n):
            start_response("200 OK", [("X-N", str(n))])
            return [b"x"]

        outcome, sent = serve(app)
        assert b"X-N: %d\r\n" % n in sent
        assert len(wsgi._ENCODED_HEADERS) <= wsgi._ENCODED_HEADERS.entries


def test_a_one_piece_answer_cut_by_the_client_is_not_followed_by_a_500():
    class Body(list):
        def close(self):
            raise RuntimeError("a request_finished handler failed")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"hello"])

    writes: list[bytes] = []

    def send(data: bytes) -> None:
        writes.append(data)
        raise TimeoutError("the client reads too slowly")

    environ = build_environ(REQUEST, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    responder = FramingResponder(REQUEST, send, _no_sendfile,
                                 may_persist=lambda request, willing: True,
                                 server_willing=True)
    outcome = run(app, environ, responder)
    assert outcome.status == 200 and not outcome.keep_alive
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200")


def test_header_keys_are_remembered_for_a_bounded_number_of_names(emptied_caches):
    names = [b"x-random-%d" % n for n in range(2 * wsgi_environ._ENVIRON_KEYS.entries)]
    request = REQUEST._replace(headers=[*REQUEST.headers, *((name, b"v") for name in names)])
    environ = build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    assert environ["HTTP_X_RANDOM_2047"] == "v"  # (past the bound: worked out, not kept)
    assert len(wsgi_environ._ENVIRON_KEYS) <= wsgi_environ._ENVIRON_KEYS.entries


def test_long_header_names_are_not_remembered(emptied_caches):
    name = b"x-" + b"n" * wsgi_environ._ENVIRON_NAME_MAX
    request = REQUEST._replace(headers=[*REQUEST.headers, (name, b"v")])
    environ = build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    assert environ["HTTP_X_" + "N" * wsgi_environ._ENVIRON_NAME_MAX] == "v"
    assert name not in wsgi_environ._ENVIRON_KEYS


def test_a_bytearray_header_name_from_a_scope_is_read_like_bytes():
    request = REQUEST._replace(headers=[*REQUEST.headers, (bytearray(b"accept"), b"a")])
    environ = build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    assert environ["HTTP_ACCEPT"] == "a"


def test_repeated_fields_combine_and_content_fields_are_bare():
    request = REQUEST._replace(headers=[
        *REQUEST.headers, (b"accept", b"a"), (b"accept", b"b"), (b"cookie", b"c=1"),
        (b"cookie", b"d=2"), (b"content-length", b"5"), (b"content-length", b"5"),
        (b"x_forwarded_for", b"spoofed")])
    environ = build_environ(request, stream(), server=("0.0.0.0", "80"), client=("1.2.3.4", "5"))
    assert (environ["HTTP_ACCEPT"], environ["HTTP_COOKIE"]) == ("a,b", "c=1; d=2")
    assert environ["CONTENT_LENGTH"] == "5" and "HTTP_CONTENT_LENGTH" not in environ
    assert "HTTP_X_FORWARDED_FOR" not in environ


def test_second_start_response_without_exc_info_is_an_error():
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b"x"]

    outcome, raw = serve(app)
    assert outcome.status == 500 and raw.startswith(b"HTTP/1.1 500")


def test_exc_info_after_the_head_was_sent_reraises():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"started")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())
        return []

    outcome, raw = serve(app)
    assert raw.startswith(b"HTTP/1.1 200") and outcome.keep_alive is False


def test_non_bytes_body_is_a_500():
    def app(environ, start_response):
        start_response("200 OK", [])
        return ["text, not bytes"]

    outcome, raw = serve(app)
    assert outcome.status == 500


def test_app_returning_without_start_response_is_a_500():
    outcome, raw = serve(lambda environ, start_response: [])
    assert outcome.status == 500


def test_close_is_called_when_iteration_fails():
    closed = []

    class Body:
        def __iter__(self):
            yield b"a"
            raise RuntimeError("boom")

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    outcome, raw = serve(app)
    assert closed == [True]
    assert outcome.keep_alive is False


def test_generator_may_call_start_response_lazily():
    def app(environ, start_response):
        start_response("201 Created", [("X-Late", "yes")])
        yield b"made"

    outcome, raw = serve(app)
    assert raw.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"X-Late: yes" in raw and raw.endswith(b"4\r\nmade\r\n0\r\n\r\n")


def test_invalid_status_is_a_500():
    def app(environ, start_response):
        start_response("OK", [])
        return [b""]

    assert serve(app)[0].status == 500


@pytest.mark.parametrize("headers, complaint", [
    ([("X-Ok", "1"), (b"X-Bytes", "1")], "must be str"),
    ([("X-Ok", "1"), ("X-Number", 5)], "must be str"),
    ([("X-Three", "1", "2")], "(name, value) str pairs, got an item tuple ('X-Three', '1', '2')"),
    ([("X-Price", "€5")], "latin-1"),
])
def test_a_malformed_header_list_is_a_500_saying_what_is_wrong(headers, complaint, caplog):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b"x"]

    outcome, sent = serve(app)
    assert outcome.status == 500 and sent.startswith(b"HTTP/1.1 500")
    assert complaint in caplog.text


# --- an app's wrong types: one line naming the mistake -------------------------------

def _status_200_as_int(environ, start_response):
    start_response(200, [("Content-Type", "text/plain")])
    return [b"x"]


def _headers_as_a_dict(environ, start_response):
    start_response("200 OK", {"Content-Type": "text/plain"})
    return [b"x"]


def _headers_as_bytes(environ, start_response):
    start_response("200 OK", b"Content-Type: text/plain")
    return [b"x"]


def _a_body_that_yields_str(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield "text, not bytes"


@pytest.mark.parametrize("app, mistake", [
    (_status_200_as_int, "start_response() status must be a str like '200 OK', got int 200"),
    (_headers_as_a_dict, "start_response() headers must be a list of (name, value) str pairs, "
                         "got dict {'Content-Type': 'text/plain'}"),
    (_headers_as_bytes, "start_response() headers must be a list of (name, value) str pairs, "
                        "got bytes b'Content-Type: text/plain'"),
    (_a_body_that_yields_str, "the response body must be bytes (what the iterable yields, "
                              "or write() takes), got str 'text, not bytes'"),
])
def test_a_wrong_type_from_the_app_is_one_error_line_naming_the_mistake(app, mistake, caplog):
    for _ in range(2):  # (the second time, past the server's caches)
        caplog.clear()
        outcome, sent = serve(app)
        assert outcome.status == 500 and sent.startswith(b"HTTP/1.1 500")
        (record,) = caplog.records
        assert record.levelname == "ERROR" and record.exc_info is None
        assert record.getMessage().startswith(f"WSGI app error (GET /p?q=1): {mistake}")
        assert "\n" not in record.getMessage()


def test_a_mistake_in_start_response_names_the_apps_line(caplog):
    serve(_status_200_as_int)
    line = _status_200_as_int.__code__.co_firstlineno + 1
    assert caplog.records[0].getMessage().endswith(
        f"(at {__file__}, line {line}, in _status_200_as_int)")


# --- write() from the iterable's close() --------------------------------------------

class _WritesOnClose:
    """A streamed body whose close() writes (as a careless middleware might)."""

    def __init__(self, write, *, start_response=None):
        self.write = write
        self.start_response = start_response

    def __iter__(self):
        yield b"body"

    def close(self):
        if self.start_response is not None:
            self.write = self.start_response("200 OK", [])
        self.write(b"late")
        self.write(b"later")


def test_a_write_from_close_is_dropped_after_the_terminating_chunk(caplog):
    def app(environ, start_response):
        return _WritesOnClose(start_response("200 OK", [("Content-Type", "text/plain")]))

    outcome, sent = serve(app)
    assert sent.endswith(b"\r\n\r\n4\r\nbody\r\n0\r\n\r\n")
    assert outcome.status == 200 and outcome.keep_alive
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "write() called from the response's close() in GET /p?q=1" in record.getMessage()


def test_a_write_from_close_after_a_failed_body_leaves_the_500_alone(caplog):
    class Failing(_WritesOnClose):
        def __iter__(self):
            raise RuntimeError("the body failed")

    def app(environ, start_response):
        return Failing(start_response("200 OK", []))

    outcome, sent = serve(app)
    assert outcome.status == 500 and sent.startswith(b"HTTP/1.1 500")
    assert b"late" not in sent


def test_nothing_is_framed_after_the_terminating_chunk_even_after_a_new_start_response():
    def app(environ, start_response):
        return _WritesOnClose(start_response("200 OK", []), start_response=start_response)

    outcome, sent = serve(app)
    assert sent.endswith(b"4\r\nbody\r\n0\r\n\r\n")


def test_headers_given_as_a_generator_are_all_sent():
    def app(environ, start_response):
        start_response("200 OK", ((name, value) for name, value in
                                  [("Content-Type", "text/plain"), ("X-Custom", "yes")]))
        return [b"ok"]

    outcome, sent = serve(app)
    assert outcome.status == 200
    assert b"Content-Type: text/plain\r\n" in sent and b"X-Custom: yes\r\n" in sent


def test_a_lazy_app_that_swallows_a_failed_read_has_its_answer_replaced_by_the_4xx():
    def app(environ, start_response):
        try:
            environ["wsgi.input"].read()
        except OSError:
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"the app's answer"

    sent: list[bytes] = []
    environ = build_environ(REQUEST, stream(b"part", fail=True), server=("0.0.0.0", "80"),
                            client=("1.2.3.4", "5"))
    responder = FramingResponder(REQUEST, sent.append, _no_sendfile,
                                 may_persist=lambda request, willing: True,
                                 server_willing=True)
    outcome = run(app, environ, responder)
    assert outcome.status == 400 and not outcome.keep_alive
    assert b"the app's answer" not in b"".join(sent)
