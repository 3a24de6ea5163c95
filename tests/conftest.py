"""Shared fixtures: leak checks, and trees that are always stopped.

A test must leave no thread running and no name registered: modules opt in with
``pytestmark = pytest.mark.usefixtures("no_leaks")`` (tests/reliability has it on
for every test). ``tree`` starts SummarizerSupervisor trees with the defaults of
``tree_defaults`` (a directory's conftest may override it) and stops them after
the test. Constants and helpers are in support.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import TREE_DEFAULTS, WAIT

from summarizer import SummarizerSupervisor
from summarizer.otp import OtpError, Pid, Process, Supervisor


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
    thread going idle) are joined, within `WAIT` in all; no sleeping.
    """
    threads_before = set(threading.enumerate())
    names_before = Process.registered()
    yield
    left = _join_new_threads(threads_before, time.monotonic() + WAIT)
    assert left == [], f"threads left behind: {left}"
    assert Process.registered() == names_before, "names left registered"


@pytest.fixture
def tree_defaults() -> dict[str, Any]:
    """Return the options every tree of the ``tree`` fixture starts with."""
    return TREE_DEFAULTS


@pytest.fixture
def tree(tree_defaults: dict[str, Any]) -> Iterator[Callable[..., Pid]]:
    """Start trees (``tree_defaults``, overridable per call); stop them after the test."""
    started: list[Pid] = []

    def start(**options: Any) -> Pid:
        pid = SummarizerSupervisor.start_link(**{**tree_defaults, **options})
        started.append(pid)
        return pid

    yield start
    for pid in started:
        if Process.alive(pid):
            with contextlib.suppress(OtpError):  # it died between the check and the stop
                Supervisor.stop(pid, "shutdown", 60.0)
