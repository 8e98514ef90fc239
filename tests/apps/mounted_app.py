"""A Starlette app that mounts the Flask app through `WSGIBridge`, next to an
async route and a WebSocket route, in one process."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from hybrid.bridge import WSGIBridge
from tests.apps.flask_app import app as flask_app


async def status(request: Request) -> PlainTextResponse:
    return PlainTextResponse("async ok")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")


app = Starlette(routes=[
    Route("/status", status),
    WebSocketRoute("/ws", echo),
    Mount("/legacy", app=WSGIBridge(flask_app, threads=4)),
])
