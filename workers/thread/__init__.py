"""The `thread` worker class: keep-alive connections on epoll, WSGI requests
on a leader/follower pool of threads (its theory of operation: `worker.py`)."""

from hybrid.workers.thread.worker import ThreadWorker, _Client

__all__ = ["ThreadWorker", "_Client"]
