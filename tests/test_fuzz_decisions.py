"""The core decides the same whatever the bytes and however they come: a fuzz corpus
(tests/http_corpus.py) fed whole, a byte at a time and in random splits, compared
as transcripts of every decision (tests/decisions.py); and the compiled build
compared with the interpreted one, the reference, on the same corpus.

CORPUS_SIZE mutants besides the seeds keep this file within about ten seconds on
two slow cores under `pytest -n 2`; `python -m tests.decisions --size N --seed S`
runs a larger corpus by hand. The corpus is parametrized by seed (a seed and its
mutants per test), so that a failure names the inputs that failed.
"""

from __future__ import annotations

import difflib
import functools
import json
import subprocess
import sys

import pytest

from hybrid.protocol import Event, ProtocolError, RequestParser
from tests.conftest import ROOT, child_env
from tests.decisions import (
    DEFAULT_SIZE,
    RAISED,
    UNEXPECTED,
    running_build,
    splittings,
    transcript,
    transcripts,
)
from tests.http_corpus import SEEDS, corpus, limits_for

CORPUS_SIZE = DEFAULT_SIZE
CORPUS_SEED = 0
SHORT = 80
"""Seeds this short are also cut in two at every position."""

INPUTS = dict(corpus(CORPUS_SIZE, CORPUS_SEED))
BY_SEED: dict[str, list[str]] = {}
for _name in INPUTS:
    BY_SEED.setdefault(_name.partition("~")[0], []).append(_name)

VALID = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@functools.lru_cache(maxsize=None)
def decided(name: str) -> dict[str, list[str]]:
    """The transcripts of a corpus input, by how it was split (once per process)."""
    return transcripts(name, INPUTS[name])


def differences(expected: list[str], got: list[str], label: str) -> str:
    return "\n".join(difflib.unified_diff(expected, got, "whole", label, lineterm="", n=1))


def divergences(name: str) -> list[str]:
    """How the ways of splitting `name` were decided unlike it whole, if they were."""
    ways = decided(name)
    whole = ways["whole"]
    found = []
    for how, lines in ways.items():
        if lines != whole:
            cuts = [len(piece) for piece in splittings(INPUTS[name])[how]][:40]
            found.append(f"{name} {INPUTS[name]!r}\n{how} (piece sizes {cuts}):\n"
                         + differences(whole, lines, how))
    return found


@pytest.mark.parametrize("seed", list(BY_SEED))
def test_every_input_is_decided_alike_whole_bytewise_and_in_random_splits(seed: str) -> None:
    found = [report for name in BY_SEED[seed] for report in divergences(name)]
    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("name", [name for name, data in SEEDS.items() if len(data) <= SHORT])
def test_a_short_seed_is_decided_alike_wherever_a_single_cut_falls(name: str) -> None:
    data = SEEDS[name]
    limits = limits_for(name)
    whole = transcript(data, [data], limits)
    found = []
    for cut in range(1, len(data)):
        lines = transcript(data, [data[:cut], data[cut:]], limits)
        if lines != whole:
            found.append(f"cut after {data[:cut]!r}:\n" + differences(whole, lines, f"cut at {cut}"))
    assert not found, f"{name} {data!r}\n" + "\n\n".join(found)


@pytest.mark.parametrize("seed", list(BY_SEED))
def test_nothing_escapes_the_core_but_its_own_events(seed: str) -> None:
    # Whole and in random splits: an exception only a byte at a time would make
    # that transcript differ from the whole one, which the first test reports.
    escaped = []
    for name in BY_SEED[seed]:
        for how, pieces in splittings(INPUTS[name]).items():
            if how != "bytewise":
                lines = transcript(INPUTS[name], pieces, limits_for(name))
                escaped += [f"{name} {how} {INPUTS[name]!r}: {line}"
                            for line in lines if line.startswith((RAISED, UNEXPECTED))]
    assert not escaped, "\n".join(escaped)


def _refusal(name: str, pieces: list[bytes]) -> str | None:
    """What is wrong with how the parser refused `pieces`, if it refused them: the
    error must be the last event, a 4xx or 5xx, and the parser take nothing after it."""
    parser = RequestParser(limits_for(name))
    events: list[Event] = []
    for piece in pieces:
        events += parser.feed(piece)
        while more := parser.resume():  # (declines every switch, as the transcripts do)
            events += more
    if not any(isinstance(event, ProtocolError) for event in events):
        events += parser.feed_eof()
    errors = [event for event in events if isinstance(event, ProtocolError)]
    if not errors:
        return None
    if events[-1] is not errors[0] or len(errors) > 1:
        return f"events after the first error: {events[events.index(errors[0]):]}"
    if not 400 <= errors[0].status <= 599:
        return f"not a 4xx or 5xx: {errors[0]!r}"
    after = parser.feed(VALID) + parser.resume() + parser.feed_eof()
    if after or not parser.failed:
        return f"after {errors[0]!r} the parser went on: failed={parser.failed}, {after}"
    return None


@pytest.mark.parametrize("seed", list(BY_SEED))
def test_a_refused_input_ends_in_one_4xx_or_5xx_and_the_parser_takes_nothing_after_it(seed: str) -> None:
    wrong = []
    for name in BY_SEED[seed]:
        for how, pieces in splittings(INPUTS[name], splits=1).items():
            if how != "bytewise":  # (its events are the same: the first test)
                problem = _refusal(name, pieces)
                if problem:
                    wrong.append(f"{name} {how} {INPUTS[name]!r}: {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_compiled_build_decides_every_input_as_the_interpreted_one() -> None:
    compiled, why = running_build()
    if not compiled:
        pytest.skip(f"compares the compiled build, running here, with the interpreted one: {why}")
    command = [sys.executable, "-m", "tests.decisions", "--size", str(CORPUS_SIZE), "--seed", str(CORPUS_SEED)]
    done = subprocess.run(command, cwd=ROOT, env=child_env({"HYBRID_NO_EXTENSIONS": "1"}),
                          capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert "interpreted build" in done.stderr, done.stderr
    interpreted = json.loads(done.stdout)
    assert sorted(interpreted) == sorted(INPUTS)
    unlike = []
    for name in INPUTS:
        for how, lines in decided(name).items():
            if interpreted[name][how] != lines:
                unlike.append(f"{name} {INPUTS[name]!r} {how}:\n"
                              + "\n".join(difflib.unified_diff(interpreted[name][how], lines, "interpreted",
                                                               "compiled", lineterm="", n=1)))
    assert not unlike, f"{len(unlike)} transcripts differ; the first:\n" + "\n\n".join(unlike[:5])
