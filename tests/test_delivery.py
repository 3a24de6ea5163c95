"""Delivery to sinks: retries with backoff, dead letters, flush ids, and a locked SQLite file.

Nothing here sleeps to synchronise: waits are on Events, thread joins, and
bounded polls whose every turn is a call round-trip (``accounting()`` asks the
collectors). Two tests hold a sink down for a set time, as the scenario.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from support import WAIT

from summarizer import (
    EventCollector,
    MemorySink,
    RetryPolicy,
    SinkAccount,
    SQLiteSink,
    SummarizerSupervisor,
    deadletter,
)
from summarizer.__main__ import main
from summarizer.deadletter import Flush
from summarizer.delivery import Deliveries
from summarizer.otp import Pid, Process, Supervisor
from summarizer.user import TEST_USERS

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


def record(events: int) -> Counter[Any]:
    """Record ``events`` events round-robin over the seed's users; return the totals."""
    for i in range(events):
        EventCollector.record_event(TEST_USERS[i % len(TEST_USERS)])
    return Counter(TEST_USERS[i % len(TEST_USERS)].id for i in range(events))


def books(sink: str) -> SinkAccount:
    """Return one sink's delivery books (a call round-trip to every collector)."""
    return SummarizerSupervisor.accounting().sinks[sink]


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` (each turn a call round-trip) until true, within `WAIT`."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


class FlakySink:
    """Raise on every write for ``down`` seconds from the first one, then keep the data."""

    def __init__(self, down: float) -> None:
        self.down = down
        self.until: float | None = None
        self.failures = 0
        self.failed = threading.Event()
        self.totals: Counter[Any] = Counter()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        if self.until is None:
            self.until = time.monotonic() + self.down
        if time.monotonic() < self.until:
            self.failures += 1
            self.failed.set()
            raise ConnectionError("the sink is down")
        self.totals.update(data)

    def __repr__(self) -> str:
        return "FlakySink()"


class BlockingSink:
    """Wait in every write until released (at most `WAIT`), then keep the data."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.totals: Counter[Any] = Counter()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        self.entered.set()
        self.release.wait(WAIT)
        self.totals.update(data)

    def __repr__(self) -> str:
        return "BlockingSink()"


def test_a_sink_that_raises_for_3_s_then_recovers_gets_exact_totals(
    tree: Callable[..., Pid],
) -> None:
    sink, memory = FlakySink(down=3.0), MemorySink()
    sup = tree(flush_interval=0.05, sinks=[sink, memory])
    expected = record(10_000)
    assert sink.failed.wait(WAIT)
    expected += record(10_000)  # flushed while the sink is down
    wait_for(lambda: books("MemorySink()").delivered == books("MemorySink()").handed > 1, "memory")
    wait_for(lambda: sink.totals.total() == 20_000, "the sink to recover and take the backlog")
    Supervisor.stop(sup)

    assert sink.totals == expected
    assert memory.totals() == expected  # the healthy sink never waited for the sick one
    flaky = books("FlakySink()")
    print(f"\nsink down 3 s: {flaky}")
    assert flaky.retries == sink.failures >= 1
    assert (flaky.delivered, flaky.dead_lettered, flaky.queued) == (flaky.handed, 0, 0)


def test_a_locked_sqlite_database_loses_nothing(tree: Callable[..., Pid], tmp_path: Path) -> None:
    path = tmp_path / "summary.sqlite"
    sink = SQLiteSink(path, timeout=1.0)  # a write gives up on the lock after 1 s; retried
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(10.0)  # the scenario: another program holds the file for 10 s
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_the_lock, name="sqlite-holder")
    holder.start()
    try:
        assert held.wait(WAIT)
        sup = tree(flush_interval=0.05, sinks=[sink])
        expected = record(5_000)
        wait_for(lambda: SummarizerSupervisor.accounting().sink_errors != {}, "a locked write")
        expected += record(5_000)
    finally:
        holder.join(15.0)
    Supervisor.stop(sup)

    assert sink.totals() == expected
    acc = books(repr(sink))
    print(f"\nSQLite locked 10 s: {acc}")
    assert acc.retries >= 1
    assert (acc.delivered, acc.dead_lettered, acc.queued) == (acc.handed, 0, 0)
    assert sink.flushes() == acc.handed


def test_a_blocked_sink_blocks_neither_record_event_nor_the_flushers_nor_other_sinks(
    tree: Callable[..., Pid], tmp_path: Path
) -> None:
    blocked, memory = BlockingSink(), MemorySink()
    sup = tree(flush_interval=0.02, sinks=[blocked, memory], dead_letters=tmp_path / "dead.jsonl")
    try:
        first = record(1_000)
        assert blocked.entered.wait(WAIT)
        second = record(1_000)  # recorded and flushed while the sink holds its worker
        wait_for(lambda: memory.totals() == first + second, "the memory sink to get both")
        assert books("BlockingSink()").queued >= 1
    finally:
        blocked.release.set()
    Supervisor.stop(sup)

    assert blocked.totals == first + second
    assert books("BlockingSink()") == books("MemorySink()")


def test_a_full_queue_dead_letters_the_new_flush_at_once(tmp_path: Path) -> None:
    letters = tmp_path / "dead.jsonl"
    blocked = BlockingSink()
    deliveries = Deliveries([blocked], max_queue=1, dead_letters=letters)
    sup = Supervisor.start_link([deliveries.child_spec()])
    try:
        deliveries.submit(0, {"1": 1})
        assert blocked.entered.wait(WAIT)  # the first flush is being written: the queue is full
        deliveries.submit(0, {"1": 2})
        deliveries.submit(1, {"2": 3})
        assert deliveries.stats()["BlockingSink()"] == SinkAccount(3, 0, 0, 2, 1)
    finally:
        blocked.release.set()
    Supervisor.stop(sup)

    assert deliveries.stats()["BlockingSink()"] == SinkAccount(3, 1, 0, 2, 0)
    assert blocked.totals == {"1": 1}
    assert [
        (f.data, json.loads(line)["reason"])
        for f, line in zip(deadletter.read(letters), letters.read_text().splitlines(), strict=True)
    ] == [({"1": 2}, "queue_full"), ({"2": 3}, "queue_full")]


def test_a_graceful_stop_drains_within_exit_timeout_then_dead_letters_the_rest(
    tree: Callable[..., Pid], tmp_path: Path
) -> None:
    letters = tmp_path / "dead.jsonl"
    down = FlakySink(down=3600.0)
    sup = tree(
        flush_interval=0.02,
        partitions=2,
        sinks=[down],
        exit_timeout=0.3,
        dead_letters=letters,
        retry=RetryPolicy(max_attempts=1000, max_elapsed=3600.0, base_delay=0.05),
    )
    expected = record(1_000)
    assert down.failed.wait(WAIT)
    began = time.monotonic()
    Supervisor.stop(sup)
    assert time.monotonic() - began < 0.3 + 2.0

    acc = books("FlakySink()")
    assert acc.delivered == 0 and acc.queued == 0
    assert acc.dead_lettered == acc.handed >= 1
    dead = list(deadletter.read(letters))
    assert len(dead) == acc.handed
    merged: Counter[Any] = Counter()
    for flush in dead:
        merged.update(flush.data)
    assert merged == expected  # every event is in the file, once


def test_a_killed_delivery_worker_is_restarted_and_resumes_its_queue(
    tree: Callable[..., Pid],
) -> None:
    blocked = BlockingSink()
    sup = tree(flush_interval=0.02, sinks=[blocked])
    [(_, deliveries, _, _)] = [
        c for c in Supervisor.which_children(sup) if c.id == "DeliverySupervisor"
    ]
    [(_, worker, _, _)] = Supervisor.which_children(deliveries)
    try:
        expected = record(1_000)
        assert blocked.entered.wait(WAIT)
        expected += record(1_000)
        wait_for(lambda: books("BlockingSink()").queued >= 2, "a second flush to queue")
        Process.exit(worker, "kill")  # its write finishes; the next worker takes the queue
        wait_for(
            lambda: Supervisor.which_children(deliveries)[0].pid not in (worker, "restarting"),
            "the worker's restart",
        )
    finally:
        blocked.release.set()
    Supervisor.stop(sup)

    acc = books("BlockingSink()")
    assert (acc.delivered, acc.dead_lettered, acc.queued) == (acc.handed, 0, 0)
    # The killed worker's write of the head flush completed, and its successor wrote
    # the same flush again: a sink without flush ids may see it twice, never zero times.
    assert blocked.totals.total() >= expected.total()
    assert set(blocked.totals) == set(expected)


def test_flush_ids_name_the_run_the_partition_and_a_sequence(tmp_path: Path) -> None:
    deliveries = Deliveries([], dead_letters=tmp_path / "dead.jsonl")
    ids = [deliveries.flush_id(p) for p in (0, 0, 1, 0)]
    run = deliveries.run
    assert ids == [f"{run}:0:1", f"{run}:0:2", f"{run}:1:1", f"{run}:0:3"]
    assert Deliveries([]).run != run


def test_sqlite_stores_a_flush_once_and_a_replay_twice_changes_nothing(tmp_path: Path) -> None:
    sink = SQLiteSink(tmp_path / "summary.sqlite")
    flush = Flush("run:0:1", 0, {"1": 2, 1: 3}, 1.0)
    assert sink.store(flush) is True
    assert sink.store(flush) is False  # the retry of a flush whose commit went through
    assert sink.totals() == {"1": 2, 1: 3}

    letters = deadletter.DeadLetters(tmp_path / "dead.jsonl")
    letters.append(flush, "SQLiteSink()", "retries")
    letters.append(Flush("run:1:1", 1, {"2": 4}, 2.0), "SQLiteSink()", "stopped")
    assert main(["replay", str(letters.path), "--db", str(sink.path)]) == 0
    assert sink.totals() == {"1": 2, 1: 3, "2": 4}
    assert deadletter.replay(letters.path, sink) == (0, 2)
    assert sink.totals() == {"1": 2, 1: 3, "2": 4}
    assert sink.flushes() == 2


def test_a_sqlite_file_from_before_flush_ids_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE totals (user_id PRIMARY KEY, count INTEGER NOT NULL);"
            "CREATE TABLE flushes (id INTEGER PRIMARY KEY, flushed_at REAL NOT NULL,"
            " partition INTEGER NOT NULL, events INTEGER NOT NULL);"
            "INSERT INTO totals VALUES ('1', 7);"
            "INSERT INTO flushes (flushed_at, partition, events) VALUES (0, 0, 7);"
        )
    db.close()
    sink = SQLiteSink(path)
    assert sink.store(Flush("a:0:1", 0, {"1": 1}, 1.0))
    assert not sink.store(Flush("a:0:1", 0, {"1": 1}, 1.0))
    assert sink.totals() == {"1": 8}
    assert sink.flushes() == 2


def test_a_dead_letter_file_with_a_bad_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_text('{"id": "a", "partition": 0, "flushed_at": 0, "data": [["1", 1]]}\n{oops\n')
    with pytest.raises(ValueError, match=r"dead.jsonl:2: not a dead-letter line"):
        list(deadletter.read(path))


def test_the_retry_delays_grow_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    for failures, full in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (50, 1.0)]:
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts must be a positive integer, got: 0"),
        ({"max_elapsed": -1}, ValueError, "max_elapsed must be a positive number, got: -1"),
        ({"base_delay": "1"}, TypeError, "base_delay must be a positive number, got: '1'"),
        ({"max_delay": float("nan")}, ValueError, "max_delay must be a positive number"),
    ],
)
def test_a_bad_retry_policy_is_refused_naming_the_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}"):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("max_queue", 0, ValueError, "max_queue must be a positive integer, got: 0"),
        ("retry", 5, TypeError, "retry must be a RetryPolicy or None, got: 5"),
        ("dead_letters", 3, TypeError, "dead_letters must be a non-empty str or Path, got: 3"),
    ],
)
def test_bad_delivery_options_are_refused_by_start_link(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}"):
        SummarizerSupervisor.start_link(sinks=[], **{option: value})


def test_replay_of_a_missing_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "db.sqlite")])
    assert exited.value.code == 2
    assert "argument FILE: cannot read" in capsys.readouterr().err


AT_EXIT_SINK_DOWN = """
    import sys
    from summarizer import EventCollector, SummarizerSupervisor, User

    class Down:
        def write(self, partition, data, flushed_at):
            raise ConnectionError("the sink is down")

    SummarizerSupervisor.start_link(
        flush_interval=3600.0, partitions=2, sinks=[Down()], dead_letters=sys.argv[1],
        exit_timeout=0.3,
    )
    users = [User(str(i), "customer", "free") for i in range(10)]
    for i in range(1_000):
        EventCollector.record_event(users[i % 10])
    # no Supervisor.stop: the interpreter exits with the tree running
"""


def test_at_interpreter_exit_the_flushes_a_down_sink_never_took_are_dead_lettered(
    tmp_path: Path,
) -> None:
    letters = tmp_path / "dead.jsonl"
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AT_EXIT_SINK_DOWN), str(letters)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - began < 10.0
    dead: Counter[Any] = Counter()
    for flush in deadletter.read(letters):
        dead.update(flush.data)
    assert dead == {str(i): 100 for i in range(10)}  # every event, filed once
