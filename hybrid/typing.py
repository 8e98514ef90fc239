"""The types at the seams between the server and an application.

ASGI 3: a scope and messages are plain dicts (the spec defines their keys
per type), `receive` and `send` are coroutine functions. WSGI: PEP 3333's
callable, `start_response` and the iterable of body pieces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
