"""Measures the whole-head spike (`whole_head_spike.pyx`) against bare httptools
and hybrid's core, on `parser_bench.py`'s request, in interleaved rounds.

The spike is not part of hybrid: it is built here, into a temporary folder,
with Cython and the C compiler (`pip install Cython`). It first checks that
it gives the events the core gives for the request, then times each side.

    python benchmarks/whole_head_spike.py [--requests 20000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import parser_bench  # noqa: E402

from hybrid.protocol import RequestParser  # noqa: E402


def build(folder: Path) -> Any:
    """The spike compiled in `folder`, imported."""
    c_file = folder / "whole_head_spike.c"
    subprocess.run([sys.executable, "-m", "cython", "-3", "-o", str(c_file),
                    str(HERE / "whole_head_spike.pyx")], check=True)
    library = folder / ("whole_head_spike" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["cc", "-O3", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
                    str(c_file), "-o", str(library)], check=True)
    spec = importlib.util.spec_from_file_location("whole_head_spike", library)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_spike(feed: Any, count: int) -> float:
    request = parser_bench.REQUEST
    events = 0
    start = time.perf_counter()
    for _ in range(count):
        events += len(feed(request))
    elapsed = time.perf_counter() - start
    assert events == 3 * count, events
    return elapsed


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=20000)
    options.add_argument("--rounds", type=int, default=9)
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spike = build(Path(folder))
    feed = spike.feed
    core_events = list(RequestParser().feed(parser_bench.REQUEST))
    assert feed(parser_bench.REQUEST) == core_events, "the spike and the core disagree"
    for warm in (parser_bench.run_bare, parser_bench.run_core):
        warm(1000)
    run_spike(feed, 1000)
    per = 1e6 / args.requests
    times: dict[str, list[float]] = {"bare httptools": [], "hybrid core": [], "spike": []}
    for _ in range(args.rounds):
        times["bare httptools"].append(parser_bench.run_bare(args.requests))
        times["hybrid core"].append(parser_bench.run_core(args.requests))
        times["spike"].append(run_spike(feed, args.requests))
    bare = times["bare httptools"]
    print(f"requests per round: {args.requests}, rounds: {args.rounds}, "
          f"python {sys.version.split()[0]}")
    for name, seconds in times.items():
        ratios = [s / b for s, b in zip(seconds, bare)]
        print(f"{name:15s}: {statistics.median(seconds) * per:5.2f} us/request, "
              f"{statistics.median(ratios):.2f}x bare ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
