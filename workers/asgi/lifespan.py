"""The ASGI lifespan protocol: the app's startup before the worker serves,
its shutdown after the last connection is done.

`--lifespan auto` uses it when the app supports it (an app that raises on
the lifespan scope before it takes the startup message is served without
it; one that raises after that has a failed startup), `on` requires it (a
failed startup stops the worker with its reason and the app's traceback,
and the arbiter with exit status 3), `off` never sends it. The `state` dict
the app fills at startup is shallow-copied into every request's scope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hybrid.loader import app_frame, app_traceback
from hybrid.logs import error_log as log
from hybrid.typing import ASGIApp, Message


def _with_traceback(failure: str, exc: BaseException) -> str:
    """A failed startup's reason, then the app's traceback (from its first frame
    on, hybrid's hidden) on the lines under it, as the worker reports it."""
    shown = app_traceback(exc)
    return f"{failure}\n{shown}" if shown else failure

class Lifespan:
    """The ASGI lifespan protocol: startup before serving, shutdown after."""

    def __init__(self, app: ASGIApp, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._failure = ""
        self._received = False  # the app took the startup message: it speaks lifespan
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> str:
        """Run the app's startup; return why it failed ('' when it did not)."""
        if self.mode == "off":
            return ""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._messages.put({"type": "lifespan.startup"})
        await self._started.wait()
        if self._failure:
            return self._failure
        if not self.supported and self.mode == "on":
            return "the app does not support the ASGI lifespan protocol (--lifespan on)"
        return ""

    async def shutdown(self, timeout: float) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._messages.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("ASGI lifespan shutdown did not finish within %g s", timeout)

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            if self._failure:
                # It said startup.failed, then raised (Starlette does): the reason is
                # known; the app's traceback goes under it.
                self._failure = _with_traceback(self._failure + app_frame(exc), exc)
            elif self._started.is_set():
                log.exception("ASGI lifespan failed")
            elif self.mode == "on" or self._received:
                # Raising before it takes the first message is how an app says it has
                # no lifespan (uvicorn draws the same line); after it, startup failed.
                self._failure = _with_traceback(
                    f"ASGI lifespan startup raised {type(exc).__name__}: {exc}"
                    f"{app_frame(exc)}", exc)
            else:
                log.info("ASGI lifespan not supported by the app (%s: %s); serving without it",
                         type(exc).__name__, exc)
                self.supported = False
        else:
            if not self._started.is_set():
                self.supported = False  # returned without answering the startup
        finally:
            self._started.set()
            self._stopped.set()

    async def _receive(self) -> Message:
        self._received = True
        return await self._messages.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            # A framework may send a whole traceback: its last line says what failed.
            lines = [line for line in str(message.get("message") or "").splitlines() if line.strip()]
            self._failure = "ASGI lifespan startup failed: " + (
                lines[-1].strip() if lines else "no reason given")
            self._started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if kind.endswith("failed"):
                log.error("ASGI lifespan shutdown failed: %s", message.get("message", ""))
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
