"""A real Starlette app with a lifespan, to show hybrid serves what people run."""

import contextlib
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "starlette", "started": request.state.started})


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"created": await request.json()})


async def shout(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text.upper())


@contextlib.asynccontextmanager
async def lifespan(app):
    if os.environ.get("STARLETTE_STARTUP") == "fail":
        raise ConnectionError("the database is unreachable")
    yield {"started": True}


app = Starlette(routes=[Route("/", index), Route("/items", create, methods=["POST"]),
                        WebSocketRoute("/shout", shout)],
                lifespan=lifespan)
