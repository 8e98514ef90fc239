"""The benchmark picture: `load.py --save` writes what `chart.py` draws from.

matplotlib is the chart's alone (benchmarks/requirements.txt), not a test
dependency: without it these tests are skipped, saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the chart needs matplotlib: "
                                         "pip install -r benchmarks/requirements.txt")

from benchmarks import chart, load  # noqa: E402


def measured(name: str, rps: list[float], cpu_us: list[float]) -> load.Server:
    """A server as `load.py` leaves it after its rounds, never started."""
    server = load.Server(name, [])
    server.rps, server.cpu_us = rps, cpu_us
    server.p99_ms, server.errors = [2.5] * len(rps), [0] * len(rps)
    return server


SERVERS = [measured("hybrid asgi", [31_000, 32_500, 30_200], [31.0, 30.2, 33.9]),
           measured("uvicorn", [20_100, 19_400, 21_000], [50.5, 49.8, 52.0]),
           measured("granian asgi", [42_000, 45_500, 40_900], [64.0, 70.1, 61.3])]


def saved(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "asgi.json"
    load.save(path, load.saved_run("asgi", "uvicorn", load.wrk_parameters(64, 5, False), 3,
                                   SERVERS))
    return path


def test_a_saved_run_keeps_every_round_of_every_server(tmp_path):
    run = json.loads(saved(tmp_path).read_text())
    assert [(s["name"], s["rps"], s["cpu_us"]) for s in run["servers"]] == [
        (s.name, s.rps, s.cpu_us) for s in SERVERS]


def test_a_saved_run_says_what_ran_where_and_when(tmp_path):
    run = json.loads(saved(tmp_path).read_text())
    assert {"command", "date", "python", "cpus", "group", "baseline", "wrk",
            "rounds"} <= set(run)
    assert (run["group"], run["baseline"], run["wrk"], run["rounds"]) == (
        "asgi", "uvicorn", "wrk -t1 -c64 -d5s", 3)


THREAD_RUN = {  # written by hand, as load.py --save lays a run out
    "command": "python benchmarks/load.py --group thread --rounds 2",
    "date": "2026-12-07T03:00:00+00:00", "python": "3.11.7", "cpus": 2,
    "group": "thread", "baseline": "granian wsgi", "wrk": "wrk -t1 -c64 -d5s", "rounds": 2,
    "servers": [
        {"name": "hybrid thread", "rps": [15_000, 16_000], "p99_ms": [8.1, 8.4],
         "cpu_us": [60.0, 58.5], "errors": [0, 0]},
        {"name": "granian wsgi", "rps": [70_000, 72_000], "p99_ms": [2.4, 2.5],
         "cpu_us": [40.0, 41.0], "errors": [0, 2]},
    ]}


def draw(tmp_path: Path, *runs: dict[str, object]) -> str:
    paths = []
    for number, run in enumerate(runs):
        paths.append(tmp_path / f"run{number}.json")
        paths[-1].write_text(json.dumps(run))
    chart.main([*map(str, paths), "-o", str(tmp_path / "chart.svg")])
    return (tmp_path / "chart.svg").read_text()


def test_the_chart_names_every_server_of_every_run(tmp_path):
    svg = draw(tmp_path, THREAD_RUN, json.loads(saved(tmp_path).read_text()))
    assert all(name in svg for name in ["hybrid thread", "granian wsgi", "hybrid asgi",
                                        "uvicorn", "granian asgi"])


def test_the_chart_titles_each_run_with_its_group_load_and_machine(tmp_path):
    svg = draw(tmp_path, THREAD_RUN)
    assert ("group thread: wrk -t1 -c64 -d5s, 2 interleaved rounds, 1 worker each; 2 CPUs"
            in svg)


def test_the_chart_says_which_build_of_hybrid_ran(tmp_path):
    assert f"hybrid {load.build().describe()}" in draw(
        tmp_path, json.loads(saved(tmp_path).read_text()))


def test_the_chart_names_a_server_that_had_errors_with_their_count(tmp_path):
    assert "granian wsgi (2 errors)" in draw(tmp_path, THREAD_RUN)


def test_the_chart_reads_what_load_saves(tmp_path):
    out = tmp_path / "chart.svg"
    chart.main([str(saved(tmp_path)), "-o", str(out)])
    assert "group asgi: wrk -t1 -c64 -d5s, 3 interleaved rounds" in out.read_text()


def test_the_same_results_draw_the_same_file(tmp_path):
    results = saved(tmp_path)
    chart.main([str(results), "-o", str(tmp_path / "first.svg")])
    chart.main([str(results), "-o", str(tmp_path / "second.svg")])
    assert (tmp_path / "first.svg").read_bytes() == (tmp_path / "second.svg").read_bytes()
