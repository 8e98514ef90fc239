"""One client connection of the `thread` class: where it is in its life (its
`Phase`), the bits that say who may touch it now, and the transitions it
makes on its own (an idle connection's next request, the lingering close).

The request path (serving.py) and the main thread (worker.py) move a client
from phase to phase; a thread does so only on a client it owns (`busy`).
"""

from __future__ import annotations

import enum
import socket
import time
from typing import Final

from hybrid.metrics import Row
from hybrid.protocol import LINGER_SECONDS, BodyPace, RequestParser
from hybrid.tls_facts import ServerTLS
from hybrid.workers.blocking import Connection, shut_writing


class Phase(enum.Enum):
    """Where a connection is in its life: in exactly one phase at a time.

        FRESH      Accepted; no byte of a request read yet. The PROXY protocol
                   header and the TLS handshake come in this phase (the
                   connection's `awaiting_proxy_header` and `handshaking` say
                   which), all within the --header-timeout that began at the
                   accept.
                   -> REQUEST    its first bytes came
                   -> LINGERING  no head within --header-timeout (a 408), or a
                                 stopping worker's grace is over
                   -> CLOSED     no PROXY header or handshake in time, or the
                                 client left
        REQUEST    A request is under way: its head is coming (within
                   --header-timeout), it waits for a free thread, or a thread
                   serves it.
                   -> GATHERING  its head is complete and its body is gathered
                                 before the app runs (gather.py)
                   -> IDLE       answered, kept alive, no byte of a next one yet
                   (it stays REQUEST when the next request has begun already)
                   -> LINGERING  an error answered, or the end of a connection
                                 whose client may still be sending
                   -> CLOSED
        GATHERING  The head is complete and the poller gathers the body
                   (--gather-body) within its pace (`pace`) and its share of
                   the gather budget (`reserved`); between two reads no
                   thread holds it.
                   -> REQUEST    the body is complete, past the bound or past
                                 the budget: the request is served
                   -> LINGERING  the body was too slow (a 408) or failed (a 400;
                                 its share of the budget is given back at the close)
                   -> CLOSED
        IDLE       Kept alive after an answer, waiting for a next request
                   within --keep-alive; the one phase a new client may take the
                   place of, at --worker-connections.
                   -> REQUEST    the next request's first bytes came
                   -> LINGERING  a stopping worker's grace is over
                   -> CLOSED     --keep-alive is over, or its place was taken
        LINGERING  Writing is shut (after an error answered, or at an end while
                   the client may still send) and what comes is dropped until
                   the client closes or LINGER_SECONDS pass: closing with unread
                   input would send RST, which can destroy the answer.
                   -> CLOSED
        CLOSED     Closed and out of the worker's table.
    """

    FRESH = enum.auto()
    REQUEST = enum.auto()
    GATHERING = enum.auto()
    IDLE = enum.auto()
    LINGERING = enum.auto()
    CLOSED = enum.auto()


# The phases by their own names, which the package uses: the request path
# compares phases several times per request, and Python 3.11 looks `Phase.IDLE`
# up through the enum's metaclass (about 200 ns, where a global takes 10).
FRESH: Final = Phase.FRESH
REQUEST: Final = Phase.REQUEST
GATHERING: Final = Phase.GATHERING
IDLE: Final = Phase.IDLE
LINGERING: Final = Phase.LINGERING
CLOSED: Final = Phase.CLOSED


class Client(Connection):
    """A connection plus what the threads need to share it."""

    def __init__(self, sock: socket.socket, addr: object, server: tuple[str, str],
                 parser: RequestParser, stats: Row, write_timeout: float | None,
                 deadline: float, tls: ServerTLS | None, proxied: bool) -> None:
        super().__init__(sock, addr, server, parser, stats, write_timeout, tls, proxied)
        self.fd = self.sock.fileno()
        self.phase = FRESH  # (its transitions: Phase; CLOSED is set under the lock)
        self.deadline = deadline  # when waiting for this client's next bytes ends
        self.pace: BodyPace | None = None  # GATHERING: the pace its body is gathered at
        self.gathered = 0  # the gathered body's bytes received so far
        self.gathered_at = 0.0  # when the last of them came (time.monotonic())
        self.reserved = 0  # its body's share of GATHER_BUDGET, held until given back
        # What stays a bit, beside the phase: who may touch the client now, and
        # what its next owner must do.
        self.busy = False  # a thread owns it (under the lock)
        self.muted = False  # an event came while owned: MUTED until released (under the lock)
        # Bytes may wait in the socket that no event will report: more than one read
        # took, what a request body's reads left, or an end that came before its event
        # (its owner has epoll look again when done).
        self.unread = False
        # Part of a PROXY protocol header came: neither owned nor armed, it waits for
        # the main thread to have epoll look at it again.
        self.parked = False
        self.stop_noticed = False  # FRESH or IDLE when the worker began to stop: given its grace
        self.edge = tls is None  # watched edge-triggered (plain), or armed one-shot (TLS): for good

    def expect_request(self, header_timeout: float) -> None:
        """An idle connection's next request has begun: its head has --header-timeout
        (a FRESH one's, whose bytes wait unread, stays FRESH until they are read)."""
        if self.phase is IDLE:
            self.phase = REQUEST
        self.deadline = time.monotonic() + header_timeout

    def answer_and_linger(self, response: bytes) -> None:
        """Send a short error answer, then drop input until the client closes: closing
        with unread input would send RST and could destroy the answer."""
        self.pending.clear()
        try:
            self.sock.send(response)
        except OSError:
            pass
        self.linger()

    def linger(self) -> None:
        """Shut writing and go LINGERING, for LINGER_SECONDS at most."""
        try:
            shut_writing(self.sock)
        except OSError:
            pass
        self.phase = LINGERING
        self.deadline = time.monotonic() + LINGER_SECONDS
