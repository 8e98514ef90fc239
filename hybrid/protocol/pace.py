"""How long a read of a request body may wait for the client.

`--body-timeout` bounds each wait; it is not a budget for the whole body, so
a body trickled a byte at a time, each within it, is never cut (it costs one
connection). `--body-min-rate` adds a budget: once a body has waited for the
client longer than `--body-timeout` in all, it must have come at that many
bytes a second on average over the time spent waiting, or the read fails
with a 408 (Apache's mod_reqtimeout MinRate has the same shape). Only time
spent waiting for the client counts: an app that reads its upload slowly
does not make the client too slow.
"""

from __future__ import annotations

from typing import Final

from hybrid.protocol.events import ProtocolError

GATHER_BUDGET: Final = 64 * 1024 * 1024
"""Request bodies a worker gathers before their app runs (the thread class's
poller, the bridge's loop: --gather-body each), in all at once: past it, a
body is read by the app as it comes."""


class BodyPace:
    """One request body's waits: `allowance()` before each, `waited()` after it."""

    __slots__ = ("per_read", "min_rate", "_waited", "_received", "_rate_bound")

    def __init__(self, per_read: float, min_rate: int) -> None:
        self.per_read = per_read
        self.min_rate = min_rate
        self._waited = 0.0
        self._received = 0
        self._rate_bound = False  # the last allowance ended where the rate would fail

    def allowance(self) -> float:
        """Seconds the next wait for body bytes may last."""
        if not self.min_rate:
            return self.per_read
        # The wait ends where the average would drop below the rate, but the
        # first --body-timeout of waiting is always granted.
        budget = max(self.per_read, self._received / self.min_rate) - self._waited
        self._rate_bound = budget < self.per_read
        return max(0.0, min(self.per_read, budget))

    def waited(self, seconds: float, received: int) -> None:
        """A wait took `seconds` and brought `received` body bytes."""
        self._waited += seconds
        self._received += received

    def too_slow(self) -> ProtocolError | None:
        """After a wait that ran out: the 408 if it was the rate's limit that ended
        it (not the per-read timeout, whose own error applies), else None. Decided
        by the allowance, not by re-measuring: clocks round."""
        if self._rate_bound:
            return ProtocolError(408, f"the request body came slower than {self.min_rate} "
                                      f"bytes a second (--body-min-rate)")
        return None
