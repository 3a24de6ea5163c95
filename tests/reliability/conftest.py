"""Reliability tests: fixtures every test here gets (helpers are in helpers.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from summarizer import SummarizerSupervisor
from summarizer.otp import OtpError, Pid, Process, Supervisor

from .helpers import WAIT


@pytest.fixture(autouse=True)
def leaves_no_thread_behind() -> Iterator[None]:
    """Fail a test whose threads outlive it (joined within a bound) or whose names stay taken."""
    before = set(threading.enumerate())
    names = Process.registered()
    yield
    deadline = time.monotonic() + WAIT
    for t in threading.enumerate():
        if t not in before:
            t.join(max(0.0, deadline - time.monotonic()))
    left = sorted(t.name for t in threading.enumerate() if t not in before)
    assert left == [], f"threads left behind: {left}"
    assert Process.registered() == names, "names left registered"


@pytest.fixture
def tree() -> Iterator[Callable[..., Pid]]:
    """Start SummarizerSupervisor trees (no LogSink unless asked); stop those still running."""
    started: list[Pid] = []

    def start(**options: Any) -> Pid:
        options.setdefault("sinks", [])
        pid = SummarizerSupervisor.start_link(**options)
        started.append(pid)
        return pid

    yield start
    for pid in started:
        if Process.alive(pid):
            with contextlib.suppress(OtpError):  # it died between the check and the stop
                Supervisor.stop(pid, "shutdown", 60.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this directory's ``soak`` tests unless a ``-m`` expression picks tests."""
    if config.option.markexpr:
        return
    here = Path(__file__).parent
    keep, drop = [], []
    for item in items:
        on_demand = item.get_closest_marker("soak") is not None and here in item.path.parents
        (drop if on_demand else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
