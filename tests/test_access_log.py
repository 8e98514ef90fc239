"""The access log's text format: gunicorn's default line exactly, and its
duration atoms as gunicorn computes them (in-process: no server)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from hybrid import config, logs
from hybrid.protocol import Request, RequestParser

# gunicorn's default access_log_format, as its settings document it.
GUNICORN_DEFAULT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
# A line of that format, as a gunicorn log parser reads it (the combined log format).
COMBINED = re.compile(r'(\S+) (\S+) (\S+) \[([^]]+)\] "([^"]*)" (\d{3}) (\S+) "([^"]*)" "([^"]*)"\Z')


def request(head: bytes = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: spec-agent\r\n"
                          b"Referer: http://ref/\r\n\r\n") -> Request:
    (parsed,) = [event for event in RequestParser().feed(head) if isinstance(event, Request)]
    return parsed


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines():
    """What the access log writes, line by line."""
    handler = Collected()
    logger = logs.access_logger
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(saved[0])
    logger.propagate = saved[1]


def line_for(logformat: str, lines: list[str], duration: float = 1.234567) -> str:
    logs.AccessLog(logformat).log(request(), 200, 5, ("203.0.113.7", "4000"), duration)
    return lines[-1]


def test_the_default_format_is_gunicorns():
    assert config.DEFAULT_ACCESS_LOGFORMAT == GUNICORN_DEFAULT


def test_the_default_line_is_a_combined_log_line_with_nothing_after_the_user_agent(lines):
    fields = COMBINED.match(line_for(config.DEFAULT_ACCESS_LOGFORMAT, lines))
    assert fields is not None, lines[-1]
    assert (fields[1], fields[5], fields[6], fields[7], fields[8], fields[9]) == (
        "203.0.113.7", "GET /a?b=c HTTP/1.1", "200", "5", "http://ref/", "spec-agent")


@pytest.mark.parametrize(("atom", "shown"), [
    ("T", "1"),  # whole seconds
    ("D", "1234567"),  # microseconds
    ("M", "1234"),  # milliseconds
    ("L", "1.234567"),  # seconds, with six decimals
])
def test_the_duration_atoms_are_gunicorns(lines, atom, shown):
    assert line_for(f"%({atom})s", lines) == shown


def test_the_json_line_keeps_the_duration(lines):
    assert json.loads(line_for(logs.JSON_FORMAT, lines))["duration"] == 1.234567
