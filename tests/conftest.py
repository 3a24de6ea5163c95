"""Shared fixtures: leak checks, and trees that are always stopped.

A test must leave no thread running and no name registered: modules opt in with
``pytestmark = pytest.mark.usefixtures("no_leaks")``. ``tree`` starts
SummarizerSupervisor trees with test defaults and stops them after the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from summarizer import SummarizerSupervisor
from summarizer.otp import Pid, Process, Supervisor

#: Seconds the threads a test started get, all together, to finish after it.
SETTLE_SECONDS = 5.0


def _join_new_threads(before: set[threading.Thread], deadline: float) -> list[str]:
    """Join every thread not in ``before`` until ``deadline``; return the names still alive."""
    for thread in threading.enumerate():
        if thread not in before:
            thread.join(max(0.0, deadline - time.monotonic()))
    return sorted(t.name for t in threading.enumerate() if t not in before)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if a thread it started outlives it or a name it registered stays taken.

    Threads that are finishing (a killed process's thread waking up, the timer
    thread going idle) are joined, within `SETTLE_SECONDS` in all; no sleeping.
    """
    threads_before = set(threading.enumerate())
    count_before = threading.active_count()
    names_before = Process.registered()
    yield
    left = _join_new_threads(threads_before, time.monotonic() + SETTLE_SECONDS)
    assert left == [], f"threads left behind: {left}"
    assert threading.active_count() == count_before
    assert Process.registered() == names_before, "names left registered"


#: The tree fixture's defaults: no periodic flush within a test, 3 partitions, no sinks.
TREE_DEFAULTS: dict[str, Any] = {"flush_interval": 60.0, "partitions": 3, "sinks": []}


@pytest.fixture
def tree() -> Iterator[Callable[..., Pid]]:
    """Start trees (`TREE_DEFAULTS`, overridable per call); stop them after the test."""
    started: list[Pid] = []

    def start(**options: Any) -> Pid:
        pid = SummarizerSupervisor.start_link(**{**TREE_DEFAULTS, **options})
        started.append(pid)
        return pid

    yield start
    for pid in started:
        if Process.alive(pid):
            Supervisor.stop(pid)
