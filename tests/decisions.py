"""What the core decided about some bytes, written down as text that two runs can compare.

`transcript(data, pieces)` feeds a fresh `RequestParser` the pieces and writes
one line per event (Data coalesced across consecutive events, since how the
bytes were split legitimately changes how a body is cut), then the answers a
worker asks of the parser once the bytes are in (hybrid/workers: blocking.py,
thread/, asgi/): whether a request is under way, the body still due and what
may be gathered or skipped of it, whether the connection may persist
(`persistence.may_persist`, with `unread_body`'s counts), the 408 a timeout
would get, the 100 Continue, whether closing must linger; then the events of
the peer's close and the answers after it. An exception that escapes the core
is written down too (a line "raised ..."), so that it is compared like the
rest and found by the tests.

The parser declines every switch of protocols (`resume()` after each piece,
and again while that parses another request that pauses it; a no-op unless an
Upgrade or CONNECT request paused it), so that what follows such a request is
parsed as HTTP; an input with an Upgrade request is also fed to a second
parser that switches (`take_unparsed()` at the first pause, as the asgi class
does for a WebSocket), and the transcript ends with the bytes handed over.

`python -m tests.decisions [--size N] [--seed S] [--splits K]` prints, as one
JSON object, every input of `tests.http_corpus.corpus(N, S)` by name, mapped to
its transcripts fed whole, a byte at a time and in K seeded random splits
(`splittings`): another process, running the other build
(HYBRID_NO_EXTENSIONS=1 forces the interpreted one), prints the same for
tests/test_fuzz_decisions.py to compare. It says on stderr which build ran.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys

from hybrid.protocol import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Limits,
    ProtocolError,
    Request,
    RequestParser,
)
from hybrid.protocol import persistence
from hybrid.protocol.head import DEFAULT_LIMITS
from tests.http_corpus import corpus, limits_for

DEFAULT_SIZE = 800
"""Mutants in the corpus (besides the seeds) that tests/test_fuzz_decisions.py and
`__main__` use unless told otherwise."""
DEFAULT_SPLITS = 4
"""Seeded random splits of each input, besides whole and a byte at a time."""
SMALL, FEW, SPREAD = range(3)
_STYLES = (SMALL, FEW, SPREAD, FEW)
"""How the k-th random split cuts (`_random_pieces`): few pieces cost little next
to a byte at a time, and reach the fast path's states that small ones never do."""

RAISED = "raised "
"""How a transcript line about an exception that escaped the core begins."""
UNEXPECTED = "unexpected event "
"""How a line about something the core returned that is not one of its events begins."""


def transcript(data: bytes, pieces: list[bytes], limits: Limits = DEFAULT_LIMITS,
               whole_heads: bool = True) -> list[str]:
    """What a fresh parser decided when fed `pieces` (which make up `data`), as lines
    (`whole_heads`: RequestParser's)."""
    assert b"".join(pieces) == data, "the pieces are not the input"
    parser = RequestParser(limits, whole_heads)
    lines: list[str] = []
    events: list[Event] = []
    try:
        for piece in pieces:
            events += parser.feed(piece)
            while resumed := parser.resume():  # decline every switch (a no-op unless paused)
                events += resumed
        lines += render(events)
        lines += answers(parser, events)
        eof = parser.feed_eof()
        lines.append("feed_eof")
        lines += render(eof)
        lines.append(f"after eof: failed={parser.failed} in_message={parser.in_message} "
                     f"client_may_be_sending={parser.client_may_be_sending}")
    except Exception as exc:  # what escapes the core is the finding
        if not lines:  # (it escaped a feed: the events before it first)
            lines = render(events)
        lines.append(f"{RAISED}{type(exc).__name__}: {exc}")
        return lines
    if any(type(event) is Request and event.upgrade for event in events):
        lines += switched(pieces, limits, whole_heads)
    return lines


def render(events: list[Event]) -> list[str]:
    """One line per event, consecutive Data as one."""
    lines: list[str] = []
    body: list[bytes] = []
    for event in events:
        if type(event) is Data:
            body.append(event.data)
            continue
        if body:
            lines.append(f"Data {b''.join(body)!r}")
            body = []
        lines.append(_event_line(event))
    if body:
        lines.append(f"Data {b''.join(body)!r}")
    return lines


def _event_line(event: object) -> str:
    if type(event) is Request:
        return "Request " + " ".join(f"{field}={getattr(event, field)!r}" for field in Request._fields)
    if type(event) is EndOfMessage:
        return f"EndOfMessage trailers={event.trailers!r}"
    if type(event) is ProtocolError:
        return f"ProtocolError {event.status} {event.detail!r}"
    if type(event) is ConnectionClosed:
        return "ConnectionClosed"
    return f"{UNEXPECTED}{type(event).__name__} {event!r}"


def answers(parser: RequestParser, events: list[Event]) -> list[str]:
    """The parser's answers to a driver once every piece is in, asked in the order
    that leaves the one that changes state, the 100 Continue, last."""
    timeout = parser.timeout_error()
    lines = [
        f"in_message={parser.in_message} failed={parser.failed} "
        f"client_may_be_sending={parser.client_may_be_sending}",
        f"body_remaining={parser.body_remaining} body_rest={parser.body_rest} "
        f"body_to_gather={parser.body_to_gather()}",
        f"timeout_error={timeout.status} {timeout.detail!r}",
    ]
    requests = [i for i, event in enumerate(events) if type(event) is Request]
    if requests:
        last = requests[-1]
        request = events[last]
        assert type(request) is Request
        unread, rest = persistence.unread_body(events[last + 1:], parser.body_rest)
        lines.append(f"last request: unread={unread} rest={rest} "
                     f"may_persist={persistence.may_persist(request, True, unread, rest)}")
    lines.append(f"continue_response={parser.continue_response(response_started=False)!r}")
    return lines


def switched(pieces: list[bytes], limits: Limits, whole_heads: bool = True) -> list[str]:
    """A second parser fed the same pieces switches protocols at the first pause:
    what it hands over (the bytes after that request, with the pieces not fed yet)."""
    parser = RequestParser(limits, whole_heads)
    events: list[Event] = []
    for n, piece in enumerate(pieces):
        events += parser.feed(piece)
        if _paused_for_a_switch(events):
            handed_over = parser.take_unparsed() + b"".join(pieces[n + 1:])
            requests = sum(type(event) is Request for event in events)
            return [f"switched after request {requests}: handed over {handed_over!r}",
                    f"after the switch: failed={parser.failed} "
                    f"client_may_be_sending={parser.client_may_be_sending} "
                    f"feed={render(parser.feed(b'GET / HTTP/1.1'))}"]
    return ["never paused for a switch"]


def _paused_for_a_switch(events: list[Event]) -> bool:
    """The last request asks to switch protocols and has ended: the parser pauses there."""
    if not events or type(events[-1]) is not EndOfMessage:
        return False
    request = next((event for event in reversed(events) if type(event) is Request), None)
    return type(request) is Request and request.upgrade


def splittings(data: bytes, splits: int = DEFAULT_SPLITS) -> dict[str, list[bytes]]:
    """`data` whole, a byte at a time, and cut `splits` ways at random (seeded by
    the input and the split's number, so every process cuts it the same)."""
    ways = {"whole": [data], "bytewise": [data[i:i + 1] for i in range(len(data))]}
    for k in range(splits):
        rng = random.Random(b"%d:" % k + data)
        ways[f"random-{k}"] = _random_pieces(data, rng, _STYLES[k % len(_STYLES)])
    return ways


def _random_pieces(data: bytes, rng: random.Random, style: int) -> list[bytes]:
    """SMALL pieces (1 to 23 bytes: heads span reads), or FEW, two to five, cut
    anywhere (most heads come whole, a read may end inside a body), or pieces of
    sizes SPREAD from one byte to the whole."""
    if style == FEW:
        cuts = sorted(rng.sample(range(1, len(data)), max(0, min(len(data) - 1, rng.randint(1, 4)))))
    else:
        cuts, at = [], 0
        while True:
            at += rng.randint(1, 23) if style == SMALL else int(rng.expovariate(1 / 40)) + 1
            if at >= len(data):
                break
            cuts.append(at)
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a] or [data]


def transcripts(name: str, data: bytes, splits: int = DEFAULT_SPLITS) -> dict[str, list[str]]:
    """The transcripts of one corpus input (under its limits), by how it was split."""
    limits = limits_for(name)
    return {how: transcript(data, pieces, limits) for how, pieces in splittings(data, splits).items()}


def running_build() -> tuple[bool | None, str]:
    """Whether the compiled core runs here (None: cannot tell), and in words why."""
    try:
        build = importlib.import_module("hybrid.native").build
    except (ImportError, AttributeError) as exc:
        return None, f"hybrid.native.build cannot be imported ({exc})"
    running = build()
    compiled = bool(running.compiled)
    which = "compiled build" if compiled else "interpreted build"
    detail = getattr(running, "detail", "")  # (beyond the contract: `compiled` alone)
    return compiled, f"{which} ({detail})" if detail else which


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(prog="python -m tests.decisions", description=__doc__.split("\n")[0])
    options.add_argument("--size", type=int, default=DEFAULT_SIZE, help="mutants besides the seeds")
    options.add_argument("--seed", type=int, default=0, help="seed of the mutations")
    options.add_argument("--splits", type=int, default=DEFAULT_SPLITS, help="random splits of each input")
    args = options.parse_args(argv)
    result = {name: transcripts(name, data, args.splits) for name, data in corpus(args.size, args.seed)}
    print(f"tests.decisions: {running_build()[1]}", file=sys.stderr)
    json.dump(result, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
