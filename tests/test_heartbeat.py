"""The heartbeat stamp a worker writes and its arbiter reads, across fork."""

from __future__ import annotations

import os
import time

from hybrid.heartbeat import Heartbeat


def test_a_reading_taken_while_the_worker_beats_is_never_a_torn_stamp() -> None:
    heartbeat = Heartbeat()
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            heartbeat.beat()
        os._exit(0)
    worst = 0.0
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            worst = max(worst, heartbeat.silence())
    finally:
        heartbeat.close()
    # A beat at most a scheduler slice ago; a half-written stamp reads as 0.0,
    # a silence as long as the machine's uptime.
    assert worst < 60


def test_a_stamp_from_the_past_is_read_back_as_that_long_a_silence() -> None:
    heartbeat = Heartbeat()
    heartbeat.beat(time.monotonic() - 100)
    assert heartbeat.silence() >= 100
    heartbeat.close()
