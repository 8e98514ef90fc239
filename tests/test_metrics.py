"""hybrid.metrics without sockets: rows, sums, and the text the arbiter serves."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from hybrid.metrics import CLASS_ID, REQUESTS, Counters, Totals, render


def rendered(totals: Totals) -> str:
    return render(totals, restarts={}, pids=[], uptime=1.0, ready=1, configured=1)


def request_counts(totals: Totals) -> dict[tuple[str, str, str, str], float]:
    """hybrid_requests_total by (worker class, protocol, method, status class)."""
    families = {f.name: f for f in text_string_to_metric_families(rendered(totals))}
    return {(s.labels["worker_class"], s.labels["protocol"], s.labels["method"],
             s.labels["status"]): s.value
            for s in families["hybrid_requests"].samples}


def asgi_totals(count) -> Totals:
    """The totals of one asgi worker after `count(row)` has counted on its row."""
    counters = Counters(rows=1)
    stats = counters.row(0)
    stats.set_class("asgi")
    count(stats)
    totals = Totals()
    totals.add(counters.read())
    counters.close()
    return totals


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
    counters.row(0).request_done("GET", 200, 10, 0.5, http2=True)
    counters.row(0).refused(400, 10, http2=True)
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


def test_a_request_over_http2_is_counted_under_the_http2_label():
    totals = asgi_totals(lambda stats: stats.request_done("GET", 200, 5, 0.003, http2=True))
    assert request_counts(totals) == {("asgi", "HTTP/2", "GET", "2xx"): 1}


def test_a_request_over_http1_is_counted_under_the_http1_label():
    totals = asgi_totals(lambda stats: stats.request_done("GET", 200, 5, 0.003))
    assert request_counts(totals) == {("asgi", "HTTP/1.x", "GET", "2xx"): 1}


def test_the_protocol_label_sits_between_the_class_and_the_method():
    totals = asgi_totals(lambda stats: stats.request_done("POST", 201, 5, 0.003, http2=True))
    line = ('hybrid_requests_total{worker_class="asgi",protocol="HTTP/2",method="POST",'
            'status="2xx"} 1')
    assert line in rendered(totals).splitlines()


def test_a_stream_the_server_refused_is_counted_under_the_http2_label():
    totals = asgi_totals(lambda stats: stats.refused(431, 20, http2=True))
    assert request_counts(totals) == {("asgi", "HTTP/2", "refused", "4xx"): 1}


def test_a_request_the_server_refused_is_counted_under_the_http1_label():
    totals = asgi_totals(lambda stats: stats.refused(400, 20))
    assert request_counts(totals) == {("asgi", "HTTP/1.x", "refused", "4xx"): 1}


def test_both_protocols_share_the_duration_histogram():
    def count(stats) -> None:
        stats.request_done("GET", 200, 5, 0.003)
        stats.request_done("GET", 200, 5, 0.003, http2=True)

    families = {f.name: f for f in text_string_to_metric_families(rendered(asgi_totals(count)))}
    (total,) = [s.value for s in families["hybrid_request_duration_seconds"].samples
                if s.name.endswith("_count")]
    assert total == 2


def test_only_the_requests_family_carries_the_protocol_label():
    totals = asgi_totals(lambda stats: stats.request_done("GET", 200, 5, 0.003, http2=True))
    labelled = {f.name for f in text_string_to_metric_families(rendered(totals))
                for s in f.samples if "protocol" in s.labels}
    assert labelled == {"hybrid_requests"}


def test_counts_per_protocol_add_up_over_rows_and_retired_workers():
    retired_worker, live_worker = Counters(rows=2), Counters(rows=3)
    for counters in (retired_worker, live_worker):
        for row in range(counters.rows):
            stats = counters.row(row)
            stats.set_class("asgi")
            stats.request_done("GET", 200, 1, 0.001)
            stats.request_done("GET", 200, 1, 0.001, http2=True)
            stats.request_done("GET", 200, 1, 0.001, http2=True)
    retired = Totals()
    retired.add(retired_worker.read(), counters_only=True)
    live = Totals()
    live.add(live_worker.read())
    counts = request_counts(retired.merged(live))
    assert counts == {("asgi", "HTTP/1.x", "GET", "2xx"): 5,
                      ("asgi", "HTTP/2", "GET", "2xx"): 10}
    retired_worker.close()
    live_worker.close()

