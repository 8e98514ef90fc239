"""Workers replaced while they serve (--max-requests, --max-worker-memory): the
replacement boots first, no request fails, and the log and the restarts
counter name the reason."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Traffic, wait_for

APP = "tests.apps.basic:app"
CLASSES = ["sync", "thread", "asgi"]


def pid_of(server) -> int:
    return int(httpx.get(server.url + "/pid", timeout=10).text)


@pytest.mark.parametrize("worker_class", CLASSES)
def test_max_requests_replaces_workers_without_failing_a_request(start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "-w", "2", "--max-requests", "50")
    first = server.wait_workers(2)
    with Traffic(server) as traffic:
        def serving_replacements() -> set[int] | None:
            # (Not only the first ones gone: between the two, no worker may be booted.)
            booted = server.booted_workers()
            return booted if booted and not booted & first else None

        replacements = wait_for(serving_replacements, timeout=60,
                                message="both first workers replaced")
        traffic.more()
    assert traffic.failures == []
    assert {int(pid) for pid in traffic.answers[-10:]} - first
    for pid in first:  # (said once the arbiter has reaped it)
        wait_for(lambda: f"Worker {pid} exited (replaced: max-requests)" in server.log(),
                 message=f"worker {pid}'s replacement to be logged")
    assert replacements


def test_a_worker_serves_its_max_requests_before_it_is_replaced(start_server):
    server = start_server(APP, "-k", "sync", "--max-requests", "5",
                          "--max-requests-jitter", "3")
    (first,) = server.wait_workers(1)
    answers: list[int] = []
    wait_for(lambda: answers.append(pid_of(server)) or answers[-1] != first,
             message="a replacement to answer")
    assert answers[:5] == [first] * 5


def test_the_replacement_boots_before_the_old_worker_stops(start_server):
    server = start_server(APP, "-k", "thread", "--max-requests", "3")
    (first,) = server.wait_workers(1)
    for _ in range(3):
        pid_of(server)
    wait_for(lambda: f"Worker {first} exited" in server.log(), message="the old worker's exit")
    log = server.log()
    (second,) = server.booted_workers()
    assert log.index(f"Worker {second} booted") < log.index(f"Worker {first} exited")


def test_max_requests_counts_in_the_restarts_metric(start_server, tmp_path):
    control = tmp_path / "control.sock"
    server = start_server(APP, "-k", "sync", "--max-requests", "2",
                          "--control-bind", f"unix:{control}")
    (first,) = server.wait_workers(1)
    pid_of(server), pid_of(server)
    wait_for(lambda: f"Worker {first} exited" in server.log(), message="the replacement")
    transport = httpx.HTTPTransport(uds=str(control))
    with httpx.Client(transport=transport, base_url="http://control") as control_client:
        metrics = control_client.get("/metrics").text
    assert 'hybrid_worker_restarts_total{reason="max-requests"} 1' in metrics


def test_limit_max_requests_is_uvicorns_name_for_max_requests(start_server):
    server = start_server(APP, "-k", "asgi", "--limit-max-requests", "2")
    (first,) = server.wait_workers(1)
    pid_of(server), pid_of(server)
    # (The arbiter says why once it has reaped the worker: a zombie is gone from
    # worker_pids() before that line is written.)
    wait_for(lambda: f"Worker {first} exited (replaced: max-requests)" in server.log(),
             message="the first worker to be replaced for its --max-requests")


@pytest.mark.parametrize("worker_class", CLASSES)
def test_a_worker_over_max_worker_memory_is_replaced(start_server, worker_class):
    server = start_server(APP, "-k", worker_class, "--max-worker-memory", "150")
    (first,) = server.wait_workers(1)
    for _ in range(4):  # 200 MiB kept, over the limit whatever the app's own size
        assert httpx.get(server.url + "/leak?mib=50", timeout=30).status_code == 200
    wait_for(lambda: f"Worker {first} exited (replaced: memory)" in server.log(),
             message="the leaking worker replaced")
    assert f"Worker {first} uses" in server.log()
    assert pid_of(server) != first


def test_workers_over_max_worker_memory_from_their_start_are_not_replaced_forever(start_server):
    server = start_server(APP, "-k", "sync", "--max-worker-memory", "1")
    wait_for(lambda: "workers are not replaced for memory any more" in server.log(),
             message="the limit given up")
    (worker,) = server.wait_workers(1)
    assert httpx.get(server.url + "/pid", timeout=10).text == str(worker)
    assert server.log().count("workers are not replaced for memory any more") == 1
