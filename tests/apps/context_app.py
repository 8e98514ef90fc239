"""Apps that show what each request's context starts from: a ContextVar
that a request sets must not be seen by the next one on the connection."""

import contextvars

from asgiref.wsgi import WsgiToAsgi

from tests.apps.flask_app import app as flask_app

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    before = SEEN.get()
    SEEN.set(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": before.encode()})


def wsgi_app(environ, start_response):
    before = SEEN.get()
    SEEN.set(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [before.encode()]


asgiref_flask = WsgiToAsgi(flask_app)
