"""The apps every server under benchmark serves: the same bytes for all."""

import json
import time

BODY = b"Hello, World!"
JSON = {"message": "Hello, World!"}


def wsgi_plaintext(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def wsgi_json(environ, start_response):
    body = json.dumps(JSON).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def wsgi_io(environ, start_response):
    """An app that waits 20 ms on I/O (a database, say) per request."""
    time.sleep(0.02)
    return wsgi_plaintext(environ, start_response)


def _a2wsgi(app, threads):
    """`app` behind a2wsgi's WSGIMiddleware (what uvicorn users run a WSGI app with)."""
    try:
        from a2wsgi import WSGIMiddleware
    except ImportError:
        return None
    return WSGIMiddleware(app, workers=threads)


a2wsgi_plaintext = _a2wsgi(wsgi_plaintext, 4)
a2wsgi_io = _a2wsgi(wsgi_io, 16)


class _Bridged:
    """A WSGI app wrapped in hybrid's WSGIBridge by hand: an ASGI app, so that the
    asgi class serves it through the bridge's ASGI messages, not its direct path.
    (The bridge is made at the first call: the peers' processes that import this
    module never load hybrid.)"""

    def __init__(self, app, threads):
        self.app, self.threads, self.bridge = app, threads, None

    async def __call__(self, scope, receive, send):
        if self.bridge is None:
            from hybrid.bridge import WSGIBridge

            self.bridge = WSGIBridge(self.app, self.threads)
        await self.bridge(scope, receive, send)


bridged_plaintext = _Bridged(wsgi_plaintext, 4)


async def asgi_plaintext(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


async def asgi_echo(scope, receive, send):
    """Plaintext over HTTP; a WebSocket echoes each message back."""
    if scope["type"] == "http":
        await asgi_plaintext(scope, receive, send)
    elif scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text"),
                        "bytes": message.get("bytes")})


async def asgi_json(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps(JSON).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _starlette_app():
    """A Starlette app with one JSON route, if Starlette is installed (the test extra has it)."""
    try:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError:
        return None

    async def hello(request):
        return JSONResponse(JSON)

    return Starlette(routes=[Route("/", hello)])


starlette_json = _starlette_app()


# A page of rows rendered by a template: what a Flask route or a Django view does.
ROWS = [{"id": n, "name": f"item {n}", "price": n * 1.25} for n in range(20)]


def _flask_app():
    """A Flask app with one route rendering a template, if Flask is installed."""
    try:
        from flask import Flask, render_template
        from jinja2 import DictLoader
    except ImportError:
        return None
    app = Flask(__name__)
    # A loader, as templates in files have: Jinja compiles each template once.
    app.jinja_loader = DictLoader({"page.html": (
        "<table>{% for row in rows %}<tr><td>{{ row.id }}</td><td>{{ row.name }}</td>"
        "<td>{{ '%.2f'|format(row.price) }}</td></tr>{% endfor %}</table>")})

    @app.route("/")
    def index():
        return render_template("page.html", rows=ROWS)

    return app


flask_page = _flask_app()


def wsgi_pid(environ, start_response):
    """Which worker answered: benchmarks/spread.py counts them."""
    import os

    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
