"""The one sans-IO HTTP/1.1 core shared by every worker class.

Bytes in, events out (`RequestParser.feed`); status and headers in, framed bytes
out (`ResponseFramer`). Nothing here touches a socket, a thread or an event
loop: each worker owns its I/O and feeds this core.
"""

from hybrid.protocol.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
)
from hybrid.protocol.head import DEFAULT_LIMITS, Limits
from hybrid.protocol.pace import GATHER_BUDGET, BodyPace
from hybrid.protocol.parser import RequestParser
from hybrid.protocol.response import (
    CONTINUE,
    REASONS,
    LocalProtocolError,
    ResponseFramer,
    error_body,
    early_hints,
    error_response,
    http_date,
    set_server_fields,
    switching_protocols,
)
from hybrid.protocol.state import LINGER_BYTES, LINGER_SECONDS, STOP_IDLE_GRACE, UNKNOWN_LENGTH

__all__ = [
    "CONTINUE", "DEFAULT_LIMITS", "GATHER_BUDGET", "LINGER_BYTES", "LINGER_SECONDS", "REASONS",
    "STOP_IDLE_GRACE", "UNKNOWN_LENGTH",
    "BodyPace", "ConnectionClosed", "Data",
    "EndOfMessage", "Event", "Limits", "LocalProtocolError", "ProtocolError", "Request",
    "RequestParser", "ResponseFramer", "early_hints", "error_body", "error_response", "http_date", "set_server_fields",
    "switching_protocols",
]
