"""hybrid.handoff.Handoff without a server: what a pool thread hands the loop,
when the loop is woken, and how the thread's waits end."""

from __future__ import annotations

import threading

from hybrid.handoff import WINDOW, Handoff


class RecordingLoop:
    """Stands for the event loop: records what it was asked to call."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def call_soon_threadsafe(self, callback: object) -> None:
        self.calls.append(callback)


class ClosedLoop:
    def call_soon_threadsafe(self, callback: object) -> None:
        raise RuntimeError("Event loop is closed")


def wake() -> None:
    """The loop's side (never run here: RecordingLoop records it)."""


def test_a_burst_of_posts_wakes_the_loop_once():
    loop = RecordingLoop()
    handoff: Handoff[int] = Handoff(loop)  # type: ignore[arg-type]
    handoff.post([1], wake)
    handoff.post([2, 3], wake)
    assert loop.calls == [wake]
    assert handoff.take() == [1, 2, 3]


def test_the_loop_is_woken_again_once_a_take_found_nothing():
    loop = RecordingLoop()
    handoff: Handoff[int] = Handoff(loop)  # type: ignore[arg-type]
    handoff.post([1], wake)
    assert handoff.take() == [1]
    handoff.post([2], wake)  # the loop said nothing yet: it will look again
    assert len(loop.calls) == 1
    assert handoff.take() == [2]
    assert handoff.take() == []
    handoff.post([3], wake)
    assert len(loop.calls) == 2


def test_a_take_at_once_lets_the_next_post_wake_the_loop():
    loop = RecordingLoop()
    handoff: Handoff[int] = Handoff(loop)  # type: ignore[arg-type]
    handoff.post([1], wake)
    assert handoff.take(at_once=True) == [1]
    handoff.post([2], wake)
    assert len(loop.calls) == 2


def test_a_thread_that_asks_after_the_client_left_is_told_so_at_once():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    handoff.leave()
    assert handoff.ask("body", wake) is False
    assert handoff.take() == []


def test_a_thread_that_asks_waits_until_the_loop_answers():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(handoff.ask("body", wake)))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()  # waiting
    assert handoff.take() == ["body"]
    handoff.answered()
    thread.join(5)
    assert answers == [True]


def test_a_streaming_thread_waits_once_a_window_is_unacknowledged():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: handoff.post(["piece"], wake, WINDOW + 1))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()  # more than WINDOW bytes not taken by the transport
    handoff.acked(WINDOW + 1)
    thread.join(5)
    assert not thread.is_alive()


def test_a_client_that_leaves_ends_a_streaming_threads_wait():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: handoff.post(["piece"], wake, WINDOW + 1))
    thread.start()
    thread.join(0.2)
    handoff.leave()
    thread.join(5)
    assert not thread.is_alive() and handoff.gone


def test_a_post_to_a_closed_loop_leaves():
    handoff: Handoff[str] = Handoff(ClosedLoop())  # type: ignore[arg-type]
    handoff.post(["piece"], wake)
    assert handoff.gone


def test_a_call_whose_client_left_while_it_waited_is_not_started():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    handoff.leave()
    assert handoff.start_call() is False


def test_a_request_given_up_while_its_call_runs_leaves_the_call_abandoned():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    assert handoff.start_call()
    assert handoff.give_up() is True
    assert handoff.end_call(["piece"], wake) is True
    assert handoff.take() == ["piece"]


def test_a_request_given_up_before_its_call_started_abandons_nothing():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    assert handoff.give_up() is False
    assert handoff.start_call() is False
    assert handoff.end_call([], wake) is False


def test_a_call_that_ends_in_time_was_not_abandoned():
    handoff: Handoff[str] = Handoff(RecordingLoop())  # type: ignore[arg-type]
    assert handoff.start_call()
    assert handoff.end_call(["piece"], wake) is False
    assert handoff.give_up() is False
