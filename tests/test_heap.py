"""What booting leaves in the garbage collector: a worker moves it into the
permanent generation before its first connection, and the arbiter does so for
an app it preloaded before it forks (`--gc-freeze`, on by default), so that
full collections walk only what requests made, and a preloaded app's pages
stay shared; `--gc-freeze false` leaves the collector as Python sets it."""

from __future__ import annotations

import httpx
import psutil
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


def test_a_preloaded_heap_stays_shared_with_the_workers(start_server):
    # A worker's own collection before its first connection would write to every
    # object the arbiter made, copying each page: 27 MiB of the worker's own for
    # the app's 40 MB, where 3 MiB is the norm.
    server = start_server("tests.apps.big_heap:app", "--preload")
    (worker,) = server.wait_workers(1)
    assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=10).text == "300000"
    unshared = psutil.Process(worker).memory_full_info().uss
    assert unshared < 12 * 1024 * 1024, f"{unshared / 2**20:.0f} MiB of the worker's own"
