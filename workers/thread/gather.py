"""The `thread` class's gathering of small bodies (--gather-body), and its budget.

A body up to --gather-body is gathered by the poller before the request
reaches a thread (a slow client then costs a descriptor and the bytes, not a
thread), within GATHER_BUDGET (the core's) for the worker's bodies in all: one
of a known length if it fits, a chunked one while it does. A larger one (a
chunked one from the read that passes the bound on), or one past the budget,
is read by the app as it comes. Meanwhile the client is GATHERING (client.py),
its pace kept as the app's reads would keep it.
"""

from __future__ import annotations

import itertools
import threading
import time

from hybrid.config import Config
from hybrid.protocol import GATHER_BUDGET, UNKNOWN_LENGTH, BodyPace, Data
from hybrid.workers.thread.client import GATHERING, REQUEST, Client


class BodyGathering:
    """Which bodies are gathered, and the budget their bytes share."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._lock = threading.Lock()
        self._left = GATHER_BUDGET  # (under _lock)

    def waits(self, client: Client) -> bool:
        """Whether the request first in `client.pending` waits in the poller for
        the rest of its body (the client is then GATHERING): then its pace is
        kept as the app's reads would keep it, and its deadline set. (Asked only
        when the request may have a body, or one is being gathered.)"""
        pending = client.pending
        received, complete = 0, False
        for event in itertools.islice(pending, 1, None):
            if type(event) is not Data:
                complete = True  # (its end, or an error the app will read)
                break
            received += len(event.data)
        due = None if complete else client.parser.body_to_gather()
        if not due:
            self.end(client)
            return False
        # A body longer than the bound is read by the app as it comes: one of a
        # known length at once, a chunked one once it would pass the bound.
        # The budget holds what came and one more byte: a body that announces a
        # length but sends nothing holds (almost) none of it, so silent uploads
        # cannot use it up and send the next ones to threads to stall.
        size = received + (1 if due == UNKNOWN_LENGTH else due)
        if size > self._cfg.gather_body or not self._reserve(client, received + 1):
            self.end(client)
            return False
        now = time.monotonic()
        pace = client.pace
        if pace is None:
            pace = client.pace = BodyPace(self._cfg.body_timeout, self._cfg.body_min_rate)
        else:
            pace.waited(now - client.gathered_at, received - client.gathered)
        client.gathered, client.gathered_at = received, now
        client.deadline = now + pace.allowance()
        client.phase = GATHERING
        return True

    def _reserve(self, client: Client, size: int) -> bool:
        """Hold `size` bytes of GATHER_BUDGET for the client's body, counting what
        it holds already (a chunked body's share grows as it comes)."""
        more = size - client.reserved
        if more <= 0:
            return True
        with self._lock:
            if more > self._left:
                return False
            self._left -= more
            client.reserved = size
            return True

    def end(self, client: Client) -> None:
        """The client's body is gathered no more (it is served, refused, or the
        connection ends): its share of the budget goes back."""
        client.pace = None
        if client.phase is GATHERING:
            client.phase = REQUEST
        if client.reserved:
            with self._lock:
                self._left += client.reserved
                client.reserved = 0
