"""The ASGI test app (tests/apps/asgi_basic.py) with the routes the HTTP/2
tests need besides: an answer that streams until its client is gone, which
records what `send()` then raised, whatever it was (the ASGI spec wants an
OSError), and the route that tells it; trailers HTTP cannot carry."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from tests.apps import asgi_basic

SEND_RAISED: dict[str, str] = {}


async def app(scope, receive, send):
    route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
    if route is None:
        await asgi_basic.app(scope, receive, send)
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    await route(scope, receive, send, query)


async def tick_until_gone(scope, receive, send, query):
    """Streams ticks until `send()` raises; records what it raised under `key`."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.01)
    except Exception as exc:  # (what was raised is the finding, whatever it is)
        SEND_RAISED[query["key"]] = f"{type(exc).__name__} oserror={isinstance(exc, OSError)}"


async def send_raised(scope, receive, send, query):
    body = SEND_RAISED.get(query["key"], "").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def bad_trailers(scope, receive, send, query):
    """Trailers HTTP cannot carry: a value with a line break in it."""
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": []})
    await send({"type": "http.response.body", "body": b"body"})
    await send({"type": "http.response.trailers",
                "headers": [(b"x-bad", b"a\r\ninjected: 1")]})


ROUTES = {"/h2/tick-until-gone": tick_until_gone, "/h2/send-raised": send_raised,
          "/h2/bad-trailers": bad_trailers}
