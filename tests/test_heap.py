"""What booting leaves in the garbage collector: a worker that is ready has
moved it into the permanent generation (`--gc-freeze`, on by default), so that
full collections walk only what requests made; `--gc-freeze false` leaves the
collector as Python sets it."""

from __future__ import annotations

import httpx
import pytest

FROZEN_AFTER_BOOT = "/frozen"
WSGI_APP = "tests.apps.basic:app"


def frozen_objects(port: int) -> int:
    return int(httpx.get(f"http://127.0.0.1:{port}{FROZEN_AFTER_BOOT}", timeout=10).text)


@pytest.mark.parametrize("worker_class", ["sync", "thread", "asgi"])
def test_a_ready_worker_has_frozen_what_booting_made(start_server, worker_class):
    # (asgi: the WSGI app through the bridge, where full collections came most often)
    server = start_server(WSGI_APP, "-k", worker_class)
    assert frozen_objects(server.port) > 1000


def test_gc_freeze_false_leaves_the_collector_alone(start_server):
    server = start_server(WSGI_APP, "--gc-freeze", "false")
    assert frozen_objects(server.port) == 0
