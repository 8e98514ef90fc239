"""The command line the request-path microbenchmarks share
(`asgi_path_bench.py`, `thread_path_bench.py`): rounds, repeats, which app
of `benchmarks/apps.py`, and the one line of figures they print."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

from benchmarks import apps


def run(description: str, label: str, default_app: str,
        measure: Callable[[Any, int, int], list[float]]) -> None:
    """Parse the arguments, run `measure(app, rounds, repeats)` (microseconds per
    request, one figure per repeat) and print the median."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--app", default=default_app, help="an app of benchmarks/apps.py")
    args = parser.parse_args()
    app = getattr(apps, args.app, None)
    if app is None:
        parser.error(f"benchmarks/apps.py has no app {args.app!r} (or its framework is missing)")
    figures = measure(app, args.rounds, args.repeats)
    print(f"{label}, {args.app}: {statistics.median(figures):.2f} us/request "
          f"(median of {args.repeats}; min {min(figures):.2f}), "
          f"python {sys.version.split()[0]}")
