"""`Memo`: the bounded table behind every process-global cache of the server.

The server remembers what it worked out from values that repeat: an app's
status lines, header names, header lists and heads, a client's field names
and Host fields. Each of those tables is a `Memo`, and they share one policy:

* A table holds at most `entries` keys (a few more at worst, when threads
  race past the check: no lock is taken). Once full, it keeps what it holds
  and remembers nothing more: a key first seen after that is worked out each
  time it comes, as it would be without a table. Nothing is ever evicted, so
  a burst of new keys (a client sending random field names, an app setting a
  new cookie on every response) cannot push out the keys that were being
  hit; a process learns its working set in its first requests.
* `admit(key)` may refuse a key: one too long to be worth its memory (a
  table keyed by what a client sends bounds the key's size this way, so that
  `entries` times that size bounds the table), or one that is not safe to
  hold (a str subclass, whose hash and equality are its own).
* An unhashable key (a header pair given as a list) is never remembered.

Lookups are on every response's path, so they are a plain dict's subscript:
`memo.known[key]` (KeyError when the key was never remembered, TypeError
when it is unhashable). A dict subclass would cost more per lookup, and a
method call more again. `known` is filled only through `remember()`: a plain
`memo.known[key] = value` would pass the bound.

No I/O: a table is filled by whichever thread misses first, and two threads
storing the same key store equal values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded memo table: `known[key]` the value remembered (KeyError if
    none); `remember(key, value)` after working it out."""

    __slots__ = ("known", "entries", "admit")

    def __init__(self, entries: int, admit: Callable[[K], bool] | None = None) -> None:
        self.known: dict[K, V] = {}
        self.entries = entries
        self.admit = admit

    def remember(self, key: K, value: V) -> V:
        """Keep `value` for `key` if the table has room and admits the key;
        return `value` either way."""
        if len(self.known) < self.entries and (self.admit is None or self.admit(key)):
            try:
                self.known[key] = value
            except TypeError:
                pass  # unhashable: worked out again each time
        return value

    def clear(self) -> None:
        """Forget everything (what the values were worked out from has changed)."""
        self.known.clear()

    def __len__(self) -> int:
        return len(self.known)

    def __contains__(self, key: object) -> bool:
        return key in self.known
