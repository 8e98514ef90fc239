"""The asgi worker's idle keep-alive connections, oldest first: at
--worker-connections a new connection takes the oldest one's place, found at
once rather than by a scan of every connection."""

from __future__ import annotations

from hybrid.workers.asgi.idle import IdleConnections


def test_the_oldest_is_the_one_idle_longest():
    idle: IdleConnections[str] = IdleConnections()
    for name in ("a", "b", "c"):
        idle.add(name)
    assert idle.oldest() == "a"


def test_a_connection_idle_again_becomes_the_newest():
    idle: IdleConnections[str] = IdleConnections()
    for name in ("a", "b", "a"):
        idle.add(name)
    assert idle.oldest() == "b"
    assert len(idle) == 2


def test_a_busy_or_closing_connection_is_no_longer_offered():
    idle: IdleConnections[str] = IdleConnections()
    idle.add("a")
    idle.add("b")
    idle.discard("a")
    assert idle.oldest() == "b"
    assert "a" not in idle


def test_none_idle_offers_none():
    idle: IdleConnections[str] = IdleConnections()
    idle.add("a")
    idle.discard("a")
    idle.discard("never-added")
    assert idle.oldest() is None
    assert len(idle) == 0
