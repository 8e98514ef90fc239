"""hybrid.metrics without sockets: rows, sums, and the text the arbiter serves."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from hybrid.metrics import CLASS_ID, REQUESTS, Counters, Totals, render


def test_threads_writing_their_own_rows_lose_no_count():
    counters = Counters(rows=5)

    def count(row: int) -> None:
        stats = counters.row(row)
        for _ in range(20000):
            stats.request_done("GET", 200, 1, 0.001)

    threads = [threading.Thread(target=count, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.read()[REQUESTS + 1] == 80000  # GET, 2xx
    counters.close()


def test_a_block_without_rows_counts_nothing():
    counters = Counters(rows=0)
    counters.row(0).request_done("GET", 200, 10, 0.5)
    assert not any(counters.read())
    counters.close()


def test_totals_keep_the_counts_but_not_the_gauges_of_a_retired_worker():
    counters = Counters(rows=1)
    stats = counters.row(0)
    stats.set_class("asgi")
    stats.request_done("POST", 503, 10, 0.2)
    stats.set_gauges(in_flight=3, connections=7)
    retired = Totals()
    retired.add(counters.read(), counters_only=True)
    (values,) = retired.by_class.values()
    assert list(retired.by_class) == ["asgi"]
    assert values[REQUESTS + 2 * 5 + 4] == 1  # POST, 5xx
    assert sum(values[CLASS_ID:]) == 0
    counters.close()


def test_the_text_parses_as_prometheus_exposition():
    counters = Counters(rows=1)
    stats = counters.row(0)
    stats.set_class("thread")
    stats.request_done("GET", 200, 5, 0.003)
    stats.request_done("GET", 404, 5, 0.3)
    totals = Totals()
    totals.add(counters.read())
    text = render(totals, restarts={"crash": 2}, pids=[], uptime=1.5, ready=1, configured=1)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    buckets = {s.labels["le"]: s.value
               for s in families["hybrid_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 1 and buckets["0.5"] == 2 and buckets["+Inf"] == 2
    restarts = families["hybrid_worker_restarts"].samples
    assert [(s.labels["reason"], s.value) for s in restarts] == [("crash", 2)]
    counters.close()
