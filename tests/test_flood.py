"""The HTTP/2 flood budgets (hybrid/protocol/flood.py): frame headers counted in
the bytes as they arrive, each kind against its token bucket, `Flood` past one.

Frames are built with hyperframe, as a hostile client would send them. The
count must not depend on how the bytes were cut into reads: every case that
could be cut is also fed at every cut point and one byte at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hybrid.protocol import flood
from hybrid.protocol.flood import (
    MAX_CONTINUATIONS,
    WINDOW_REFILL_BYTES,
    Flood,
    FloodBudget,
    TokenBucket,
)
from hybrid.protocol.stream_request import PREFACE

T0 = 1000.0  # a loop's clock, well past zero


def budget(max_concurrent_streams: int = 100, header_block_limit: int = 65536,
           skip: int = 0) -> FloodBudget:
    return FloodBudget(max_concurrent_streams, header_block_limit, skip)


class UnknownFrame:
    """A frame of a type RFC 9113 does not define, which a receiver ignores (section
    4.1); built by hand, since hyperframe's ExtensionFrame leaves its length out."""

    def __init__(self, kind: int, payload: bytes) -> None:
        self.kind, self.payload = kind, payload

    def serialize(self) -> bytes:
        header = len(self.payload).to_bytes(3, "big") + bytes([self.kind, 0]) + bytes(4)
        return header + self.payload


def wire(*frames: Frame | UnknownFrame) -> bytes:
    return b"".join(frame.serialize() for frame in frames)


def scan(target: FloodBudget, data: bytes, now: float = T0) -> None:
    target.scan(data, now)


def flood_message(call: Callable[[], object]) -> str:
    with pytest.raises(Flood) as caught:
        call()
    return str(caught.value)


# --- the token bucket ------------------------------------------------------------------------

def test_a_bucket_gives_its_burst_then_nothing():
    bucket = TokenBucket(3, 1)
    assert [bucket.take(T0) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_refills_at_its_rate():
    bucket = TokenBucket(3, 2)
    for _ in range(3):
        bucket.take(T0)
    assert [bucket.take(T0 + 1.0) for _ in range(3)] == [True, True, False]


def test_a_bucket_holds_no_more_than_its_burst():
    bucket = TokenBucket(3, 100)
    bucket.take(T0)
    assert [bucket.take(T0 + 60.0) for _ in range(4)] == [True, True, True, False]


def test_tokens_added_are_capped_at_the_burst():
    bucket = TokenBucket(2, 0)
    bucket.add(10)
    assert [bucket.take(T0) for _ in range(3)] == [True, True, False]


def test_a_refused_take_keeps_the_fraction_earned():
    bucket = TokenBucket(1, 2)
    bucket.take(T0)
    assert not bucket.take(T0 + 0.25)
    assert bucket.take(T0 + 0.5)


# --- each budget: a burst, then a GOAWAY ------------------------------------------------------
# (kind, one frame of it, burst, refill a second, the reason logged)

BUDGETS = [
    ("RST_STREAM", RstStreamFrame(1, error_code=8), 200, 100,
     "too many stream resets (Rapid Reset)"),
    ("SETTINGS", SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}), 100, 10,
     "too many SETTINGS frames"),
    ("PING", PingFrame(0, opaque_data=b"12345678"), 100, 10, "too many PING frames"),
    ("PRIORITY", PriorityFrame(1, depends_on=0, stream_weight=16), 1000, 200,
     "too many PRIORITY frames"),
    ("WINDOW_UPDATE", WindowUpdateFrame(0, window_increment=1), 1000, 100,
     "too many WINDOW_UPDATE frames"),
    ("empty DATA", DataFrame(1, data=b""), 100, 10, "too many empty DATA frames"),
    ("an unknown type", UnknownFrame(0xF0, b"x"), 100, 10,
     "too many frames of unknown types"),
]
BUDGET_IDS = [row[0] for row in BUDGETS]


@pytest.mark.parametrize("kind, frame, burst, rate, message", BUDGETS, ids=BUDGET_IDS)
def test_a_burst_of_frames_is_taken(kind, frame, burst, rate, message):
    scan(budget(), wire(*[frame] * burst))


@pytest.mark.parametrize("kind, frame, burst, rate, message", BUDGETS, ids=BUDGET_IDS)
def test_a_frame_past_the_burst_is_a_flood(kind, frame, burst, rate, message):
    target = budget()
    scan(target, wire(*[frame] * burst))
    assert flood_message(lambda: scan(target, wire(frame))) == message


@pytest.mark.parametrize("kind, frame, burst, rate, message", BUDGETS, ids=BUDGET_IDS)
def test_a_burst_past_the_budget_in_one_read_is_a_flood(kind, frame, burst, rate, message):
    assert flood_message(lambda: scan(budget(), wire(*[frame] * (burst + 1)))) == message


@pytest.mark.parametrize("kind, frame, burst, rate, message", BUDGETS, ids=BUDGET_IDS)
def test_a_budget_refills_at_its_rate(kind, frame, burst, rate, message):
    target = budget()
    scan(target, wire(*[frame] * burst), T0)
    scan(target, wire(*[frame] * rate), T0 + 1.0)
    assert flood_message(lambda: scan(target, wire(frame), T0 + 1.0)) == message


@pytest.mark.parametrize("kind, frame, burst, rate, message", BUDGETS, ids=BUDGET_IDS)
def test_frames_at_the_refill_rate_are_never_a_flood(kind, frame, burst, rate, message):
    target = budget()
    for second in range(3 * burst // rate):
        scan(target, wire(*[frame] * rate), T0 + second)


def test_the_reset_budget_grows_with_the_streams_allowed():
    target = budget(max_concurrent_streams=500)
    scan(target, wire(*[RstStreamFrame(1, error_code=8)] * 1000))
    assert flood_message(lambda: scan(target, wire(RstStreamFrame(1, error_code=8)))) == (
        "too many stream resets (Rapid Reset)")


# --- resets the server is made to send (MadeYouReset) -----------------------------------------

def test_server_resets_are_taken_up_to_the_reset_burst():
    target = budget()
    for _ in range(200):
        target.server_reset(T0)
    assert flood_message(lambda: target.server_reset(T0)) == (
        "too many streams the client made the server reset (MadeYouReset)")


def test_server_resets_and_client_resets_draw_on_one_budget():
    target = budget()
    scan(target, wire(*[RstStreamFrame(1, error_code=8)] * 150))
    for _ in range(50):
        target.server_reset(T0)
    assert flood_message(lambda: scan(target, wire(RstStreamFrame(3, error_code=8)))) == (
        "too many stream resets (Rapid Reset)")


def test_server_resets_refill_with_time():
    target = budget()
    for _ in range(200):
        target.server_reset(T0)
    for _ in range(100):
        target.server_reset(T0 + 1.0)
    with pytest.raises(Flood):
        target.server_reset(T0 + 1.0)


# --- what is not counted ---------------------------------------------------------------------

@pytest.mark.parametrize("ack", [SettingsFrame(0, flags=["ACK"]),
                                 PingFrame(0, flags=["ACK"], opaque_data=b"12345678")],
                         ids=["SETTINGS", "PING"])
def test_acknowledgements_are_not_counted(ack):
    scan(budget(), wire(*[ack] * 5000))


def test_acknowledgements_leave_the_budget_whole():
    target = budget()
    scan(target, wire(*[SettingsFrame(0, flags=["ACK"])] * 500))
    scan(target, wire(*[SettingsFrame(0)] * 100))


def test_an_empty_data_frame_that_ends_its_stream_is_not_counted():
    scan(budget(), wire(*[DataFrame(1, data=b"", flags=["END_STREAM"])] * 5000))


def test_a_data_frame_of_padding_alone_counts_as_empty():
    padding = DataFrame(1, data=b"", pad_length=0, flags=["PADDED"])
    with pytest.raises(Flood, match="too many empty DATA frames"):
        scan(budget(), wire(*[padding] * 101))


def test_data_frames_that_carry_data_are_not_counted():
    scan(budget(), wire(*[DataFrame(1, data=b"x")] * 5000))


def test_headers_frames_are_not_a_budget():
    scan(budget(), wire(*[HeadersFrame(s, data=b"x", flags=["END_HEADERS"])
                          for s in range(1, 10001, 2)]))


# --- WINDOW_UPDATE is refilled by the data sent ----------------------------------------------

def spent_window_updates() -> FloodBudget:
    target = budget()
    scan(target, wire(*[WindowUpdateFrame(0, window_increment=1)] * 1000))
    return target


def test_data_sent_earns_the_client_window_updates():
    target = spent_window_updates()
    target.data_sent(10 * WINDOW_REFILL_BYTES)
    scan(target, wire(*[WindowUpdateFrame(1, window_increment=1)] * 10))


def test_window_updates_past_what_the_data_sent_earned_are_a_flood():
    target = spent_window_updates()
    target.data_sent(10 * WINDOW_REFILL_BYTES)
    assert flood_message(lambda: scan(target, wire(
        *[WindowUpdateFrame(1, window_increment=1)] * 11))) == "too many WINDOW_UPDATE frames"


def test_data_sent_earns_no_more_than_the_burst():
    target = spent_window_updates()
    target.data_sent(10 ** 12)
    with pytest.raises(Flood):
        scan(target, wire(*[WindowUpdateFrame(0, window_increment=1)] * 1001))


# --- header blocks: CONTINUATION --------------------------------------------------------------

def header_block(sizes: list[int], stream: int = 1) -> list[Frame]:
    """A HEADERS frame of sizes[0] bytes and a CONTINUATION for each size after it,
    the last one ending the block."""
    first, *rest = sizes
    frames: list[Frame] = [HeadersFrame(stream, data=b"h" * first,
                                        flags=[] if rest else ["END_HEADERS"])]
    for index, size in enumerate(rest):
        last = index == len(rest) - 1
        frames.append(ContinuationFrame(stream, data=b"c" * size,
                                        flags=["END_HEADERS"] if last else []))
    return frames


def test_a_header_block_up_to_the_limit_is_taken():
    scan(budget(header_block_limit=100), wire(*header_block([50, 30, 20])))


def test_a_header_block_past_the_limit_is_a_flood():
    target = budget(header_block_limit=100)
    assert flood_message(lambda: scan(target, wire(*header_block([50, 30, 21])))) == (
        "a header block over 100 bytes (CONTINUATION flood)")


def test_the_headers_frame_counts_in_the_block():
    with pytest.raises(Flood):
        scan(budget(header_block_limit=100), wire(*header_block([100, 1])))


def test_each_header_block_has_the_whole_limit():
    blocks = [frame for stream in (1, 3, 5) for frame in header_block([60, 40], stream)]
    scan(budget(header_block_limit=100), wire(*blocks))


def test_as_many_continuations_as_allowed_are_taken():
    scan(budget(), wire(*header_block([1] + [0] * MAX_CONTINUATIONS)))


def test_one_continuation_more_than_allowed_is_a_flood():
    frames = header_block([1] + [0] * (MAX_CONTINUATIONS + 1))
    assert flood_message(lambda: scan(budget(), wire(*frames))) == (
        f"more than {MAX_CONTINUATIONS} CONTINUATION frames in one header block")


def test_an_empty_headers_frame_still_opens_a_block():
    with pytest.raises(Flood):
        scan(budget(), wire(*header_block([0] + [0] * (MAX_CONTINUATIONS + 1))))


def test_endless_empty_continuations_are_a_flood_before_the_block_ends():
    frames = header_block([1] + [0] * 10_000)[:-1]  # never ending
    with pytest.raises(Flood):
        scan(budget(), wire(*frames))


def test_each_header_block_has_its_own_continuation_count():
    blocks = [frame for stream in (1, 3, 5)
              for frame in header_block([1] + [0] * MAX_CONTINUATIONS, stream)]
    scan(budget(), wire(*blocks))


# --- the streams a client opened --------------------------------------------------------------

def test_the_last_stream_is_the_highest_opened():
    target = budget()
    scan(target, wire(*[HeadersFrame(s, data=b"x", flags=["END_HEADERS"]) for s in (1, 3, 7)]))
    assert (target.last_stream, target.streams) == (7, 3)


def test_trailers_on_an_open_stream_open_no_stream():
    target = budget()
    scan(target, wire(HeadersFrame(1, data=b"x", flags=["END_HEADERS"]),
                      HeadersFrame(3, data=b"x", flags=["END_HEADERS"]),
                      HeadersFrame(1, data=b"t", flags=["END_HEADERS", "END_STREAM"])))
    assert (target.last_stream, target.streams) == (3, 2)


def test_a_stream_opened_by_a_header_block_counts_once():
    target = budget()
    scan(target, wire(*header_block([10, 10, 10], stream=5)))
    assert (target.last_stream, target.streams) == (5, 1)


def test_the_reserved_bit_is_not_part_of_the_stream_id():
    frame = bytearray(HeadersFrame(5, data=b"x", flags=["END_HEADERS"]).serialize())
    frame[5] |= 0x80
    target = budget()
    scan(target, bytes(frame))
    assert target.last_stream == 5


def test_no_frames_no_streams():
    target = budget()
    assert (target.last_stream, target.streams, target.retiring) == (0, 0, False)


def test_a_connection_retires_after_its_streams(monkeypatch):
    monkeypatch.setattr(flood, "STREAMS_PER_CONNECTION", 3)
    target = budget()
    scan(target, wire(*header_block([1], 1), *header_block([1], 3)))
    assert not target.retiring
    scan(target, wire(*header_block([1], 5)))
    assert target.retiring


def test_trailers_do_not_bring_retirement_closer(monkeypatch):
    monkeypatch.setattr(flood, "STREAMS_PER_CONNECTION", 2)
    target = budget()
    scan(target, wire(*header_block([1], 1), *header_block([1], 1), *header_block([1], 1)))
    assert not target.retiring


# --- the bytes, however they arrive -----------------------------------------------------------
# A DATA payload that holds frames of its own: read as headers, they would count.
DECOY = wire(PingFrame(0, opaque_data=b"12345678"), SettingsFrame(0), RstStreamFrame(1))

MIXED = wire(
    SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20}),
    WindowUpdateFrame(0, window_increment=1 << 20),
    *header_block([20, 7, 3], stream=1),
    DataFrame(1, data=DECOY),
    DataFrame(1, data=b""),
    PingFrame(0, opaque_data=b"abcdefgh"),
    PriorityFrame(3, depends_on=1, stream_weight=16),
    HeadersFrame(3, data=b"y" * 40, flags=["END_HEADERS", "END_STREAM"]),
    RstStreamFrame(3, error_code=8),
    SettingsFrame(0, flags=["ACK"]),
    UnknownFrame(0xF0, b"?" * 5),
    DataFrame(1, data=DECOY * 3, flags=["END_STREAM"]),
)


def counts(target: FloodBudget) -> dict[str, object]:
    """What the frames scanned so far spent and opened."""
    buckets = ("resets", "settings", "pings", "priorities", "window_updates", "empties")
    spent = {name: getattr(target, name).burst - getattr(target, name).tokens
             for name in buckets}
    return {**spent, "streams": target.streams, "last_stream": target.last_stream}


EXPECTED = {"resets": 1, "settings": 1, "pings": 1, "priorities": 1, "window_updates": 1,
            "empties": 2, "streams": 2, "last_stream": 3}


def fed(pieces: list[bytes], skip: int = 0) -> dict[str, object]:
    target = budget(skip=skip)
    for piece in pieces:
        scan(target, piece)
    return counts(target)


def test_each_frame_is_counted_once_and_payloads_are_skipped():
    assert fed([MIXED]) == EXPECTED


def test_a_read_cut_anywhere_counts_each_frame_once():
    for cut in range(len(MIXED) + 1):
        assert fed([MIXED[:cut], MIXED[cut:]]) == EXPECTED, f"cut at byte {cut}"


def test_bytes_one_at_a_time_count_each_frame_once():
    assert fed([MIXED[i:i + 1] for i in range(len(MIXED))]) == EXPECTED


def test_a_frame_header_cut_in_three_counts_once():
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    assert fed([ping[:2], ping[2:5], ping[5:]])["pings"] == 1


def test_a_payload_spanning_many_reads_is_skipped():
    data = wire(DataFrame(1, data=DECOY * 50), PingFrame(0, opaque_data=b"12345678"))
    pieces = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert fed(pieces) == {**fed([]), "pings": 1}


def test_empty_reads_change_nothing():
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    assert fed([b"", ping[:4], b"", ping[4:], b""])["pings"] == 1


def test_the_preface_is_passed_over():
    assert fed([PREFACE + MIXED], skip=len(PREFACE)) == EXPECTED


def test_the_preface_cut_anywhere_is_passed_over():
    data = PREFACE + MIXED
    for cut in range(len(PREFACE) + 10):
        assert fed([data[:cut], data[cut:]], skip=len(PREFACE)) == EXPECTED, f"cut at {cut}"


def test_the_preface_one_byte_at_a_time_is_passed_over():
    data = PREFACE + MIXED
    assert fed([data[i:i + 1] for i in range(len(data))], skip=len(PREFACE)) == EXPECTED


def test_a_flood_split_across_reads_is_still_a_flood():
    data = wire(*[PingFrame(0, opaque_data=b"12345678")] * 101)
    target = budget()
    with pytest.raises(Flood):
        for i in range(0, len(data), 5):
            scan(target, data[i:i + 5])
