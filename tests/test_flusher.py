"""EventFlusher: periodic flushes reach on_flush and sinks; stops flush; failures stay contained."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from support import FLUSHERS, WAIT

from summarizer import (
    EventCollector,
    EventFlusher,
    MemorySink,
    RetryPolicy,
    SinkAccount,
    SummarizerSupervisor,
    TreeOptions,
    deadletter,
)
from summarizer.otp import GenServer, PartitionSupervisor, Pid, Process, StartError, Supervisor
from summarizer.user import TEST_USERS

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


Flush = tuple[int, dict[Any, int]]  # what on_flush is called with


def collecting() -> tuple[queue.SimpleQueue[Flush], Callable[[int, dict[Any, int]], None]]:
    """Return a queue and an on_flush that puts every flush into it."""
    flushes: queue.SimpleQueue[Flush] = queue.SimpleQueue()
    return flushes, lambda partition, data: flushes.put((partition, data))


def flushed_until(flushes: queue.SimpleQueue[Flush], events: int) -> dict[int, Counter[Any]]:
    """Take flushes until ``events`` events arrived; return them merged per partition."""
    merged: dict[int, Counter[Any]] = {}
    while sum(sum(c.values()) for c in merged.values()) < events:
        partition, data = flushes.get(timeout=WAIT)
        merged.setdefault(partition, Counter()).update(data)
    return merged


class Broken:
    """A sink that always fails."""

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        raise OSError("disk full")

    def __repr__(self) -> str:
        return "Broken()"


class CountWarnings(logging.Handler):
    """Set ``reached`` once ``n`` warnings were logged."""

    def __init__(self, n: int) -> None:
        super().__init__(logging.WARNING)
        self.n = n
        self.reached = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.n -= 1
        if self.n <= 0:
            self.reached.set()


def test_a_periodic_flush_reaches_on_flush(tree: Callable[..., Pid]) -> None:
    flushes, on_flush = collecting()
    tree(flush_interval=0.05, on_flush=on_flush)
    for _ in range(3):
        EventCollector.record_event(TEST_USERS[2])  # partition 1
    assert flushed_until(flushes, 3) == {1: {"3": 3}}


def test_periodic_flushes_keep_coming_after_the_first(tree: Callable[..., Pid]) -> None:
    flushes, on_flush = collecting()
    tree(flush_interval=0.02, on_flush=on_flush)
    for _ in range(3):
        EventCollector.record_event(TEST_USERS[0])
        assert flushes.get(timeout=WAIT) == (0, {"1": 1})  # flushed, and the next tick comes


def test_a_graceful_stop_flushes_every_buffer(tree: Callable[..., Pid]) -> None:
    memory = MemorySink()
    sup = tree(flush_interval=60.0, sinks=[memory])  # only the stop flushes
    recorded = Counter[str]()
    for i in range(1000):
        user = TEST_USERS[i * i % len(TEST_USERS)]
        EventCollector.record_event(user)
        recorded[user.id] += 1

    Supervisor.stop(sup)

    assert memory.totals() == recorded
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (1000, 1000, 0, {})


def test_a_failing_sink_is_retried_dead_lettered_and_the_flusher_keeps_running(
    tree: Callable[..., Pid], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    flushes, on_flush = collecting()
    memory = MemorySink()
    sup = tree(
        flush_interval=0.02,
        sinks=[Broken(), memory],
        on_flush=on_flush,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        dead_letters=tmp_path / "dead.jsonl",
    )

    EventCollector.record_event(TEST_USERS[0])
    assert flushes.get(timeout=WAIT) == (0, {"1": 1})
    EventCollector.record_event(TEST_USERS[0])
    assert flushes.get(timeout=WAIT) == (0, {"1": 1})  # a later flush still arrives
    deadline = time.monotonic() + WAIT
    while SummarizerSupervisor.accounting().sinks["Broken()"].dead_lettered < 2:
        assert time.monotonic() < deadline, "the failing sink's flushes were never given up"
    Supervisor.stop(sup)

    assert memory.totals() == {"1": 2}  # the other sinks got every flush
    acc = SummarizerSupervisor.accounting()
    assert acc.sinks["Broken()"] == SinkAccount(
        handed=2, delivered=0, retries=2, dead_lettered=2, queued=0
    )
    assert acc.sinks["MemorySink()"] == SinkAccount(2, 2, 0, 0, 0)
    assert acc.sink_errors == {"Broken()": 4}  # two attempts per flush
    failures = [r for r in caplog.records if "sink Broken() failed" in r.getMessage()]
    assert len(failures) == 4
    assert [f.data for f in deadletter.read(tmp_path / "dead.jsonl")] == [{"1": 1}, {"1": 1}]


def test_a_failing_on_flush_is_counted_and_the_sinks_still_get_the_flush(
    tree: Callable[..., Pid],
) -> None:
    memory = MemorySink()
    delivered = threading.Event()

    def on_flush(partition: int, data: dict[Any, int]) -> None:
        delivered.set()
        raise RuntimeError("bad callback")

    sup = tree(flush_interval=0.02, sinks=[memory], on_flush=on_flush)
    EventCollector.record_event(TEST_USERS[0])
    assert delivered.wait(WAIT)
    Supervisor.stop(sup)
    assert memory.totals() == {"1": 1}
    assert SummarizerSupervisor.accounting().sink_errors == {"on_flush": 1}


def test_a_flusher_survives_its_collector_being_down_at_tick_time(
    tree: Callable[..., Pid],
) -> None:
    flushes, on_flush = collecting()
    ticks = CountWarnings(2)
    log = logging.getLogger("summarizer")
    log.addHandler(ticks)
    options = TreeOptions(flush_interval=0.02, partitions=3, on_flush=on_flush, partition=0)
    flusher = EventFlusher.start_link(options)
    try:
        assert ticks.reached.wait(WAIT)  # two ticks found no collector, and logged it
        assert Process.alive(flusher)

        tree(flush_interval=60.0)  # now the collectors are up
        EventCollector.record_event(TEST_USERS[0])
        assert flushes.get(timeout=WAIT) == (0, {"1": 1})  # flushed by the lone flusher
    finally:
        GenServer.stop(flusher)
        log.removeHandler(ticks)


def test_a_killed_flusher_is_restarted_and_rearms_its_timer(tree: Callable[..., Pid]) -> None:
    flushes, on_flush = collecting()
    tree(flush_interval=0.02, on_flush=on_flush)
    [old] = [c.pid for c in PartitionSupervisor.which_children(FLUSHERS) if c.id == 0]
    assert isinstance(old, Pid)

    Process.exit(old, "kill")

    [new] = [c.pid for c in PartitionSupervisor.which_children(FLUSHERS) if c.id == 0]
    assert new != old and isinstance(new, Pid)
    EventCollector.record_event(TEST_USERS[0])
    assert flushes.get(timeout=WAIT) == (0, {"1": 1})


def test_the_flusher_init_without_a_partition_raises_a_clear_error() -> None:
    with pytest.raises(StartError, match=r"options must be TreeOptions with a partition, got: "):
        EventFlusher.start_link(TreeOptions(flush_interval=1.0))


@pytest.mark.parametrize("interval", [0, -1, "1", True])
def test_options_with_a_bad_flush_interval_raise_naming_it(interval: Any) -> None:
    with pytest.raises(
        (TypeError, ValueError), match=r"flush_interval must be a positive number, got: "
    ):
        TreeOptions(flush_interval=interval, partition=0)


def test_the_flusher_init_with_options_that_are_not_tree_options_raises_naming_options() -> None:
    with pytest.raises(
        StartError, match=r"options must be TreeOptions with a partition, got: \[\]"
    ):
        EventFlusher.start_link([])
