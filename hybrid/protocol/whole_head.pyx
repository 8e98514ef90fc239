# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: freethreading_compatible=True
"""Whole clean requests in one call: the compiled build's way past llhttp's callbacks.

The core's fast path (parser.py) hands each read to `WholeHeads.read` before
llhttp. It takes the requests at the start of the read that are *clean*, and
whole in it (head and Content-Length body), and builds their events in C, as
the core would: one call per read instead of one Python callback per piece
of each head. It stops, leaving the rest of the read to llhttp, at the first
request that is not clean, not whole, or closes the connection.

Clean is narrow on purpose: every check the core makes on such a head is one
it passes, so there is nothing to decide but the events. Anything else (a
method llhttp does not know, a target that is not origin-form, a byte outside
the plain set, a field the core or llhttp reads a meaning into with a value
out of the ordinary, a limit near, a leading blank line) goes to llhttp and
the rules in head.py, which stay the reference: what this takes, they would
have accepted, and they build the same events for it
(tests/test_whole_heads.py compares the two on single-byte changes of clean
requests at every position, and tests/test_fuzz_decisions.py this build with
the interpreted one on the fuzz corpus).

A clean request: a method in METHODS; an origin-form target of visible ASCII
but '#'; " HTTP/1.1" or " HTTP/1.0"; CRLF line ends; field names of token
characters, then a colon; values of visible ASCII, spaces and tabs; at most
`max_fields` fields, each and the head within the core's limits (the head
counted both ways the core counts one: raw, and as HeadReader does); a Host that
is a plain reg-name (or IPv4) with an optional port, once (HTTP/1.0 may have
none); Content-Length as at most 18 digits, once, within the body limit;
Connection as "keep-alive" or "close", once; each singleton field once; no
Transfer-Encoding, Expect, Upgrade or Proxy-Connection.

Nothing is shared between threads but its tables, written once as the module
loads (a `WholeHeads` belongs to one connection's parser), so the module says
it is safe without the GIL (`freethreading_compatible`) and does not turn the
GIL back on in a free-threaded CPython.

Known names are matched in C against a table, by length and bytes, so that a
common field costs no hashing and no new object: in the spike that led here
(benchmarks/RESULTS.md, issue 33's third session), a dict lookup per name
took the head from 0.9 to 2.2 us.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append, PyList_New
from cpython.ref cimport Py_INCREF, PyObject
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.string cimport memcmp

from hybrid.protocol.body_readers import END_NO_TRAILERS
from hybrid.protocol.events import Data, Request

# What each known name means here.
cdef enum Kind:
    PLAIN  # a field nothing here reads
    HOST
    CONTENT_LENGTH
    CONNECTION
    FORWARDED  # Forwarded and X-Forwarded-*: the Request says they are present
    SINGLETON  # a field that is not a list (fields.SINGLETONS): once only
    HAND_OVER  # a field llhttp or the core acts on beyond these: not clean

# The core's names: fields.SINGLETONS, head._SPECIAL_FIELDS, and head._PLAIN_NAMES
# (the common fields, so that they cost no new object); and the fields llhttp reads
# itself (Connection, Proxy-Connection, Upgrade, Content-Length, Transfer-Encoding).
KNOWN_NAMES = {
    b"host": HOST, b"content-length": CONTENT_LENGTH, b"connection": CONNECTION,
    b"forwarded": FORWARDED, b"x-forwarded-for": FORWARDED, b"x-forwarded-proto": FORWARDED,
    b"content-type": SINGLETON, b"authorization": SINGLETON, b"proxy-authorization": SINGLETON,
    b"transfer-encoding": HAND_OVER, b"expect": HAND_OVER, b"upgrade": HAND_OVER,
    b"proxy-connection": HAND_OVER,
    **{name: PLAIN for name in (
        b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"cookie",
        b"referer", b"origin", b"cache-control", b"pragma", b"upgrade-insecure-requests",
        b"sec-fetch-site", b"sec-fetch-mode", b"sec-fetch-user", b"sec-fetch-dest",
        b"sec-ch-ua", b"sec-ch-ua-mobile", b"sec-ch-ua-platform", b"dnt", b"priority",
        b"if-none-match", b"if-modified-since", b"x-requested-with", b"x-request-id",
        b"x-real-ip", b"keep-alive", b"sec-websocket-key", b"sec-websocket-version",
        b"sec-websocket-extensions", b"sec-websocket-protocol", b"range", b"te",
        b"content-encoding", b"accept-charset", b"if-match", b"if-range",
    )},
}
"""Every name this module knows, lower-case, and its kind."""

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
"""The methods of a clean request: llhttp's, but CONNECT's and TRACE's framing or rules."""

cdef enum:
    MAX_NAME = 64  # a longer name is not clean (the table's longest is 24)
    MAX_KNOWN = 64

cdef struct Known:
    const char* lowered
    Py_ssize_t size
    PyObject* name  # the bytes object the headers list shares
    int kind
    int singleton  # a SINGLETON's own bit

cdef Known _known[MAX_KNOWN]
cdef int _known_count = 0
# The table's entries of each length: _known[_first[size]:_first[size + 1]].
cdef int _first[MAX_NAME + 2]
cdef unsigned char _token[256]  # RFC 9110 tchar
cdef unsigned char _field_value[256]  # visible ASCII, SP and HTAB
cdef unsigned char _target[256]  # visible ASCII but '#'
cdef unsigned char _reg_name[256]  # a Host's characters: reg-name and IPv4 (':' apart)
cdef unsigned char _lower[256]


def _fill_tables():
    global _known_count
    cdef int c, size, k, singletons = 0
    for c in range(256):
        _token[c] = c < 128 and (chr(c).isalnum() or chr(c) in "!#$%&'*+-.^_`|~")
        _field_value[c] = 0x20 <= c <= 0x7e or c == 0x09
        _target[c] = 0x21 <= c <= 0x7e and c != 0x23
        _reg_name[c] = c < 128 and (chr(c).isalnum() or chr(c) in "-._~%!$&'()*+,;=")
        _lower[c] = c + 32 if 65 <= c <= 90 else c
    names = sorted(KNOWN_NAMES, key=len)
    assert len(names) <= MAX_KNOWN and max(map(len, names)) <= MAX_NAME
    for k, name in enumerate(names):
        _known[k].lowered = PyBytes_AS_STRING(name)
        _known[k].size = len(name)
        _known[k].name = <PyObject*>name  # (KNOWN_NAMES keeps it alive)
        _known[k].kind = KNOWN_NAMES[name]
        _known[k].singleton = 0
        if _known[k].kind == SINGLETON:
            _known[k].singleton = 1 << singletons
            singletons += 1
    _known_count = len(names)
    k = 0
    for size in range(MAX_NAME + 2):
        while k < _known_count and _known[k].size < size:
            k += 1
        _first[size] = k


_fill_tables()

cdef object _new_event = tuple.__new__  # as events.new_event_by_position
cdef object _END = END_NO_TRAILERS
cdef object _HTTP_1_1 = "1.1"
cdef object _HTTP_1_0 = "1.0"
cdef tuple _METHOD_NAMES = tuple(method.encode() for method in METHODS)


cdef inline int _known_index(const unsigned char* lowered, Py_ssize_t size):
    cdef int k
    for k in range(_first[size], _first[size + 1]):
        if memcmp(_known[k].lowered, lowered, size) == 0:
            return k
    return -1


cdef inline bint _is_lowered(const unsigned char* p, Py_ssize_t size, const char* word):
    """p[:size] is `word` (lower-case), in any case."""
    cdef Py_ssize_t k
    for k in range(size):
        if _lower[p[k]] != <unsigned char>word[k]:
            return False
    return True


cdef inline bint _plain_host(const unsigned char* p, Py_ssize_t size):
    """A Host value fields.check_host passes without its regular expression:
    reg-name characters, then at most one colon and a port of digits."""
    cdef Py_ssize_t k = 0
    while k < size and _reg_name[p[k]]:
        k += 1
    if k == size:
        return True
    if p[k] != 58 or k == size - 1:  # ':' and at least one digit
        return False
    k += 1
    while k < size:
        if not 48 <= p[k] <= 57:
            return False
        k += 1
    return True


cdef class WholeHeads:
    """The clean whole requests at the start of a read, for one connection's limits
    (head.Limits, as HeadReader keeps them)."""

    cdef Py_ssize_t max_line, max_field_line, max_fields, head_limit, body_limit
    # The last request `read` took closes the connection (it took none after it).
    cdef readonly bint closes

    def __init__(self, Py_ssize_t max_line, Py_ssize_t max_field_line, Py_ssize_t max_fields,
                 Py_ssize_t head_limit, Py_ssize_t body_limit):
        self.max_line = max_line
        self.max_field_line = max_field_line
        self.max_fields = max_fields
        self.head_limit = head_limit
        self.body_limit = body_limit
        self.closes = False

    def read(self, data, list events not None):
        """Append the events of the clean whole requests at the start of `data` (bytes)
        to `events`; return how many bytes they took (0: the first is not one)."""
        # (A subclass of bytes is read as its bytes, as llhttp reads it.)
        cdef bytes whole = data if type(data) is bytes else bytes(data)
        cdef Py_ssize_t taken = 0, end, size = PyBytes_GET_SIZE(whole)
        self.closes = False
        while taken < size and not self.closes:
            end = self._request(whole, taken, size, events)
            if end < 0:
                break
            taken = end
        return taken

    cdef Py_ssize_t _request(self, bytes data, Py_ssize_t start, Py_ssize_t size,
                             list events) except -2:
        """The request at `start`: its events appended and its end, or -1 (none appended)."""
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t i = start, target_start, target_end, query_at = -1
        cdef Py_ssize_t name_start, name_size, value_start, value_end, k
        cdef Py_ssize_t fields = 0, head_size, length = 0
        cdef int hosts = 0, lengths = 0, connections = 0, kind, index
        cdef int singletons = 0
        cdef bint closes = False, keeps = False, forwarded = False, http_1_1
        cdef unsigned char lowered[MAX_NAME]
        cdef object method = None, name, value, pair

        # The request line: METHOD SP origin-form SP HTTP/1.x CRLF.
        while i < size and 65 <= p[i] <= 90:
            i += 1
        if i >= size or p[i] != 32:
            return -1
        for k in range(len(METHODS)):
            if PyBytes_GET_SIZE(_METHOD_NAMES[k]) == i - start and \
                    memcmp(PyBytes_AS_STRING(_METHOD_NAMES[k]), p + start, i - start) == 0:
                method = METHODS[k]
                break
        if method is None:
            return -1
        i += 1
        target_start = i
        if i >= size or p[i] != 47:  # '/'
            return -1
        while i < size and _target[p[i]]:
            if p[i] == 63 and query_at < 0:  # '?'
                query_at = i
            i += 1
        target_end = i
        if size - i < 11 or memcmp(p + i, b" HTTP/1.", 8) != 0 \
                or p[i + 9] != 13 or p[i + 10] != 10:
            return -1
        if p[i + 8] == 49:
            http_1_1 = True
        elif p[i + 8] == 48:
            http_1_1 = False
        else:
            return -1
        # gunicorn's count, the core's: the line without its CRLF.
        if i + 9 - start > self.max_line:
            return -1
        i += 11
        head_size = target_end - target_start  # as HeadReader._check_large_head counts

        headers = PyList_New(0)
        while True:
            if i + 1 >= size:
                return -1  # the head goes on in the next read
            if p[i] == 13:
                if p[i + 1] != 10:
                    return -1
                i += 2
                break
            name_start = i
            while i < size and _token[p[i]]:
                if i - name_start < MAX_NAME:
                    lowered[i - name_start] = _lower[p[i]]
                i += 1
            name_size = i - name_start
            if i >= size or p[i] != 58 or name_size == 0 or name_size > MAX_NAME:
                return -1
            i += 1
            while i < size and (p[i] == 32 or p[i] == 9):
                i += 1
            value_start = i
            while i < size and _field_value[p[i]]:
                i += 1
            if i + 1 >= size or p[i] != 13 or p[i + 1] != 10:
                return -1
            value_end = i
            while value_end > value_start and (p[value_end - 1] == 32 or p[value_end - 1] == 9):
                value_end -= 1
            i += 2
            fields += 1
            if fields > self.max_fields or \
                    name_size + value_end - value_start > self.max_field_line - 4:
                return -1
            head_size += name_size + value_end - value_start + 4
            if head_size > self.head_limit:  # (as HeadReader counts a head)
                return -1

            index = _known_index(lowered, name_size)
            if index < 0:
                name = PyBytes_FromStringAndSize(<const char*>lowered, name_size)
                kind = PLAIN
            else:
                name = <object>_known[index].name
                kind = _known[index].kind
            if kind == HOST:
                hosts += 1
                if hosts > 1 or not _plain_host(p + value_start, value_end - value_start):
                    return -1
            elif kind == CONTENT_LENGTH:
                lengths += 1
                if lengths > 1 or value_end == value_start or value_end - value_start > 18:
                    return -1
                for k in range(value_start, value_end):
                    if not 48 <= p[k] <= 57:
                        return -1
                    length = length * 10 + (p[k] - 48)
                if self.body_limit and length > self.body_limit:
                    return -1
            elif kind == CONNECTION:
                connections += 1
                if connections > 1:
                    return -1
                if value_end - value_start == 5 and _is_lowered(p + value_start, 5, b"close"):
                    closes = True
                elif value_end - value_start == 10 and \
                        _is_lowered(p + value_start, 10, b"keep-alive"):
                    keeps = True
                else:
                    return -1
            elif kind == FORWARDED:
                forwarded = True
            elif kind == SINGLETON:
                if singletons & _known[index].singleton:
                    return -1
                singletons |= _known[index].singleton
            elif kind == HAND_OVER:
                return -1
            value = PyBytes_FromStringAndSize(<const char*>p + value_start,
                                              value_end - value_start)
            pair = PyTuple_New(2)
            Py_INCREF(name)
            PyTuple_SET_ITEM(pair, 0, name)
            Py_INCREF(value)
            PyTuple_SET_ITEM(pair, 1, value)
            PyList_Append(headers, pair)

        # The raw head as well, as the careful path counts it: that path may parse
        # this head again (when a later request of the read needs it, it parses
        # the read from its start), and the two counts differ both ways.
        if i - start > self.head_limit:
            return -1
        if hosts != 1 and (hosts or http_1_1):
            return -1
        if size - i < length:
            return -1  # the body goes on in the next read
        target = PyBytes_FromStringAndSize(<const char*>p + target_start, target_end - target_start)
        if query_at < 0:
            path = target
            query = b""
        else:
            path = PyBytes_FromStringAndSize(<const char*>p + target_start, query_at - target_start)
            query = PyBytes_FromStringAndSize(<const char*>p + query_at + 1,
                                              target_end - query_at - 1)
        keep_alive = not closes if http_1_1 else keeps
        events.append(_new_event(Request, (
            method, target, path, query, _HTTP_1_1 if http_1_1 else _HTTP_1_0, headers,
            keep_alive, False, False, forwarded)))
        if length:
            events.append(_new_event(Data, (data[i:i + length],)))
        events.append(_END)
        self.closes = not keep_alive
        return i + length
