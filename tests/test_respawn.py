"""The arbiter's respawn policy on its own: when a worker that failed to boot
stops the server, when it is retried, and how long the next fork waits. And
the generations' arithmetic: which workers to fork and which to retire."""

from __future__ import annotations

from dataclasses import dataclass, field

from hybrid import generations
from hybrid.heartbeat import BOOT_ERROR
from hybrid.respawn import EARLY_CRASH_WINDOW, MAX_SILENT_BOOT_DEATHS, RespawnPolicy
from hybrid.worker_process import WorkerProcess


@dataclass
class Died:
    pid: int = 42
    boot_error: str = ""
    boot_trace: list[str] = field(default_factory=list)
    loading: bool = False
    starting: bool = False


def test_a_worker_that_gives_its_reason_fails_the_boot_with_the_apps_traceback():
    failure = RespawnPolicy().boot_failure(Died(boot_error="no module named 'x'",
                                                boot_trace=["Traceback ..."]), BOOT_ERROR, False)
    assert failure is not None
    assert failure.shown == "no module named 'x'\nTraceback ..."


def test_a_death_with_no_reason_is_retried_a_few_times_first():
    policy = RespawnPolicy()
    answers = [policy.boot_failure(Died(), -9, False) for _ in range(MAX_SILENT_BOOT_DEATHS)]
    assert answers[:-1] == [None] * (MAX_SILENT_BOOT_DEATHS - 1)
    assert answers[-1] is not None and "keep dying before they boot" in answers[-1].reason


def test_a_death_while_the_app_loads_says_so():
    failure = RespawnPolicy().boot_failure(Died(loading=True), -11, False)
    assert failure is not None and failure.reason == "the worker died while loading the app " \
                                                     "(killed by SIGSEGV)"


def test_boot_failures_while_others_serve_wait_longer_each_time():
    policy = RespawnPolicy()
    failure = policy.boot_failure(Died(boot_error="broken"), BOOT_ERROR, True)
    assert failure is not None
    policy.back_off(failure, serving=2)
    first = policy.not_before
    policy.back_off(failure, serving=2)
    assert policy.not_before > first and not policy.may_spawn()


def test_a_reload_tries_its_workers_at_once():
    policy = RespawnPolicy()
    policy.back_off(policy.boot_failure(Died(boot_error="broken"), BOOT_ERROR, True), 1)
    policy.reloaded()
    assert policy.may_spawn()


def test_workers_that_keep_dying_right_after_serving_delay_the_next_fork():
    policy = RespawnPolicy()
    policy.crashed(lived=0.1)
    assert policy.may_spawn()  # (one early crash may be bad luck)
    policy.crashed(lived=0.1)
    assert not policy.may_spawn()


def test_a_worker_that_served_a_while_resets_the_early_crashes():
    policy = RespawnPolicy()
    policy.crashed(lived=0.1)
    policy.crashed(lived=EARLY_CRASH_WINDOW)
    policy.crashed(lived=0.1)
    assert policy.early_crashes == 1


def worker(age: int, generation: int = 0, ready: bool = True, recycle: str = "") -> WorkerProcess:
    """A record with no process or channels behind it (the arithmetic reads none)."""
    record = WorkerProcess(1000 + age, age, generation, None, None, None)
    record.ready, record.recycle = ready, recycle
    return record


def test_the_pool_forks_what_is_missing_and_retires_the_oldest_extras():
    assert generations.balance([worker(1), worker(2)], 0, 3) == (1, [])
    oldest, *others = [worker(1), worker(2), worker(3)]
    assert generations.balance([*others, oldest], 0, 2) == (0, [oldest])


def test_a_previous_generation_retires_once_the_new_one_serves():
    old = worker(1, generation=0)
    booting = worker(2, generation=1, ready=False)
    assert generations.balance([old, booting], 1, 1) == (0, [])
    booting.ready = True
    assert generations.balance([old, booting], 1, 1) == (0, [old])


def test_a_worker_to_be_replaced_serves_until_its_replacement_does():
    replaced = worker(1, recycle="max-requests")
    assert generations.balance([replaced], 0, 1) == (1, [])
    assert generations.balance([replaced, worker(2)], 0, 1) == (0, [replaced])


def test_a_failed_reload_gives_the_previous_generation_its_place_back():
    old, failed, booting = worker(1, 0), worker(2, 1, ready=False), worker(3, 1, ready=False)
    serving = generations.may_yet_serve([old, booting], failed)
    assert serving == [old]
    retired: list[int] = []
    booting.send = retired.append  # (no real process behind it to signal)
    generations.reload_failed([old, booting], serving, 1)
    assert old.generation == 1 and booting.retiring_since is not None and retired
