"""A real Starlette app with a lifespan, to show hybrid serves what people run."""

import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "starlette", "started": request.state.started})


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"created": await request.json()})


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"started": True}


app = Starlette(routes=[Route("/", index), Route("/items", create, methods=["POST"])],
                lifespan=lifespan)
