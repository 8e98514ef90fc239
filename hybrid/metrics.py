"""Request counters in shared memory: each worker writes its own, the arbiter
sums them for `/metrics`.

Every worker gets a `Counters` block before the fork: a few rows of 64-bit
integers in anonymous shared memory. A row has one writer: row 0 is the
worker's main thread (or event loop), row n is the thread worker's n-th pool
thread, so a count is one aligned 8-byte store, with no lock and no system
call, and no increment is lost to another thread. Requests are counted in one
block of slots per protocol (HTTP/1.x, HTTP/2), so the protocol costs a count
an offset, not a branch. The arbiter reads a block whenever it is scraped,
and once more when the worker has exited, adding its counts to the totals of
the workers that went before (counters never go down; the gauges of a dead
worker are gone with it).
"""

from __future__ import annotations

import bisect
import mmap
import platform
from dataclasses import dataclass, field

import psutil

from hybrid import __version__, native

PROTOCOLS = ("HTTP/1.x", "HTTP/2")
"""Protocol labels of `hybrid_requests_total`: "HTTP/1.x" counts HTTP/1.0 and
HTTP/1.1 together (they share a connection's code and its limits), "HTTP/2"
is RFC 9113's name for h2 and h2c (no minor version)."""
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other", "refused")
"""Method labels; "refused": answered by the server itself, the app never saw it
(a malformed head, a timeout, a limit), whatever the method was."""
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the request duration histogram, in seconds (then +Inf)."""
CLASS_IDS = {"sync": 1, "thread": 2, "asgi": 3}
"""Worker classes by the number a block records; 0: not known yet, or another."""



# The slots of one row.
PROTOCOL_BLOCK = len(METHODS) * len(STATUS_CLASSES)  # one protocol's: by method, then status class
REQUESTS = 0  # len(PROTOCOLS) blocks: HTTP/1.x's, then HTTP/2's
DURATIONS = REQUESTS + len(PROTOCOLS) * PROTOCOL_BLOCK  # one count per bucket, +Inf last
DURATION_SUM_US = DURATIONS + len(BUCKETS) + 1
BYTES_IN = DURATION_SUM_US + 1
BYTES_OUT = BYTES_IN + 1
COUNTER_SLOTS = BYTES_OUT + 1
# Row 0 only: what the worker is, and its gauges.
CLASS_ID = COUNTER_SLOTS
IN_FLIGHT = CLASS_ID + 1
CONNECTIONS = IN_FLIGHT + 1
WEBSOCKETS = CONNECTIONS + 1
ROW_SLOTS = WEBSOCKETS + 1

_STATUS_CLASSES = len(STATUS_CLASSES)
_METHOD_SLOT = {name: REQUESTS + n * _STATUS_CLASSES for n, name in enumerate(METHODS[:-2])}
_OTHER_SLOT = REQUESTS + METHODS.index("other") * _STATUS_CLASSES
_REFUSED_SLOT = REQUESTS + METHODS.index("refused") * _STATUS_CLASSES
_FIRST_BUCKET = BUCKETS[0]


class Counters:
    """One worker's block: `rows` rows (its main thread, then one per pool thread).

    With no rows (nothing will read them: no --control-bind), counting is off
    and every row is an `Uncounted` one, which costs a request one empty call.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._shm = mmap.mmap(-1, max(rows * ROW_SLOTS * 8, mmap.PAGESIZE))
        self._slots = memoryview(self._shm).cast("q")

    def row(self, index: int) -> Row:
        """The writer of row `index` (0: the main thread's)."""
        if not self.rows:
            return Uncounted(self._slots, 0)
        if not 0 <= index < self.rows:
            raise IndexError(f"row {index} of {self.rows}")
        return Row(self._slots, index * ROW_SLOTS)

    def read(self) -> list[int]:
        """The rows summed: counters, then (from row 0) the class and the gauges."""
        slots = self._slots
        if not self.rows:
            return [0] * ROW_SLOTS
        total = list(slots[0:ROW_SLOTS])
        for start in range(ROW_SLOTS, self.rows * ROW_SLOTS, ROW_SLOTS):
            for n in range(COUNTER_SLOTS):
                total[n] += slots[start + n]
        return total

    def close(self) -> None:
        self._slots.release()
        self._shm.close()


class Row:
    """What one thread of a worker counts."""

    __slots__ = ("_slots", "_base")

    def __init__(self, slots: memoryview, base: int) -> None:
        self._slots = slots
        self._base = base

    def request_done(self, method: str, status: int, bytes_out: int, seconds: float,
                     http2: bool = False) -> None:
        # (On every request's path: four stores, nothing else; most requests are
        # in the first bucket, which needs no search. The protocol picks a block
        # by multiplication, not by a branch.)
        slots, base = self._slots, self._base
        slots[base + http2 * PROTOCOL_BLOCK + _METHOD_SLOT.get(method, _OTHER_SLOT)
              + (status // 100 - 1 if 100 <= status < 600 else 4)] += 1
        slots[base + DURATIONS
              + (0 if seconds < _FIRST_BUCKET else bisect.bisect_left(BUCKETS, seconds))] += 1
        slots[base + DURATION_SUM_US] += int(seconds * 1e6)
        slots[base + BYTES_OUT] += bytes_out

    def refused(self, status: int, bytes_out: int, http2: bool = False) -> None:
        """An error the server answered without the app (not in the durations)."""
        slots, base = self._slots, self._base
        slots[base + http2 * PROTOCOL_BLOCK + _REFUSED_SLOT
              + (status // 100 - 1 if 100 <= status < 600 else 4)] += 1
        slots[base + BYTES_OUT] += bytes_out

    def received(self, count: int) -> None:
        self._slots[self._base + BYTES_IN] += count

    def set_class(self, name: str) -> None:
        self._slots[self._base + CLASS_ID] = CLASS_IDS.get(name, 0)

    def set_gauges(self, in_flight: int, connections: int, websockets: int = 0) -> None:
        slots, base = self._slots, self._base
        slots[base + IN_FLIGHT] = in_flight
        slots[base + CONNECTIONS] = connections
        slots[base + WEBSOCKETS] = websockets


class Uncounted(Row):
    """A row that counts nothing (counting is off)."""

    __slots__ = ()

    def request_done(self, method: str, status: int, bytes_out: int, seconds: float,
                     http2: bool = False) -> None:
        pass

    def refused(self, status: int, bytes_out: int, http2: bool = False) -> None:
        pass

    def received(self, count: int) -> None:
        pass

    def set_class(self, name: str) -> None:
        pass

    def set_gauges(self, in_flight: int, connections: int, websockets: int = 0) -> None:
        pass


@dataclass
class Totals:
    """Counts summed over workers, by worker class name."""

    by_class: dict[str, list[int]] = field(default_factory=dict)

    def add(self, values: list[int], *, counters_only: bool = False) -> None:
        if not values[CLASS_ID] and not any(values):
            return  # a worker still loading its app: nothing to say, and no class yet
        name = class_name(values[CLASS_ID])
        mine = self.by_class.setdefault(name, [0] * ROW_SLOTS)
        for n in range(COUNTER_SLOTS if counters_only else ROW_SLOTS):
            if n != CLASS_ID:
                mine[n] += values[n]

    def merged(self, other: Totals) -> Totals:
        result = Totals({name: list(values) for name, values in self.by_class.items()})
        for name, values in other.by_class.items():
            mine = result.by_class.setdefault(name, [0] * ROW_SLOTS)
            for n, value in enumerate(values):
                mine[n] += value
        return result


def class_name(class_id: int) -> str:
    for name, number in CLASS_IDS.items():
        if number == class_id:
            return name
    return "other"


def _request_lines(worker_class: str, values: list[int]) -> list[str]:
    """The non-zero `hybrid_requests_total` samples of one worker class."""
    lines = []
    for p, protocol in enumerate(PROTOCOLS):
        for m, method in enumerate(METHODS):
            for c, status_class in enumerate(STATUS_CLASSES):
                count = values[REQUESTS + p * PROTOCOL_BLOCK + m * len(STATUS_CLASSES) + c]
                if count:
                    lines.append(f'hybrid_requests_total{{worker_class="{worker_class}",'
                                 f'protocol="{protocol}",method="{method}",'
                                 f'status="{status_class}"}} {count}')
    return lines


def render(totals: Totals, *, restarts: dict[str, int], pids: list[int], uptime: float,
           ready: int, configured: int) -> str:
    """The Prometheus text exposition (format 0.0.4) of everything the arbiter knows."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    classes = sorted(totals.by_class.items())
    family("hybrid_requests_total", "counter",
           "Requests answered, by worker class, protocol (HTTP/1.x or HTTP/2), method and "
           "status class; the only family labelled by protocol.")
    for name, values in classes:
        out.extend(_request_lines(name, values))
    family("hybrid_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer's end.")
    for name, values in classes:
        cumulative = 0
        for b, bound in enumerate((*BUCKETS, float("inf"))):
            cumulative += values[DURATIONS + b]
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'hybrid_request_duration_seconds_bucket{{worker_class="{name}",'
                       f'le="{le}"}} {cumulative}')
        out.append(f'hybrid_request_duration_seconds_sum{{worker_class="{name}"}} '
                   f'{values[DURATION_SUM_US] / 1e6:.6f}')
        out.append(f'hybrid_request_duration_seconds_count{{worker_class="{name}"}} {cumulative}')
    for metric, slot, kind, help_text in (
            ("hybrid_received_bytes_total", BYTES_IN, "counter",
             "Bytes read from client connections."),
            ("hybrid_response_body_bytes_total", BYTES_OUT, "counter",
             "Response body bytes sent (framing not counted)."),
            ("hybrid_requests_in_flight", IN_FLIGHT, "gauge",
             "Requests (and WebSockets) whose app runs now."),
            ("hybrid_open_connections", CONNECTIONS, "gauge", "Open client connections."),
            ("hybrid_open_websockets", WEBSOCKETS, "gauge", "Open WebSockets.")):
        family(metric, kind, help_text)
        for name, values in classes:
            out.append(f'{metric}{{worker_class="{name}"}} {values[slot]}')
    family("hybrid_worker_restarts_total", "counter",
           f"Workers replaced, by reason ({', '.join(sorted(restarts))}).")
    for reason, count in sorted(restarts.items()):
        out.append(f'hybrid_worker_restarts_total{{reason="{reason}"}} {count}')
    family("hybrid_workers", "gauge", "Worker processes, by state.")
    out.append(f'hybrid_workers{{state="configured"}} {configured}')
    out.append(f'hybrid_workers{{state="running"}} {len(pids)}')
    out.append(f'hybrid_workers{{state="ready"}} {ready}')
    family("hybrid_worker_resident_memory_bytes", "gauge", "Resident memory of each worker.")
    cpu_lines = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                rss = process.memory_info().rss
                times = process.cpu_times()
        except (psutil.Error, OSError):
            continue  # it exited meanwhile (or the arbiter is out of descriptors)
        out.append(f'hybrid_worker_resident_memory_bytes{{pid="{pid}"}} {rss}')
        cpu_lines.append(f'hybrid_worker_cpu_seconds_total{{pid="{pid}"}} '
                         f'{times.user + times.system:.2f}')
    family("hybrid_worker_cpu_seconds_total", "counter", "CPU time of each worker.")
    out.extend(cpu_lines)
    family("hybrid_arbiter_uptime_seconds", "gauge", "Seconds since the arbiter started.")
    out.append(f"hybrid_arbiter_uptime_seconds {uptime:.3f}")
    family("hybrid_build_info", "gauge",
           "The running hybrid, its build (compiled or interpreted) and Python, as labels.")
    out.append(f'hybrid_build_info{{version="{__version__}",build="{native.build().name}",'
               f'python="{platform.python_version()}"}} 1')
    return "\n".join(out) + "\n"
