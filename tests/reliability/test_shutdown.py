"""Shutdown: a graceful stop is bounded, flushes everything, and no sink can wedge it.

* ``Supervisor.stop`` under full load returns within 5 s and leaves exact books:
  events recorded while or after the tree stops are counted lost ("exit",
  "noproc", "closed"), never silently dropped.
* A tree left running at interpreter exit is stopped and flushed by the
  package's atexit hook within its ``exit_timeout``.
* A sink that logs, one that raises, and one that blocks cannot deadlock the
  flushers or the stop. The blocking one shows the cost: the flusher's last
  flush and the collector's final flush each wait in the sink until the
  supervisor kills that process after its shutdown time (5 s), so the stop
  returns after about 10 s with one partition; the sink's threads finish when
  it returns.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from support import WAIT

from summarizer import (
    EventCollector,
    MemorySink,
    SQLiteSink,
    SummarizerSupervisor,
    User,
    deadletter,
)
from summarizer.otp import CallTimeout, Process, Supervisor

from .helpers import Tally, child_env, join_threads, poll, produce, stop_tree

BOUND = 5.0  # seconds a stop under full load may take
SHUTDOWN = 5.0  # seconds a worker gets to stop before its supervisor kills it (GenServer)


def test_stopping_under_full_load_returns_within_5_s_and_counts_every_late_event(tree):
    sink = MemorySink()
    sup = tree(flush_interval=0.05, sinks=[sink])  # one partition per core, the default
    halt, ticks = threading.Event(), threading.Semaphore(0)
    producers, _ = produce(10**9, stop=halt, ticks=ticks)  # full load until halted
    for _ in range(200):  # about 200,000 events in
        assert ticks.acquire(timeout=WAIT), "the producers stalled"

    began = time.monotonic()
    try:
        Supervisor.stop(sup, "normal", BOUND)
    except CallTimeout:
        # Let the stop finish (no more load), so the failure does not wedge later tests.
        halt.set()
        assert Process.monitor_wait(sup, 120.0), "the tree never stopped"
    seconds = time.monotonic() - began
    after_stop = SummarizerSupervisor.accounting().accepted
    if not halt.is_set():  # the producers still run: their late events must be counted
        while ticks.acquire(blocking=False):  # forget the progress made before the stop
            pass
        for _ in range(50):  # about 50,000 events recorded after the stop
            assert ticks.acquire(timeout=WAIT), "the producers stalled"
    halt.set()
    join_threads(producers, WAIT, "the producers")

    acc = SummarizerSupervisor.accounting()
    report = f"accepted {acc.accepted:,}, flushed {acc.flushed:,}, lost {acc.lost}"
    print(f"\nstop under load took {seconds:.3f} s; {report}")
    assert seconds < BOUND, f"the stop took {seconds:.1f} s under load; {report}"
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost_total
    assert set(acc.lost) <= {"exit", "noproc", "closed"}
    assert acc.lost.get("closed", 0) >= acc.accepted - after_stop
    assert sum(sink.totals().values()) == acc.flushed


AT_EXIT = """
    import atexit, sys, time
    atexit.register(lambda: print("exited", time.monotonic(), flush=True))  # runs last
    from summarizer import EventCollector, SQLiteSink, SummarizerSupervisor, User

    SummarizerSupervisor.start_link(
        flush_interval=3600.0, partitions=2, sinks=[SQLiteSink(sys.argv[1])]
    )
    users = [User(str(i), "customer", "free") for i in range(10)]
    for i in range(int(sys.argv[2])):
        EventCollector.record_event(users[i % 10])
    print("recorded", time.monotonic(), flush=True)
    # no Supervisor.stop: the interpreter exits with the tree running
"""


def test_a_tree_left_running_at_interpreter_exit_is_stopped_and_flushed_within_1_s(tmp_path):
    db, events = tmp_path / "summary.sqlite", 100_000
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AT_EXIT), str(db), str(events)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=10,
    )
    wall = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    marks = dict(line.split() for line in run.stdout.splitlines())
    at_exit = float(marks["exited"]) - float(marks["recorded"])
    print(f"\nat exit: {events:,} events flushed in {at_exit:.3f} s (wall {wall:.2f} s)")
    assert at_exit < 1.5
    assert sum(SQLiteSink(db).totals().values()) == events


class LoggingSink:
    """Log every flush on the package's own logger, at WARNING (shown by default)."""

    def __init__(self) -> None:
        self.totals: Counter[Any] = Counter()
        self.writes = threading.Semaphore(0)

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        logging.getLogger("summarizer").warning("sink got %d events", sum(data.values()))
        self.totals.update(data)
        self.writes.release()


class RaisingSink:
    """Fail every write."""

    def __init__(self) -> None:
        self.calls = 0
        self.failed = threading.Event()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        self.calls += 1
        self.failed.set()
        raise RuntimeError("the sink is down")

    def __repr__(self) -> str:
        return "RaisingSink()"


class BlockingSink:
    """Wait in every write until released (at most 60 s), then keep the data."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.totals: Counter[Any] = Counter()
        self._lock = threading.Lock()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        self.entered.set()
        self.release.wait(60.0)
        with self._lock:
            self.totals.update(data)

    def __repr__(self) -> str:
        return "BlockingSink()"


def test_a_sink_that_logs_on_the_summarizer_logger_deadlocks_neither_flushes_nor_stop(tree, caplog):
    caplog.set_level(logging.INFO, logger="summarizer")
    sink = LoggingSink()
    sup = tree(flush_interval=0.02, partitions=2, sinks=[sink])
    producers, expected = produce(200_000)
    for _ in range(3):  # three flushes logged while the load runs
        assert sink.writes.acquire(timeout=WAIT), "the flushers stopped flushing"
    join_threads(producers, WAIT * 6, "the producers")

    assert stop_tree(sup) < 5.0
    acc = SummarizerSupervisor.accounting()
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == 200_000
    assert sink.totals == expected


def test_a_sink_that_raises_is_counted_dead_lettered_and_the_other_sinks_get_everything(
    tree, tmp_path
):
    raising, memory, tally = RaisingSink(), MemorySink(), Tally()
    letters = tmp_path / "dead.jsonl"
    sup = tree(
        flush_interval=0.02,
        partitions=2,
        sinks=[raising, memory],
        on_flush=tally,
        dead_letters=letters,
    )
    producers, expected = produce(200_000)
    assert raising.failed.wait(WAIT)
    join_threads(producers, WAIT * 6, "the producers")

    assert stop_tree(sup) < 5.0
    acc = SummarizerSupervisor.accounting()
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == 200_000
    assert memory.totals() == expected
    assert tally.totals == expected
    assert acc.sink_errors == {"RaisingSink()": raising.calls}
    books = acc.sinks["RaisingSink()"]
    assert books.handed == tally.calls  # it was handed every flush...
    assert books.dead_lettered == books.handed  # ...and, never taking one, dead-lettered all
    dead: Counter[Any] = Counter()
    for flush in deadletter.read(letters):
        dead.update(flush.data)
    assert dead == expected


def test_a_sink_that_blocks_delays_the_stop_by_its_workers_shutdown_only_and_loses_nothing(
    tree, tmp_path
):
    before = set(threading.enumerate())
    sink = BlockingSink()
    letters = tmp_path / "dead.jsonl"
    sup = tree(flush_interval=0.02, partitions=1, sinks=[sink], dead_letters=letters)
    user = User("1", "MegaCorp", "enterprise")
    try:
        for _ in range(1_000):
            EventCollector.record_event(user)
        assert sink.entered.wait(WAIT), "the delivery worker never reached the sink"
        # The sink's worker now waits in the sink; the flushers flush on regardless.
        for _ in range(500):
            EventCollector.record_event(user)
        poll(lambda: SummarizerSupervisor.accounting().flushed == 1_500, WAIT, "the flushes")

        seconds = stop_tree(sup)  # the worker: exit_timeout (1 s) to drain + 5 s, then killed
        print(f"\nstop with a blocked sink took {seconds:.2f} s")
        assert seconds < 1.0 + SHUTDOWN + 3.0
    finally:
        sink.release.set()
    join_threads([t for t in threading.enumerate() if t not in before], WAIT, "the sink's threads")

    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == acc.flushed == 1_500
    assert acc.lost == {}, f"events the sink received were also counted lost: {acc.lost}"
    books = acc.sinks["BlockingSink()"]
    assert books.queued == 0 and books.delivered + books.dead_lettered == books.handed
    dead = sum(n for flush in deadletter.read(letters) for n in flush.data.values())
    assert sum(sink.totals.values()) + dead == 1_500  # the sink's write finished; the rest waits
