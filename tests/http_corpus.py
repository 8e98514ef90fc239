"""A fuzz corpus of HTTP/1.1 requests for the sans-IO core (hybrid/protocol/).

Two things live here, and no test:

* SEEDS: named raw requests, taken from the conformance cases of
  tests/test_protocol.py, tests/test_http_conformance.py and
  tests/test_protocol_decisions.py: the valid ones (GET, POST, chunked,
  pipelined, absolute-form, HTTP/1.0, Expect: 100-continue, Upgrade,
  CONNECT...) and the hostile ones (CL+TE smuggling, duplicate
  Content-Length, obs-fold, bare LF or CR, NUL and other controls, bad chunk
  sizes and extensions, oversized fields, bad versions, whitespace before a
  colon, methods that are no token...); and the smallest inputs this corpus
  found decided differently depending on where the reads split them. A seed
  whose name begins with "tight-" is read under TIGHT_LIMITS rather than the
  defaults (`limits_for`), so that the body limit, and limits near small
  numbers, are reached by short inputs.
* `corpus(size, seed)`: the seeds, then `size` mutants of them, named
  `seedname~N`, each the same for the same arguments (a seeded
  `random.Random`): bytes flipped, CR/LF/NUL/SP/HTAB/':'/',' inserted,
  field lines duplicated, dropped or swapped, truncation, two seeds spliced
  (pipelining), case changes, Content-Length values and chunk sizes near and
  past the body, and numbers and sizes near the limits (`Limits`).

tests/decisions.py feeds them to the parser and writes down what it decided.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from hybrid.protocol.head import DEFAULT_LIMITS, Limits

TIGHT_LIMITS = Limits(request_line=64, fields=8, field_size=96, body=32)
"""The limits a seed named "tight-..." (and its mutants) is parsed under."""

HOST = b"Host: x\r\n"
CHUNKED = b"Transfer-Encoding: chunked"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
UPGRADE = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
EXPECTING = b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def head(*fields: bytes, line: bytes = b"POST / HTTP/1.1", host: bool = True) -> bytes:
    """A request head: `line`, a Host field (unless not `host`), `fields`, the blank line."""
    return line + b"\r\n" + (HOST if host else b"") + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def get(*fields: bytes, target: bytes = b"/") -> bytes:
    return head(*fields, line=b"GET " + target + b" HTTP/1.1")


def chunked(body: bytes, *fields: bytes) -> bytes:
    return head(CHUNKED, *fields) + body


def request_line(size: int, method: bytes = b"GET") -> bytes:
    """A request whose request line (CRLF not counted) is `size` bytes."""
    target = b"/" + b"a" * (size - len(method) - len(b" / HTTP/1.1"))
    return method + b" " + target + b" HTTP/1.1\r\n" + HOST + b"\r\n"


def field_line(size: int) -> bytes:
    """A GET with an "X-Big: vvv...\\r\\n" field line of `size` bytes, CRLF counted."""
    return get(b"X-Big: " + b"v" * (size - len(b"X-Big: \r\n")))


def many_fields(count: int) -> bytes:
    """A GET with `count` field lines, Host included."""
    return get(*(b"X-%d: v" % i for i in range(count - 1)))


def _valid_seeds() -> dict[str, bytes]:
    return {
        "get": b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing: v\r\n\r\n",
        "get-connection-close": get(b"Connection: close"),
        "http10-get": b"GET / HTTP/1.0\r\n\r\n",
        "http10-keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "http10-post": b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        "post-content-length": head(b"Content-Length: 11") + b"hello world",
        "post-length-leading-zeros": head(b"Content-Length: 003") + b"abc",
        "post-length-zero": head(b"Content-Length: 0"),
        "post-same-length-twice": head(b"Content-Length: 3", b"Content-Length: 3") + b"abc",
        "post-length-list-repeated": head(b"Content-Length: 3, 3") + b"abc",
        "post-body-incomplete": head(b"Content-Length: 10") + b"abc",
        "post-head-only": head(b"Content-Length: 1000"),
        "chunked-trailers": chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        "chunked-extensions": chunked(b'5;a=1;b;c="x"\r\nhello\r\n0\r\n\r\n'),
        "chunked-extension-spaces": chunked(b"5 ; name = value\r\nhello\r\n0\r\n\r\n"),
        "chunked-extension-tabs": chunked(b"5\t;\tname\t=\tvalue\r\nhello\r\n0\r\n\r\n"),
        "chunked-extension-quoted": chunked(b'5;name="quoted \\" value"\r\nhello\r\n0\r\n\r\n'),
        "chunked-size-leading-zeros": chunked(b"0005\r\nhello\r\n0000\r\n\r\n"),
        "chunked-coding-case": head(b"Transfer-Encoding: ChUnKeD") + b"1\r\nx\r\n0\r\n\r\n",
        "chunked-trailers-allowed": chunked(b"5\r\nhello\r\n0\r\nContent-Type: text/plain\r\n"
                                            b"Vary: *\r\nCookie: a=1\r\n\r\n"),
        "chunked-incomplete": chunked(b"5\r\nhello\r\n3\r\nab"),
        "chunked-incomplete-size": chunked(b"5\r\nhello\r\n1"),
        "chunked-in-trailers": chunked(b"0\r\nX-Checksum: ab"),
        "chunked-request-inside": chunked(b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
        "pipelined": (head(b"Content-Length: 3", line=b"POST /1 HTTP/1.1") + b"abc" +
                      head(line=b"GET /2 HTTP/1.1") +
                      head(CHUNKED, line=b"POST /3 HTTP/1.1") + b"2\r\nhi\r\n0\r\n\r\n" +
                      head(line=b"GET /4 HTTP/1.1")),
        "pipelined-then-partial": get() + get(target=b"/next") + b"GET /third HTTP/1.1\r\nHo",
        "empty-lines-before": b"\r\n\r\n" + get(),
        "cr-lf-before": b"\r\n\n\r" + get(),
        "lf-before": b"\n" + get(),
        "expect-continue": EXPECTING,
        "expect-continue-body": EXPECTING + b"hello",
        "expect-continue-body-begun": EXPECTING + b"he",
        "expect-continue-case": head(b"Expect: 100-Continue", b"Content-Length: 1") + b"x",
        "expect-continue-http10": b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        "expect-continue-chunked": EXPECTING.replace(b"Content-Length: 5", CHUNKED),
        "expect-continue-pipelined": (head(b"Content-Length: 5", line=b"POST /echo HTTP/1.1") + b"hello" +
                                      EXPECTING),
        "expect-other": head(b"Expect: something", b"Content-Length: 1") + b"x",
        "upgrade-websocket": UPGRADE + b"\x81\x05frame",
        "upgrade-then-get": UPGRADE + get(target=b"/next"),
        "upgrade-after-a-body": head(b"Content-Length: 64") + b"b" * 64 + UPGRADE + b"\x81\x05frame",
        "upgrade-h2c-with-body": (b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
                                  b"Connection: Upgrade, HTTP2-Settings\r\n"
                                  b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello"
                                  + get(target=b"/after")),
        "upgrade-chunked-body": (b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                                 + CHUNKED + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\nrest"),
        "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\ntunnel",
        "absolute-form": b"GET http://example.com:8080/p/q?z=9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "absolute-form-no-path": b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "absolute-form-fragment": b"GET http://h/p?q#f HTTP/1.1\r\nHost: h\r\n\r\n",
        "absolute-form-fragment-in-path": b"GET http://h/p#f HTTP/1.1\r\nHost: h\r\n\r\n",
        "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "target-encoded": get(target=b"/a%2Fb%20c?q=%41"),
        "target-fragment": get(target=b"/a?b=1#frag"),
        "target-fragment-in-path": get(target=b"/a#frag"),
        "method-unknown-body": (b"BREW /pot HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\ncoffe" + get()),
        "method-unknown-chunked": b"BREW / HTTP/1.1\r\nHost: x\r\n" + CHUNKED + b"\r\n\r\n3\r\ntea\r\n0\r\n\r\n",
        "method-after-body-like-a-method": (head(b"Content-Length: 5") + b"xyAB-" +
                                            b"PROPFINDX /q HTTP/1.1\r\nHost: x\r\n\r\n"),
        "method-after-body-cr-lf": head(b"Content-Length: 4") + b"xy\r\n" + b"GET_X /q HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-unknown-after-a-get": get() + b"BREW /q HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-unknown-after-a-body": head(b"Content-Length: 2") + b"xyBREW /q HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-long-unknown": b"SET_PARAMETERX /q HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-symbols": b"~!#$%&'*+.^_`| /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-lower": b"get /p?q HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-prix": b"PRIX /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-registered": b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\nQUERY / HTTP/1.1\r\nHost: x\r\n\r\n",
        "forwarded": get(b"X-Forwarded-For: 1.2.3.4", b"Forwarded: for=1.2.3.4"),
        "keyword-request": (b"PUT /p?q=1 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                            b"X-Forwarded-For: 1.2.3.4\r\nContent-Length: 2\r\n\r\nab"),
        "values-padded": get(b"X-A: \t padded \t ", b"X-B:plain"),
        "values-obs-text": get(b"X-Name: caf\xc3\xa9"),
        "fields-listed-twice": get(b"Accept: a", b"Accept: b", b"Cache-Control: x", b"Cache-Control: y"),
        "fields-browser": get(b"User-Agent: Mozilla/5.0", b"Accept: */*", b"Accept-Encoding: gzip",
                              b"Cookie: a=1", b"Sec-Fetch-Mode: navigate", b"Content-Type: text/html",
                              b"Authorization: Basic eA=="),
        "host-ipv6": b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
        "host-empty-port": b"GET / HTTP/1.1\r\nHost: h:\r\n\r\n",
        "head-partial": b"GET / HTTP/1.1\r\nHo",
        "request-line-at-limit": request_line(4094),
        "field-line-at-limit": field_line(8190),
        "fields-at-limit": many_fields(100),
        "head-block-under-limit": get(*(b"X-%d: %s" % (i, b"v" * 1000) for i in range(60))),
    }


def _smuggling_seeds() -> dict[str, bytes]:
    return {
        "cl-te": head(b"Content-Length: 6", CHUNKED) + b"0\r\n\r\nG" + SMUGGLED,
        "te-cl": head(CHUNKED, b"Content-Length: 3") + b"8\r\nSMUGGLED\r\n0\r\n\r\n" + SMUGGLED,
        "te-xchunked": head(b"Transfer-Encoding: xchunked", b"Content-Length: 4") + b"5c\r\n" + SMUGGLED,
        "te-space-before-colon": head(b"Transfer-Encoding : chunked", b"Content-Length: 4") + b"0\r\n\r\n",
        "te-second-bogus": head(CHUNKED, b"Transfer-encoding: x") + b"0\r\n\r\n" + SMUGGLED,
        "te-leading-space": head(b"Content-Length: 4", b" Transfer-Encoding: chunked") + b"0\r\n\r\n",
        "te-vertical-tab": head(b"Transfer-Encoding:\x0bchunked", b"Content-Length: 4") + b"0\r\n\r\n",
        "te-quoted": head(b'Transfer-Encoding: "chunked"') + b"0\r\n\r\n" + SMUGGLED,
        "te-bare-lf": b"POST / HTTP/1.1\r\nHost: x\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te-nul": head(b"Transfer-Encoding: chunked\x00", b"Content-Length: 4") + b"0\r\n\r\n",
        "te-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n"
                      b"0\r\n\r\n" + SMUGGLED),
        "te-chunked-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "te-twice": head(CHUNKED, CHUNKED) + b"0\r\n\r\n",
        "te-gzip": head(b"Transfer-Encoding: gzip") + b"0\r\n\r\n",
        "te-identity": head(b"Transfer-Encoding: identity") + b"0\r\n\r\n",
        "te-chunked-gzip": head(b"Transfer-Encoding: chunked, gzip") + b"0\r\n\r\n",
        "te-chunked-chunked": head(b"Transfer-Encoding: chunked, chunked") + b"0\r\n\r\n",
        "te-gzip-chunked": head(b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n",
        "te-unknown-chunked": head(b"Transfer-Encoding: x-unknown, chunked") + b"0\r\n\r\n",
        "te-parameter": head(b"Transfer-Encoding: chunked;x=1") + b"0\r\n\r\n",
        "te-empty": head(b"Transfer-Encoding: ") + b"0\r\n\r\n",
        "te-trailing-comma": head(b"Transfer-Encoding: chunked,") + b"0\r\n\r\n",
        "cl-obs-fold": head(b"Content-Length: 0", b" 44") + SMUGGLED,
        "cl-cl": head(b"Content-Length: 0", b"Content-Length: 44") + SMUGGLED,
        "cl-differing": head(b"Content-Length: 3", b"Content-Length: 4") + b"abcd",
        "cl-list": head(b"Content-Length: 3, 4") + b"abcd",
        "cl-negative": head(b"Content-Length: -3") + b"abcd",
        "cl-hex": head(b"Content-Length: 0x3") + b"abcd",
        "cl-empty": head(b"Content-Length: ") + b"abcd",
        "cl-suffix": head(b"Content-Length: 3a") + b"abcd",
        "cl-word": head(b"Content-Length: three") + b"abcd",
        "cl-plus": head(b"Content-Length: +3") + b"abcd",
        "cl-decimal": head(b"Content-Length: 3.0") + b"abcd",
        "cl-huge": head(b"Content-Length: 99999999999999999999999") + b"abcd",
        "cl-19-digits": head(b"Content-Length: 1000000000000000000") + b"abcd",
        "cl-18-digits": head(b"Content-Length: 999999999999999999") + b"abcd",
        "chunk-extension-bare-lf": chunked(b"2;\nxx\r\n0\r\n\r\n" + SMUGGLED),
        "chunk-data-bare-lf": chunked(b"2\r\nxx\n0\r\n\r\n" + SMUGGLED),
        "chunk-size-bare-lf": chunked(b"3\nabc\r\n0\r\n\r\n"),
        "chunk-data-too-long": chunked(b"3\r\nabcdef\r\n0\r\n\r\n"),
        "chunk-size-17-digits": chunked(b"F" * 17 + b"\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-16-digits": chunked(b"FFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-sign-bit": chunked(b"8000000000000000\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-wraps": chunked(b"10000000000000003\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-15-digits": chunked(b"fffffffffffffff\r\nabc"),
        "chunk-size-hex-prefix": chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
        "chunk-size-negative": chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
        "chunk-size-leading-space": chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
        "chunk-size-trailing-space": chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
        "chunk-size-trailing-tab": chunked(b"5;a \t\r\nhello\r\n0\r\n\r\n"),
        "chunk-size-empty": chunked(b"\r\nhello\r\n0\r\n\r\n"),
        "chunk-size-not-hex": chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-unterminated": chunked(b'5;name="unterminated\r\nhello\r\n0\r\n\r\n'),
        "chunk-extension-control": chunked(b"5;name=val\x01ue\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-empty": chunked(b"5;\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-no-name": chunked(b"5;=v\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-no-value": chunked(b"5;name=\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-space-in-name": chunked(b"5;na me=v\r\nhello\r\n0\r\n\r\n"),
        "chunk-extension-nul-quoted": chunked(b'5;n="\x00"\r\nhello\r\n0\r\n\r\n'),
        "chunk-line-endless": chunked(b"5;x=" + b"y" * 5000),
        "trailer-content-length": chunked(b"0\r\nContent-Length: 5\r\nX-Kept: 1\r\n\r\n" + SMUGGLED),
        "trailer-transfer-encoding": chunked(b"0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "trailer-host": chunked(b"0\r\nHost: evil.example\r\n\r\n"),
        "trailer-trailer": chunked(b"0\r\nTrailer: x\r\n\r\n"),
        "trailer-connection": chunked(b"0\r\nconnection: close\r\n\r\n"),
        "trailer-te": chunked(b"0\r\nTE: trailers\r\n\r\n"),
        "trailer-bad-name": chunked(b"0\r\nBad Name: v\r\n\r\n"),
        "trailer-nul": chunked(b"0\r\nX: a\x00b\r\n\r\n"),
        "trailer-folded": chunked(b"0\r\nX: a\r\n folded\r\n\r\n"),
        "trailer-no-colon": chunked(b"0\r\nNoColon\r\n\r\n"),
        "trailer-bare-lf": chunked(b"0\r\nX: a\n\r\n"),
        "trailers-endless": chunked(b"0\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(110))),
        "body-malformed-after-app-read": chunked(b"5\r\nhello\r\nzz\r\n"),
    }


def _head_seeds() -> dict[str, bytes]:
    return {
        "field-space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "field-tab-before-colon": get(b"X-Name\t: v"),
        "field-name-space": get(b"Bad Name: v"),
        "field-name-parenthesis": get(b"Bad(Name): v"),
        "field-no-name": get(b": no name"),
        "field-no-colon": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        "field-nul": get(b"X: a\x00b"),
        "field-lone-cr": get(b"X: a\rb"),
        "field-del": get(b"X: a\x7fb"),
        "field-control": get(b"X: a\x01b"),
        "obs-fold": get(b"X: a", b"  b"),
        "obs-fold-first-line": b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        "singleton-twice": head(b"Content-Type: text/plain", b"CONTENT-TYPE: text/plain"),
        "authorization-twice": head(b"Authorization: Basic eA==", b"authorization: Basic eA=="),
        "host-missing": b"GET / HTTP/1.1\r\n\r\n",
        "host-twice": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "host-twice-http10": b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        "host-space": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "host-slash": b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "host-userinfo": b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "host-port-letters": b"GET / HTTP/1.1\r\nHost: example.com:abc\r\n\r\n",
        "host-ipv6-bad-port": b"GET / HTTP/1.1\r\nHost: [::1]:x\r\n\r\n",
        "host-two-colons": b"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n",
        "host-valid-then-invalid": b"GET / HTTP/1.1\r\nHost: h:80\r\n\r\nGET / HTTP/1.1\r\nHost: h:8x\r\n\r\n",
        "lf-after-request-line": b"GET / HTTP/1.1\nHost: x\r\n\r\n",
        "lf-after-field": b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        "lf-blank-line": b"GET / HTTP/1.1\r\nHost: x\r\n\n",
        "lf-everywhere": b"GET / HTTP/1.1\nHost: x\n\n",
        "cr-in-request-line": b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-rtsp-play": b"PLAY /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-rtsp-setup": b"SETUP /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-rtsp-teardown": b"TEARDOWN /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-rtsp-get-parameter": b"GET_PARAMETER /p HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-parenthesis": b"BR(W / HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-tab": b"BREW\t/ HTTP/1.1\r\n\r\n",
        "method-utf8": b"BR\xc3\xa9W / HTTP/1.1\r\n\r\n",
        "method-alone": b"BREW\r\n\r\n",
        "method-missing": b" / HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-missing-after-crlf": b"\r\n / HTTP/1.1\r\nHost: x\r\n\r\n",
        "method-endless": b"A" * 5000,
        "method-garbage": b"G(T / HTTP/1.1\r\n\r\n",
        "tls-client-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "absolute-form-bad-port": b"GET http://h:x/p HTTP/1.1\r\nHost: h\r\n\r\n",
        "authority-form-for-get": b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        "connect-origin-form": b"CONNECT /path HTTP/1.1\r\nHost: x\r\n\r\n",
        "asterisk-for-get": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        "absolute-form-no-host": b"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n",
        "target-control": get(target=b"/a\x01b"),
        "target-utf8": get(target=b"/caf\xc3\xa9"),
        "target-tab": get(target=b"/a\tb"),
        "version-1.2": b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        "version-1.9": b"GET / HTTP/1.9\r\nHost: x\r\n\r\n",
        "version-2.0": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "version-3.0": b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
        "version-lower-case": b"GET / http/1.1\r\nHost: x\r\n\r\n",
        "version-missing-space": b"GET /xHTTP/1.1\r\nHost: x\r\n\r\n",
        "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "method-pri": b"PRI / HTTP/1.1\r\nHost: x\r\n\r\n",
        "http09": b"GET /\r\n\r\n",
        "request-line-over-limit": request_line(4095),
        "fields-over-limit": many_fields(101),
        "field-line-over-limit": field_line(8191),
        "head-block-over-limit": get(*(b"X-%d: %s" % (i, b"v" * 1000) for i in range(70))),
        "header-value-endless": b"GET / HTTP/1.1\r\nX: " + b"v" * 9000,
        "error-after-a-request": b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n",
        "malformed-after-skipped-body": head(b"Content-Length: 10") + b"0123456789G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    }


def _tight_seeds() -> dict[str, bytes]:
    """Seeds read under TIGHT_LIMITS (limits_for): each near one of its numbers."""
    limits = TIGHT_LIMITS
    return {
        "tight-body-at-limit": head(b"Content-Length: %d" % limits.body) + b"b" * limits.body,
        "tight-body-over-limit": head(b"Content-Length: %d" % (limits.body + 1)) + b"b" * (limits.body + 1),
        "tight-chunked-at-limit": chunked(b"10\r\n" + b"c" * 16 + b"\r\n10\r\n" + b"c" * 16 + b"\r\n0\r\n\r\n"),
        "tight-chunked-over-limit": chunked(b"10\r\n" + b"c" * 16 + b"\r\n11\r\n" + b"c" * 17 + b"\r\n0\r\n\r\n"),
        "tight-request-line-at-limit": request_line(limits.request_line),
        "tight-request-line-over-limit": request_line(limits.request_line + 1),
        "tight-request-line-at-limit-unknown-method": request_line(limits.request_line, b"BREW"),
        "tight-request-line-over-limit-unknown-method": request_line(limits.request_line + 1, b"BREW"),
        "tight-method-over-limit": b"M" * (limits.request_line + 1),
        "tight-target-over-limit": get(target=b"/" + b"t" * limits.request_line),
        "tight-field-line-at-limit": field_line(limits.field_size),
        "tight-field-line-over-limit": field_line(limits.field_size + 1),
        "tight-fields-at-limit": many_fields(limits.fields),
        "tight-fields-over-limit": many_fields(limits.fields + 1),
        "tight-trailers-over-limit": chunked(b"0\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(9)) + b"\r\n"),
        "tight-pipelined": (head(b"Content-Length: 3") + b"abc" + get(target=b"/" + b"p" * 40) +
                            chunked(b"20\r\n" + b"d" * 32 + b"\r\n0\r\n\r\n")),
    }


def _reduced_seeds() -> dict[str, bytes]:
    """The smallest inputs found (by this corpus) to be decided differently depending
    on where the reads split them, kept so that every run meets them."""
    return {
        "lf-after-a-request": get() + b"\n",
        "cr-after-a-request": get() + b"\r",
        "request-after-http10-close": b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "byte-after-connection-close": get(b"Connection: close") + b"X",
        "method-pri-bad-version": b"PRI / http/1.1\r\n\r\n",
        "host-invalid-then-field-invalid": b"GET / HTTP/1.1\r\nHost: x/\r\nT\r\n\r\n",
        "tight-method-over-limit-then-not-a-token": b"M" * (TIGHT_LIMITS.request_line + 1) + b"(",
        "tight-target-over-limit-then-not-a-target-byte": b"GET /" + b"t" * 53 + b"\x01",
        "http2-preface-then-part-of-more": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r",
    }


SEEDS: dict[str, bytes] = {**_valid_seeds(), **_smuggling_seeds(), **_head_seeds(), **_tight_seeds(),
                           **_reduced_seeds()}
"""Every seed, by name."""


def limits_for(name: str) -> Limits:
    """The limits a corpus input is parsed under: its seed's (see TIGHT_LIMITS)."""
    return TIGHT_LIMITS if name.startswith("tight-") else DEFAULT_LIMITS


# --- mutations: each takes the random source, the input and the limits, and returns
# --- a new input (the input itself where it has nothing to act on).

Mutation = Callable[[random.Random, bytes, Limits], bytes]

_INSERTED = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b",", b";", b"\x0b", b"\x7f", b"\xff"]
_LENGTH = re.compile(rb"(?i)(content-length:[ \t]*)([0-9]+)")
_CHUNK_SIZE = re.compile(rb"(?m)(?<=\n)[0-9A-Fa-f]+(?=[;\r ])")


def _flip(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """One byte changed: a bit flipped, or a random byte."""
    if not data:
        return data
    i = rng.randrange(len(data))
    byte = data[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return data[:i] + bytes([byte]) + data[i + 1:]


def _insert(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A separator or control inserted anywhere; most often within the head."""
    end = _head_end(data) if rng.random() < 0.7 else len(data)
    i = rng.randint(0, end)
    return data[:i] + rng.choice(_INSERTED) + data[i:]


def _delete(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A few bytes removed."""
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 3):]


def _truncate(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """Cut short, a byte at least kept."""
    return data[:rng.randint(1, len(data) - 1)] if len(data) > 1 else data


def _head_end(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end + 2


def _field_lines(data: bytes) -> tuple[list[bytes], int, int]:
    """The field lines of the first head (CRLF kept), and where they begin and end."""
    start = data.find(b"\r\n") + 2
    end = _head_end(data)
    if start < 2 or end <= start:
        return [], start, start
    return data[start:end].splitlines(keepends=True), start, end


def _reorder_fields(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A field line of the first head duplicated, dropped, or swapped with another."""
    lines, start, end = _field_lines(data)
    if not lines:
        return data
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    how = rng.randrange(3)
    if how == 0:
        lines.insert(j, lines[i])
    elif how == 1:
        del lines[i]
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return data[:start] + b"".join(lines) + data[end:]


def _change_case(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A stretch of the head upper-cased, lower-cased or swapped."""
    end = _head_end(data)
    if not end:
        return data
    i = rng.randrange(end)
    j = min(end, i + rng.randint(1, 24))
    piece = data[i:j]
    changed = rng.choice([piece.upper(), piece.lower(), piece.swapcase()])
    return data[:i] + changed + data[j:]


def _crlf_to_lf(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """One CRLF made a bare LF or a bare CR."""
    ends = [m.start() for m in re.finditer(b"\r\n", data)]
    if not ends:
        return data
    i = rng.choice(ends)
    return data[:i] + rng.choice([b"\n", b"\r", b"\n\r", b"\r\r\n"]) + data[i + 2:]


def _near(rng: random.Random, value: int) -> int:
    return max(0, value + rng.choice([-2, -1, -1, 0, 1, 1, 2]))


def _body_numbers(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A Content-Length or chunk size near, at, or past the body that follows it."""
    matches = list(_LENGTH.finditer(data)) + list(_CHUNK_SIZE.finditer(data))
    if not matches:
        return data
    match = rng.choice(matches)
    if match.re is _LENGTH:
        body = len(data) - _head_end(data) - 2
        number = str(_near(rng, max(0, body))).encode()
        return data[:match.start(2)] + number + data[match.end(2):]
    size = int(match.group(), 16)
    number = b"%x" % _near(rng, size)
    if rng.random() < 0.3:
        number = number.upper().rjust(rng.randint(len(number), max(len(number), 17)), b"0")
    return data[:match.start()] + number + data[match.end():]


def _limit_numbers(limits: Limits) -> list[int]:
    numbers = [limits.request_line, limits.fields, limits.field_size, limits.head, limits.body,
               2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, 16 ** 15, 10 ** 18]
    return [n for n in numbers if n]


def _number_near_a_limit(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """A Content-Length or chunk size replaced by a number near a limit or an integer size."""
    matches = list(_LENGTH.finditer(data)) + list(_CHUNK_SIZE.finditer(data))
    if not matches:
        return data
    match = rng.choice(matches)
    value = _near(rng, rng.choice(_limit_numbers(limits)))
    if match.re is _LENGTH:
        return data[:match.start(2)] + str(value).encode() + data[match.end(2):]
    return data[:match.start()] + b"%x" % value + data[match.end():]


def _size_near_a_limit(rng: random.Random, data: bytes, limits: Limits) -> bytes:
    """The request line, a field line or the number of fields made near its limit."""
    line_end = data.find(b"\r\n")
    if line_end < 0:
        return data
    # (A request line near the default limit is left to the seeds: a target that
    # comes a byte at a time costs the parser time quadratic in its length.)
    which = rng.randrange(0 if limits.request_line < 1024 else 1, 3)
    if which == 0:  # the request line, CRLF not counted
        target_end = data.rfind(b" ", 0, line_end)
        grow = _near(rng, limits.request_line or 4094) - line_end
        if target_end < 0 or grow <= 0:
            return data
        return data[:target_end] + b"t" * grow + data[target_end:]
    if which == 1:  # a field line, CRLF counted
        size = _near(rng, limits.field_size or 8190)
        line = b"X-Near: " + b"v" * max(0, size - len(b"X-Near: \r\n")) + b"\r\n"
    else:  # the number of field lines
        lines, _, _ = _field_lines(data)
        count = max(0, _near(rng, limits.fields) - len(lines) + 1)
        line = b"".join(b"X-N%d: v\r\n" % i for i in range(count))
    return data[:line_end + 2] + line + data[line_end + 2:]


MUTATIONS: list[Mutation] = [
    _flip, _insert, _delete, _truncate, _reorder_fields, _change_case, _crlf_to_lf,
    _body_numbers, _number_near_a_limit, _size_near_a_limit,
]


def _cheap(data: bytes) -> bool:
    """Whether feeding `data` a byte at a time is cheap enough to mutate it: seeds
    with a long request line or a large head stay seeds (their limits are reached
    by _size_near_a_limit on small ones, under TIGHT_LIMITS for the request line)."""
    line_end = data.find(b"\r\n")
    return len(data) <= 16384 and (line_end if line_end >= 0 else len(data)) <= 1024


def corpus(size: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """Every seed, then `size` mutants, each named `seedname~N` (N its index).

    The same (size, seed) always gives the same list. A mutant is one to three
    mutations of a seed, or two seeds spliced one after the other (pipelining,
    the first one whole or cut short), then mutated once in half the cases.
    """
    rng = random.Random(seed)
    inputs = list(SEEDS.items())
    small = [(name, data) for name, data in inputs if _cheap(data)]
    while len(inputs) < len(SEEDS) + size:
        name, data = rng.choice(small)
        data = _mutant(rng, data, limits_for(name), small)
        # A mutant of several KiB costs fifty small ones a byte at a time: most are
        # passed over, so that a corpus of a given size costs about the same.
        if len(data) <= 4096 or rng.random() < 0.25:
            inputs.append((f"{name}~{len(inputs) - len(SEEDS)}", data))
    return inputs


def _mutant(rng: random.Random, data: bytes, limits: Limits, seeds: list[tuple[str, bytes]]) -> bytes:
    """`data` spliced with another seed (15%) or not, then mutated (see `corpus`)."""
    if rng.random() < 0.15:
        _, other = rng.choice(seeds)
        if rng.random() < 0.3:
            data = _truncate(rng, data, limits)
        data += other
        steps = rng.randrange(2)
    else:
        steps = rng.randint(1, 3)
    for _ in range(steps):
        data = rng.choice(MUTATIONS)(rng, data, limits)
    return data
