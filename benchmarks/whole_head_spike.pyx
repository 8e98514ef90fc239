# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A spike, not hybrid's parser: a whole clean request head parsed in one call.

It answers one question for issue 33: how fast could the core be if a whole
head were parsed in C rather than through llhttp's callbacks into Python? It
takes a conservative subset (a known method, an origin-form target, HTTP/1.0
or 1.1, token names, values of visible bytes, exactly one Host, at most one
plain Content-Length, Connection only as keep-alive or close) and answers None
for anything else, which the real piece would hand to the llhttp path. It
checks no limit and is not a parser anyone should serve with: see
`whole_head_spike.py`, which builds and measures it.

Names are matched in C against a table of the common ones, so a known name
costs no hashing and no allocation: the first version, which looked names up
in a dict as the core does, took 2.2 us a request where this takes 0.9.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.list cimport PyList_New, PyList_Append
from cpython.ref cimport Py_INCREF, PyObject
from libc.string cimport memcmp

from hybrid.protocol.body_readers import END_NO_TRAILERS
from hybrid.protocol.events import Data, Request

cdef unsigned char TCHAR[256]
cdef unsigned char VCHAR[256]
cdef unsigned char TARGET[256]
cdef unsigned char LOWER[256]
cdef int _i
for _i in range(256):
    TCHAR[_i] = 1 if (chr(_i).isalnum() and _i < 128) or chr(_i) in "!#$%&'*+-.^_`|~" else 0
    VCHAR[_i] = 1 if (0x20 <= _i <= 0x7e) or _i >= 0x80 or _i == 0x09 else 0
    TARGET[_i] = 1 if 0x21 <= _i <= 0x7e and _i != 0x23 else 0
    LOWER[_i] = _i + 32 if 65 <= _i <= 90 else _i

KNOWN_LIST = [b"host", b"content-length", b"connection", b"transfer-encoding", b"expect",
              b"upgrade", b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"te",
              b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"content-type",
              b"cookie", b"referer", b"origin", b"cache-control", b"x-request-id"]
cdef enum:
    NKNOWN = 20
cdef const char* KNOWN_PTR[NKNOWN]
cdef Py_ssize_t KNOWN_LEN[NKNOWN]
cdef PyObject* KNOWN_OBJ[NKNOWN]
for _i, _n in enumerate(KNOWN_LIST):
    KNOWN_PTR[_i] = PyBytes_AS_STRING(_n)
    KNOWN_LEN[_i] = len(_n)
    KNOWN_OBJ[_i] = <PyObject*>_n
# The first ten known names are the fields the core looks at.
cdef enum:
    HOST = 0
    CONTENT_LENGTH = 1
    CONNECTION = 2
    LAST_SPECIAL = 9

cdef inline int known(const unsigned char* lowered, Py_ssize_t size):
    cdef int k
    for k in range(NKNOWN):
        if KNOWN_LEN[k] == size and memcmp(KNOWN_PTR[k], lowered, size) == 0:
            return k
    return -1

METHODS = {b"GET": "GET", b"HEAD": "HEAD", b"POST": "POST", b"PUT": "PUT",
           b"DELETE": "DELETE", b"OPTIONS": "OPTIONS", b"PATCH": "PATCH"}

def parse_head(bytes data, Py_ssize_t start=0):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = start, m0, t0, t1, q, n0, n1, v0, v1, k
    cdef long long length = 0
    cdef int lengths = 0, hosts = 0, connection = 0, kind
    cdef unsigned char buf[64]
    m0 = i
    while i < n and 65 <= p[i] <= 90:
        i += 1
    if i >= n or p[i] != 32 or i == m0:
        return None
    method = METHODS.get(data[m0:i])
    if method is None:
        return None
    i += 1
    t0 = i
    if i >= n or p[i] != 47:
        return None
    q = -1
    while i < n and TARGET[p[i]]:
        if p[i] == 63 and q < 0:
            q = i
        i += 1
    t1 = i
    if n - i < 11 or memcmp(p + i, b" HTTP/1.", 8) != 0 or p[i+9] != 13 or p[i+10] != 10:
        return None
    if p[i+8] == 49:
        version = "1.1"
    elif p[i+8] == 48:
        version = "1.0"
    else:
        return None
    i += 11
    target = PyBytes_FromStringAndSize(<const char*>p + t0, t1 - t0)
    if q < 0:
        path = target
        query = b""
    else:
        path = PyBytes_FromStringAndSize(<const char*>p + t0, q - t0)
        query = PyBytes_FromStringAndSize(<const char*>p + q + 1, t1 - q - 1)
    headers = PyList_New(0)
    while True:
        if i + 1 >= n:
            return None
        if p[i] == 13:
            if p[i+1] != 10:
                return None
            i += 2
            break
        n0 = i
        while i < n and TCHAR[p[i]]:
            if i - n0 < 64:
                buf[i - n0] = LOWER[p[i]]
            i += 1
        if i >= n or p[i] != 58 or i == n0:
            return None
        n1 = i
        i += 1
        while i < n and (p[i] == 32 or p[i] == 9):
            i += 1
        v0 = i
        while i < n and VCHAR[p[i]]:
            i += 1
        if i + 1 >= n or p[i] != 13 or p[i+1] != 10:
            return None
        v1 = i
        while v1 > v0 and (p[v1-1] == 32 or p[v1-1] == 9):
            v1 -= 1
        i += 2
        kind = known(buf, n1 - n0) if n1 - n0 <= 64 else -1
        if kind >= 0:
            name = <object>KNOWN_OBJ[kind]
        elif n1 - n0 <= 64:
            name = PyBytes_FromStringAndSize(<const char*>buf, n1 - n0)
        else:
            return None
        value = PyBytes_FromStringAndSize(<const char*>p + v0, v1 - v0)
        pair = PyTuple_New(2)
        Py_INCREF(name); PyTuple_SET_ITEM(pair, 0, name)
        Py_INCREF(value); PyTuple_SET_ITEM(pair, 1, value)
        PyList_Append(headers, pair)
        if kind == HOST:
            hosts += 1
        elif kind == CONTENT_LENGTH:
            lengths += 1
            if v1 - v0 == 0 or v1 - v0 > 18:
                return None
            length = 0
            for k in range(v0, v1):
                if not 48 <= p[k] <= 57:
                    return None
                length = length * 10 + (p[k] - 48)
        elif kind == CONNECTION:
            if v1 - v0 == 10 and LOWER[p[v0]] == 107 and memcmp(p + v0 + 1, b"eep-alive", 9) == 0:
                connection = 1
            elif v1 - v0 == 5 and LOWER[p[v0]] == 99 and memcmp(p + v0 + 1, b"lose", 4) == 0:
                connection = 2
            else:
                return None
        elif 0 <= kind <= LAST_SPECIAL:
            return None
    if hosts != 1 or lengths > 1:
        return None
    keep_alive = connection != 2 if version == "1.1" else connection == 1
    return method, target, path, query, version, headers, length, i, keep_alive


def feed(bytes data):
    """The events of one whole request in `data` (a Request, its body, its end),
    built as the core builds them; None if the head is not clean."""
    parsed = parse_head(data)
    if parsed is None:
        return None
    method, target, path, query, version, headers, length, end, keep_alive = parsed
    request = tuple.__new__(Request, (method, target, path, query, version, headers,
                                      keep_alive, False, False, False))
    if not length:
        return [request, END_NO_TRAILERS]
    return [request, tuple.__new__(Data, (data[end:end + length],)), END_NO_TRAILERS]
