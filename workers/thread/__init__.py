"""The `thread` worker class: keep-alive connections on epoll, WSGI requests
on a leader/follower pool of threads.

    worker.py   ThreadWorker: the main thread's loop (heartbeat, signals,
                timeouts, the idle sweep, a graceful stop's grace, pacing
                accepting) and its theory of operation
    pool.py     the leader/follower pool: who polls, who serves, promotion
    serving.py  the request path, on whichever thread an event reaches:
                accepting, reading, serving, giving a client back, closing it
    client.py   one client connection: its Phase and its ownership bits
    gather.py   small bodies gathered before the app runs, and their budget
"""

import select

if not hasattr(select, "epoll"):
    raise ImportError("the thread worker class needs Linux (epoll); use -k sync elsewhere")

from hybrid.workers.thread.client import Client, Phase  # noqa: E402
from hybrid.workers.thread.worker import ThreadWorker  # noqa: E402

__all__ = ["Client", "Phase", "ThreadWorker"]
