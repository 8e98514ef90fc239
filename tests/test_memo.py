"""hybrid.protocol.memo: the bounded table behind every process-global cache."""

from __future__ import annotations

import pytest

from hybrid.protocol.memo import Memo


def test_a_key_never_remembered_gets_none():
    assert Memo[str, int](4).known.get("absent") is None


def test_a_remembered_key_gets_its_value():
    memo = Memo[str, int](4)
    memo.remember("key", 1)
    assert memo.known.get("key") == 1


def test_remember_returns_the_value_it_was_given():
    assert Memo[str, int](4).remember("key", 1) == 1


def test_a_full_table_remembers_nothing_more():
    memo = Memo[int, int](2)
    for key in range(3):
        memo.remember(key, key)
    assert memo.known.get(2) is None and len(memo) == 2


def test_a_full_table_keeps_what_it_holds():
    memo = Memo[int, int](2)
    for key in range(100):
        memo.remember(key, key)
    assert (memo.known.get(0), memo.known.get(1)) == (0, 1)


def test_a_key_the_table_does_not_admit_is_not_remembered():
    memo = Memo[str, int](4, admit=lambda key: len(key) <= 3)
    memo.remember("long", 1)
    assert "long" not in memo


def test_a_key_the_table_admits_is_remembered():
    memo = Memo[str, int](4, admit=lambda key: len(key) <= 3)
    memo.remember("abc", 1)
    assert "abc" in memo


def test_a_refused_key_takes_no_room():
    memo = Memo[str, int](1, admit=lambda key: key != "refused")
    memo.remember("refused", 1)
    memo.remember("kept", 2)
    assert memo.known.get("kept") == 2


def test_an_unhashable_key_is_not_remembered_and_raises_nothing():
    memo = Memo[object, int](4)
    assert memo.remember([1, 2], 3) == 3 and len(memo) == 0


def test_looking_up_an_unhashable_key_raises_type_error_as_a_dict_does():
    with pytest.raises(TypeError):
        Memo[object, int](4).known.get([1, 2])


def test_clear_forgets_everything():
    memo = Memo[str, int](4)
    memo.remember("key", 1)
    memo.clear()
    assert memo.known.get("key") is None and len(memo) == 0


def test_a_cleared_table_has_room_again():
    memo = Memo[int, int](1)
    memo.remember(0, 0)
    memo.clear()
    memo.remember(1, 1)
    assert memo.known.get(1) == 1
