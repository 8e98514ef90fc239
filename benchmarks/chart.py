"""Bar charts of saved load runs: hybrid against its peers, drawn from the data.

Reads one or more JSON files written by `load.py --save` and draws one SVG: a
row per run (its group), with two panels side by side, the median requests per
second and the median CPU time per request of each server, each bar with the
min-max over the rounds as an error bar. hybrid's bars are in colour, the
peers' in grey. The same files always give the same SVG (a fixed hash salt, no
date in the metadata), so a redrawn chart shows up in a diff only when the
figures changed.

    python benchmarks/load.py --group asgi --save benchmarks/results/asgi.json
    python benchmarks/chart.py benchmarks/results/*.json -o docs/img/benchmarks.svg

Needs matplotlib (`pip install -r benchmarks/requirements.txt`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # (before pyplot: no display is needed, or wanted)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure, SubFigure  # noqa: E402
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HYBRID = "#1f6fd1"
PEER = "#a0a0a0"
SPREAD = "#333333"
INCHES_PER_BAR = 0.32
INCHES_PER_TITLE = 0.9


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in paths]


def title(run: dict[str, Any]) -> str:
    """What was measured, how, where and when; then how to read the bars."""
    build = f"; hybrid {run['hybrid_build']}" if "hybrid_build" in run else ""
    return (f"group {run['group']}: {run['wrk']}, {run['rounds']} interleaved rounds, "
            f"1 worker each; {run['cpus']} CPUs, wrk on the same machine; "
            f"python {run['python']}; {run['date'][:10]}{build}\n"
            "bars: the median over the rounds; whiskers: the lowest and highest round; "
            "hybrid in blue")


def label(server: dict[str, Any]) -> str:
    errors = sum(server["errors"])
    return f"{server['name']} ({errors} errors)" if errors else server["name"]


def bars(axes: Axes, servers: list[dict[str, Any]], key: str,
         describe: Callable[[dict[str, Any], float], str]) -> None:
    """One horizontal bar per server at its median of `key`, the min-max over the
    rounds as an error bar, and `describe(server, median)` written past the spread."""
    medians = [statistics.median(server[key]) for server in servers]
    spread = [[median - min(server[key]) for median, server in zip(medians, servers)],
              [max(server[key]) - median for median, server in zip(medians, servers)]]
    rows = range(len(servers))
    colours = [HYBRID if server["name"].startswith("hybrid") else PEER for server in servers]
    axes.barh(rows, medians, color=colours, xerr=spread, capsize=3,
              error_kw={"ecolor": SPREAD, "elinewidth": 1})
    axes.set_yticks(rows, [label(server) for server in servers])
    # The first server on top, as load.py lists them (set, not inverted: the two
    # panels share this axis, and inverting it twice would undo it).
    axes.set_ylim(len(servers) - 0.5, -0.5)
    peak = max(max(server[key]) for server in servers)
    for row, median, server in zip(rows, medians, servers):
        axes.text(max(server[key]) + peak * 0.015, row, describe(server, median),
                  va="center", fontsize=8)
    axes.set_xlim(0, peak * 1.3)  # (room for the text past the longest bar)
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="x", color="#e5e5e5")
    axes.set_axisbelow(True)


def throughput_text(run: dict[str, Any]) -> Callable[[dict[str, Any], float], str]:
    """A server's median requests/s and, as `load.py` prints it, its ratio to the
    baseline's median (when the baseline ran)."""
    base = next((s for s in run["servers"] if s["name"] == run["baseline"]), None)

    def describe(server: dict[str, Any], median: float) -> str:
        if base is None:
            return f"{median:,.0f}"
        return f"{median:,.0f} ({median / statistics.median(base['rps']):.2f}x)"
    return describe


def cpu_text(server: dict[str, Any], median: float) -> str:
    return f"{median:.0f} µs"


def draw_run(figure: Figure | SubFigure, run: dict[str, Any]) -> None:
    figure.suptitle(title(run), fontsize=9, x=0.01, ha="left", linespacing=1.5)
    throughput, cpu = figure.subplots(1, 2, sharey=True)
    bars(throughput, run["servers"], "rps", throughput_text(run))
    throughput.set_xlabel(f"requests per second (and the ratio to {run['baseline']})")
    bars(cpu, run["servers"], "cpu_us", cpu_text)
    cpu.set_xlabel("CPU µs per request: user + system, all the server's processes")
    cpu.tick_params(axis="y", left=False)


def draw(runs: list[dict[str, Any]]) -> Figure:
    heights = [INCHES_PER_TITLE + INCHES_PER_BAR * len(run["servers"]) for run in runs]
    figure = plt.figure(figsize=(11, sum(heights)), layout="constrained")
    rows = figure.subfigures(len(runs), 1, height_ratios=heights, squeeze=False)
    for row, run in zip(rows[:, 0], runs):
        draw_run(row, run)
    return figure


def write_chart(paths: list[Path], out: Path) -> None:
    with matplotlib.rc_context({
        "svg.fonttype": "none",  # text stays text: searchable, selectable, small
        "svg.hashsalt": "hybrid-benchmarks",  # the same ids, so the same file, each time
        "font.size": 9,
    }):
        figure = draw(load_runs(paths))
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, format="svg", metadata={"Date": None})
        plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("results", nargs="+", type=Path,
                         help="JSON files written by load.py --save")
    options.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "img" / "benchmarks.svg",
                         help="the SVG to write (default: docs/img/benchmarks.svg)")
    args = options.parse_args(argv)
    write_chart(args.results, args.out)


if __name__ == "__main__":
    main()
