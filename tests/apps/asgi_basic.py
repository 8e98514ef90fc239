"""An ASGI 3 app that exercises the server; one route per behaviour.

Lifespan: startup puts {"started": True} in the state; the environment
variable ASGI_LIFESPAN sets the behaviour: "fail" sends startup.failed,
"raise" raises (an app without lifespan support), "raise-in-startup" raises
after it received the startup message (a startup handler that fails),
"slow" takes 30 s to start, anything else completes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import parse_qs

COUNTERS = {"hits": 0, "disconnects": 0, "ws_close_code": 0}
RAISED: dict[str, str] = {}  # route -> what its send() raised once the client had gone


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    if scope["type"] == "websocket":
        await WEBSOCKET_ROUTES[scope["path"]](scope, receive, send)
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    route = ROUTES.get(path)
    if route is None and path.startswith("/path"):
        route = _path
    if route is None and path.startswith("/scope"):
        route = scope_dump
    if route is None:
        await _text(send, "not found", 404)
        return
    await route(scope, receive, send, query)


async def _lifespan(scope, receive, send):
    behaviour = os.environ.get("ASGI_LIFESPAN", "")
    if behaviour == "raise":
        raise RuntimeError("this app does not do lifespan")
    message = await receive()
    assert message["type"] == "lifespan.startup"
    if behaviour == "raise-in-startup":
        raise RuntimeError("the cache would not warm up")
    if behaviour == "slow":
        await asyncio.sleep(30)
    if behaviour == "fail":
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    scope["state"]["started"] = True
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    print("lifespan shutdown ran", flush=True)
    await send({"type": "lifespan.shutdown.complete"})


async def _text(send, text, status=200, headers=()):
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body)), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive):
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client left")
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def index(scope, receive, send, query):
    await _text(send, "hello")


async def pid(scope, receive, send, query):
    await _text(send, str(os.getpid()))


async def hit(scope, receive, send, query):
    COUNTERS["hits"] += 1
    await _text(send, "hit")


async def hits(scope, receive, send, query):
    await _text(send, str(COUNTERS["hits"]))


async def echo(scope, receive, send, query):
    body = await _read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def echo_or_sorry(scope, receive, send, query):
    """Answers even when the body cannot be read, as Starlette's error handler does."""
    try:
        body = await _read_body(receive)
    except ConnectionError:
        await _text(send, "sorry", 400)
        return
    await _text(send, body.decode("latin-1"))


async def read_then_answer(scope, receive, send, query):
    """Reads its body, takes a disconnect for its end, and answers: a server must
    never send this answer to a body that failed."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    try:
        await _text(send, "the app's answer")
    except OSError as exc:
        COUNTERS["send_error"] = type(exc).__name__
        raise


async def head_then_sleep(scope, receive, send, query):
    """The head given, then a wait before the body (a file read in a thread, say)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(float(query.get("s", "1")))
    await send({"type": "http.response.body", "body": b"ended"})


async def long_poll(scope, receive, send, query):
    """Answers nothing until its client leaves (a long poll whose event never came)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    COUNTERS["disconnects"] += 1


async def send_error(scope, receive, send, query):
    await _text(send, COUNTERS.get("send_error", "none"))


async def _path(scope, receive, send, query):
    await _text(send, scope["path"])


async def method(scope, receive, send, query):
    await _text(send, scope["method"])


async def scope_dump(scope, receive, send, query):
    shown = {k: v for k, v in scope.items() if k not in ("headers", "state")}
    shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    shown["raw_path"] = scope["raw_path"].decode("latin-1")
    shown["query_string"] = scope["query_string"].decode("latin-1")
    shown["state"] = dict(scope["state"])
    await _text(send, json.dumps(shown))


async def sleep(scope, receive, send, query):
    print("sleep started", flush=True)
    await asyncio.sleep(float(query.get("s", "1")))
    await _text(send, "slept")


async def start_then_sleep(scope, receive, send, query):
    """A response begun, then a long wait before its end."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"begun\n", "more_body": True})
    await asyncio.sleep(float(query.get("s", "1")))
    await send({"type": "http.response.body", "body": b"ended"})


async def block(scope, receive, send, query):
    print("blocking the loop", flush=True)
    time.sleep(float(query.get("s", "1")))  # CPU-bound code as far as the loop can tell
    await _text(send, "blocked")


async def error(scope, receive, send, query):
    raise RuntimeError("the app failed on purpose")


async def late_error(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first piece\n", "more_body": True})
    raise RuntimeError("failed after the response started")


async def no_response(scope, receive, send, query):
    return


async def bad_order(scope, receive, send, query):
    await send({"type": "http.response.body", "body": b"no start first"})


async def stream(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(int(query.get("n", "3"))):
        await send({"type": "http.response.body", "body": b"piece %d\n" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def download(scope, receive, send, query):
    size = int(query.get("size", "1048576"))
    piece = b"x" * 65536
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size).encode())]})
    sent = 0
    while sent < size:
        chunk = piece[:size - sent]
        sent += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": sent < size})


async def one_piece(scope, receive, send, query):
    body = b"x" * int(query.get("size", "1048576"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def upload(scope, receive, send, query):
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            COUNTERS["disconnects"] += 1
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await _text(send, str(total))


async def until_disconnect(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"streaming\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass  # the (empty) request body comes first
    COUNTERS["disconnects"] += 1


async def raise_after_disconnect(scope, receive, send, query):
    """What Starlette does when its client leaves: turn the news into an exception."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"streaming\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass
    COUNTERS["disconnects"] += 1
    raise RuntimeError("the client disconnected")


async def disconnects(scope, receive, send, query):
    await _text(send, str(COUNTERS["disconnects"]))


async def ignore_body(scope, receive, send, query):
    await _text(send, "ignored")


async def early_hint(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 103, "headers": [(b"link", b"</a>")]})
    await send({"type": "http.response.body", "body": b"not a final answer"})


async def body_after_start(scope, receive, send, query):
    """Starts the response, then reads the body (of an Expect: 100-continue request)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    body = await _read_body(receive)
    await send({"type": "http.response.body", "body": body})


async def send_until_gone(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.01)
    except OSError as exc:
        RAISED["http"] = type(exc).__name__


async def raised(scope, receive, send, query):
    await _text(send, RAISED.get(query.get("kind", "http"), ""))


ROUTES = {
    "/": index, "/pid": pid, "/hit": hit, "/hits": hits, "/echo": echo, "/scope": scope_dump,
    "/sleep": sleep, "/block": block, "/error": error, "/late-error": late_error,
    "/no-response": no_response, "/bad-order": bad_order, "/stream": stream,
    "/download": download, "/upload": upload, "/until-disconnect": until_disconnect,
    "/disconnects": disconnects, "/ignore-body": ignore_body, "/early-hint": early_hint,
    "/body-after-start": body_after_start, "/send-until-gone": send_until_gone,
    "/raised": raised, "/one": one_piece, "/start-then-sleep": start_then_sleep,
}


async def ws_echo(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    subprotocol = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol,
                "headers": [(b"x-accepted-by", b"hybrid-tests")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            COUNTERS["ws_close_code"] = message["code"]
            return
        if message.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ws_close_then_send(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})
    await send({"type": "websocket.send", "text": "after the close"})
    print("send after close was dropped", flush=True)


async def ws_send_until_gone(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    try:
        while True:
            await send({"type": "websocket.send", "text": "tick"})
            await asyncio.sleep(0.01)
    except OSError as exc:
        RAISED["websocket"] = type(exc).__name__


async def ws_deny(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})


async def ws_denial_response(scope, receive, send):
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "websocket.http.response.body", "body": b"no entry"})


async def ws_deny_with_interim_status(scope, receive, send):
    await receive()
    await send({"type": "websocket.http.response.start", "status": 103, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"not a final answer"})


async def ws_error(scope, receive, send):
    await receive()
    raise RuntimeError("websocket app failed")


async def ws_last_close_code(scope, receive, send, query):
    await _text(send, str(COUNTERS["ws_close_code"]))


async def whoami(scope, receive, send, query):
    await _text(send, f"{scope['client'][0]} {scope['scheme']}")


ROUTES["/ws-last-close-code"] = ws_last_close_code
ROUTES["/whoami"] = whoami
ROUTES["/method"] = method
ROUTES["/raise-after-disconnect"] = raise_after_disconnect
ROUTES["/echo-or-sorry"] = echo_or_sorry
ROUTES["/read-then-answer"] = read_then_answer
ROUTES["/send-error"] = send_error
ROUTES["/long-poll"] = long_poll
ROUTES["/head-then-sleep"] = head_then_sleep


async def with_trailers(scope, receive, send, query):
    """A chunked answer whose trailers carry a checksum (http.response.trailers)."""
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"body, then ", "more_body": True})
    await send({"type": "http.response.body", "body": b"trailers"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})


async def path_send(scope, receive, send, query):
    """This module's own source, by http.response.pathsend."""
    path = os.path.abspath(__file__)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % os.path.getsize(path))]})
    await send({"type": "http.response.pathsend", "path": path})


async def early_hints(scope, receive, send, query):
    """103 Early Hints, then the answer (http.response.early_hint)."""
    await send({"type": "http.response.early_hint",
                "links": [b"</style.css>; rel=preload; as=style"]})
    await _text(send, "hinted")


async def extensions(scope, receive, send, query):
    await _text(send, json.dumps(sorted(scope.get("extensions", {}))))


ROUTES["/trailers"] = with_trailers
ROUTES["/pathsend"] = path_send
ROUTES["/early-hints"] = early_hints
ROUTES["/extensions"] = extensions
WEBSOCKET_ROUTES = {"/ws/close-then-send": ws_close_then_send, "/ws/echo": ws_echo, "/ws/deny": ws_deny, "/ws/denial": ws_denial_response,
                    "/ws/error": ws_error, "/ws/send-until-gone": ws_send_until_gone,
                    "/ws/deny-interim": ws_deny_with_interim_status}
