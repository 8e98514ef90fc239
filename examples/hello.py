"""The demo app `make run` serves: a plain WSGI app with a few routes.

    /            a greeting
    /echo        echoes a POST body back
    /headers     the request headers as text
"""


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/headers":
        lines = [f"{key}: {value}" for key, value in sorted(environ.items()) if key.startswith("HTTP_")]
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return ["\n".join(lines).encode("latin-1") + b"\n"]
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Hello from hybrid!\n"]
