"""`Handoff`: what a pool thread running a WSGI app hands the event loop, and
how the thread waits for the loop.

Two things run a WSGI call on a thread for the asgi worker's loop: the
bridge's `_Exchange` (a WSGI app as an ASGI app) and the direct path's
`WsgiCycle` (workers.asgi.wsgi_cycle). Both hand the loop what the app
produced and wait for it in the same way, here, so that the locking is
written once.

The thread posts items (pieces of the answer, a wish for more of the
body, the end); the loop is woken with one `call_soon_threadsafe` per
burst, only when it is not already going to look (`posted`), and takes
everything posted so far with `take()`: until it gives nothing, when the
loop waits between the items it took (the bridge's relay), or once, when it
handles them all at once (the direct path). A thread that streams waits once
more than WINDOW bytes are handed over and not yet acknowledged by the
loop (`acked`, once the transport took them); a thread that asks for body
waits until the loop says it answered (`answered`). Once the client is
gone (`leave`), no wait of the thread's lasts: it sees `gone` and stops.

The body goes the same way, the other way round: the loop receives it
(`body_received`), before the call or when the thread `ask`s for more, and
the thread reads it (`read_body`, behind `wsgi.input`).

Whether a thread runs the call now is kept here too (`start_call`,
`end_call`): a request given up for --request-timeout (`give_up`) while its
call runs leaves that call abandoned, which the bridge counts.

Thread boundaries: the loop calls `take`, `acked`, `answered`,
`body_received`, `leave` and `give_up`; the thread calls `start_call`,
`post`, `ask`, `read_body` and `end_call`; they share the fields under
`lock`, and `body` and `body_done`, which the loop fills before it queues
the call or answers the thread's `ask`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

from hybrid.typing import Message
from hybrid.wsgi_input import BodyReadError

WINDOW: Final = 262144
"""Bytes of a streamed response a thread may run ahead of the transport."""

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items from one pool thread to the loop, for one request."""

    __slots__ = ("loop", "lock", "inbox", "posted", "gone", "unacked", "asking", "waiting",
                 "calling", "abandoned", "body", "body_done")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.inbox: list[T] = []
        self.posted = False  # the loop will look at the inbox without being woken
        self.gone = False  # the client left, or the answer was cut: the thread stops
        self.unacked = 0  # streamed bytes handed to the loop, not yet taken by the transport
        self.asking = False  # the thread waits for the loop to answer its question
        # The thread's waits, made on first need: most requests never wait, and
        # a Condition costs more to make than the rest of the hand-off.
        self.waiting: threading.Condition | None = None
        self.calling = False  # a pool thread runs the app's call now
        self.abandoned = False  # given up (--request-timeout) while the call ran
        self.body: deque[bytes] = deque()  # the request body received, not read yet
        self.body_done = False  # the rest of the body is all in `body`

    # --- on the loop -----------------------------------------------------------------

    def take(self, at_once: bool = False) -> list[T]:
        """What was posted since the last call; [] when nothing was, and then the
        next post wakes the loop again. `at_once`: the caller handles all of it
        before it returns (it does not wait between), so the next post may wake
        the loop at once, and no second call is needed to say so."""
        with self.lock:
            items, self.inbox = self.inbox, []
            if at_once or not items:
                self.posted = False
        return items

    def acked(self, size: int) -> None:
        """The transport took `size` streamed bytes: the thread may run ahead again."""
        with self.lock:
            self.unacked -= size
            if self.waiting is not None and self.unacked <= WINDOW:
                self.waiting.notify()

    def answered(self) -> None:
        """The loop did what the thread asked (`ask`)."""
        with self.lock:
            self.asking = False
            if self.waiting is not None:
                self.waiting.notify()

    def body_received(self, message: Message) -> int | None:
        """The loop received `message` for the thread (before the call, or when
        `ask`ed): a piece of the body (its size), or word that the client left
        (None; then `leave`)."""
        if message["type"] != "http.request":
            self.leave()
            return None
        data = message.get("body", b"")
        if data:
            self.body.append(data)
        self.body_done = not message.get("more_body", False)
        return len(data)

    def give_up(self) -> bool:
        """The request timed out: `leave`, and say whether its call still runs,
        then abandoned (a thread cannot be stopped, only left to finish)."""
        with self.lock:
            self.gone = True
            if self.waiting is not None:
                self.waiting.notify()
            self.abandoned = self.calling
            return self.abandoned

    def leave(self) -> None:
        """The client is gone, or the answer was cut: the thread's waits end, and
        what it posts from now on is not sent."""
        with self.lock:
            self.gone = True
            if self.waiting is not None:
                self.waiting.notify()

    # --- on the pool thread ------------------------------------------------------------

    def start_call(self) -> bool:
        """A thread takes the call: False when the client left (or the request was
        given up) while it waited for one, and then the app is not called."""
        with self.lock:
            self.calling = not self.gone
            return self.calling

    def end_call(self, items: Sequence[T], wake: Callable[[], None]) -> bool:
        """The call is over: post its last `items` (as `post` does); True when it
        had been given up (`give_up`)."""
        with self.lock:
            self.calling = False
            abandoned = self.abandoned
            self.inbox += items
            unseen = not self.posted
            self.posted = True
        if unseen:
            self._wake_loop(wake)
        return abandoned

    def post(self, items: Sequence[T], wake: Callable[[], None], size: int = 0) -> None:
        """Hand `items` to the loop; `wake` is called on the loop when it was not
        going to look, and must `take()` until that gives nothing. `size`: bytes
        of a streamed piece among the items, which may make the thread wait for
        the transport. (The loop's side is not kept here: a handoff that held
        its owner's method would make a reference cycle of every request, left
        to the garbage collector.)"""
        with self.lock:
            self.inbox += items
            self.unacked += size
            unseen = not self.posted
            self.posted = True
        if unseen:
            self._wake_loop(wake)
        if size:
            with self.lock:
                while self.unacked > WINDOW and not self.gone:
                    self._wait()

    def ask(self, question: T, wake: Callable[[], None]) -> bool:
        """Post `question` (as `post` does) and wait until the loop has `answered`
        it; False if the client was gone (then nothing was asked)."""
        with self.lock:
            if self.gone:
                return False
            self.asking = True
        self.post([question], wake)
        with self.lock:
            while self.asking and not self.gone:
                self._wait()
        return True

    def read_body(self, question: T, wake: Callable[[], None]) -> bytes:
        """`wsgi.input`'s receive(): the next piece of the body, b"" at its end;
        when none is here, `ask` the loop for more with `question`."""
        body = self.body
        while not body:
            if self.body_done:
                return b""
            if not self.ask(question, wake):
                raise BodyReadError(400, "the client left before the body ended")
        return body.popleft()

    def _wake_loop(self, wake: Callable[[], None]) -> None:
        try:
            self.loop.call_soon_threadsafe(wake)
        except RuntimeError:  # the loop is closed: the worker is gone
            self.leave()

    def _wait(self) -> None:
        """Wait (holding `lock`) until the loop says something changed."""
        if self.waiting is None:
            self.waiting = threading.Condition(self.lock)
        self.waiting.wait()
