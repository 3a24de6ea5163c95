"""Batched recording: record_events (one cast per partition) and the producer-side Recorder."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any

import pytest
from reliability.helpers import child_env, poll
from support import COLLECTORS, WAIT, live_children

from summarizer import EventCollector, MemorySink, Recorder, SummarizerSupervisor, User
from summarizer.otp import Process, Supervisor
from summarizer.user import TEST_USERS

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


def picks(n: int, seed: int = 7) -> list[User]:
    return random.Random(seed).choices(TEST_USERS, k=n)


def totals(users: list[User]) -> dict[Any, int]:
    return dict(Counter(u.id for u in users))


def drain(partitions: int = 3) -> dict[Any, int]:
    out: Counter[Any] = Counter()
    for p in range(partitions):
        out.update(EventCollector.flush_events(p))
    return dict(out)


# -- record_events -------------------------------------------------------------


def test_record_events_routes_each_user_to_its_beam_partition_with_exact_counts(tree):
    tree()
    users = picks(10_000)
    EventCollector.record_events(users)
    want = totals(users)
    # users "1", "2", "5" land on partition 0 of 3, "3" and "4" on partition 1
    assert EventCollector.flush_events(0) == {k: want[k] for k in ("1", "2", "5")}
    assert EventCollector.flush_events(1) == {k: want[k] for k in ("3", "4")}
    assert EventCollector.flush_events(2) == {}


def test_record_events_accepts_any_iterable_and_an_empty_one(tree):
    tree()
    EventCollector.record_events(u for u in TEST_USERS)
    EventCollector.record_events([])
    assert drain() == {u.id: 1 for u in TEST_USERS}
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending, acc.balanced) == (5, 0, True)


@pytest.mark.parametrize("bad", [None, 3, "12", TEST_USERS[0], b"1"])
def test_record_events_rejects_what_is_no_iterable_of_users(tree, bad):
    tree()
    with pytest.raises(TypeError, match=r"users must be an iterable of User, got: "):
        EventCollector.record_events(bad)


def test_record_events_rejects_a_batch_with_one_bad_item_and_sends_none_of_it(tree):
    tree()
    with pytest.raises(TypeError, match=r"users must hold only User, got: 'x'"):
        EventCollector.record_events([TEST_USERS[0], "x", TEST_USERS[1]])
    assert drain() == {}
    assert SummarizerSupervisor.accounting().accepted == 0


def test_record_events_with_no_tree_running_counts_the_events_lost():
    before = SummarizerSupervisor.accounting().lost_total
    EventCollector.record_events(list(TEST_USERS))
    assert SummarizerSupervisor.accounting().lost_total == before + 5


def test_record_events_under_a_kill_keeps_the_books_balanced(tree):
    tree()
    users = picks(1_000)
    for _ in range(20):
        EventCollector.record_events(users)
    Process.exit(live_children(COLLECTORS)[0], "kill")
    EventCollector.record_events(users)  # maybe to the dead collector: handed to the next
    poll(lambda: len(live_children(COLLECTORS)) == 3, WAIT, "the collector's restart")
    acc = SummarizerSupervisor.accounting()
    assert acc.balanced
    assert acc.accepted == 21_000
    assert set(acc.lost) <= {"killed"}
    assert sum(drain().values()) + acc.lost_total == 21_000


# -- Recorder -------------------------------------------------------------------


def test_a_full_batch_leaves_at_once_and_the_rest_waits(tree):
    tree()
    with Recorder(batch=100, linger=60.0) as rec:
        for user in picks(250):
            rec.record(user)
        assert len(rec.pending) == 50
        assert sum(drain().values()) == 200
    assert sum(drain().values()) == 50  # the rest left on exit


def test_a_batch_leaves_after_linger_seconds_with_no_further_event(tree):
    tree()
    with Recorder(batch=1_000_000, linger=0.02) as rec:
        began = time.monotonic()
        for user in TEST_USERS:
            rec.record(user)
        poll(lambda: not rec.pending, WAIT, "the lingering batch to leave")
        lingered = time.monotonic() - began
    assert drain() == {u.id: 1 for u in TEST_USERS}
    assert lingered >= 0.02


def test_events_in_a_recorder_count_as_accepted_and_pending(tree):
    tree()
    users = picks(300)
    with Recorder(batch=1_000, linger=60.0) as rec:
        for user in users:
            rec.record(user)
        acc = SummarizerSupervisor.accounting()
        assert (acc.accepted, acc.pending, acc.flushed, acc.balanced) == (300, 300, 0, True)
        by_partition = Counter(
            "0" if u.id in ("1", "2", "5") else "1" for u in users
        )  # BEAM routing, 3 partitions
        assert [p.pending for p in acc.partitions] == [by_partition["0"], by_partition["1"], 0]
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending, acc.balanced) == (300, 300, True)  # now in a collector


def test_a_graceful_stop_sends_every_recorder_first_and_loses_nothing(tree):
    memory = MemorySink()
    sup = tree(sinks=[memory])
    users = picks(5_000)
    rec = Recorder(batch=10_000, linger=60.0)
    for user in users:
        rec.record(user)
    Supervisor.stop(sup)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (5_000, 5_000, 0, {})
    assert memory.totals() == totals(users)
    assert rec.pending == []
    rec.close()


def test_recorders_on_many_threads_deliver_exact_totals(tree):
    memory = MemorySink()
    sup = tree(sinks=[memory])
    chunks = [picks(20_000, seed) for seed in range(4)]

    def produce(chunk: list[User]) -> None:
        with Recorder(batch=500) as rec:
            for user in chunk:
                rec.record(user)

    threads = [
        threading.Thread(target=produce, args=(c,), name=f"test-producer-{i}")
        for i, c in enumerate(chunks)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    Supervisor.stop(sup)
    assert memory.totals() == totals([u for c in chunks for u in c])
    assert SummarizerSupervisor.accounting().balanced


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"batch": 0}, ValueError, "batch must be a positive integer, got: 0"),
        ({"batch": 1.5}, TypeError, "batch must be a positive integer, got: 1.5"),
        ({"linger": 0}, ValueError, "linger must be a positive number, got: 0"),
        ({"linger": "1"}, TypeError, "linger must be a positive number, got: '1'"),
    ],
)
def test_bad_options_say_what_they_must_be(options, error, text):
    with pytest.raises(error, match=text):
        Recorder(**options)


def test_record_rejects_what_is_no_user():
    with Recorder() as rec, pytest.raises(TypeError, match="user must be a User, got: '1'"):
        rec.record("1")
    assert rec.pending == []


AT_EXIT = """
    import sys
    from summarizer import Recorder, SQLiteSink, SummarizerSupervisor, User

    SummarizerSupervisor.start_link(
        flush_interval=3600.0, partitions=2, sinks=[SQLiteSink(sys.argv[1])]
    )
    rec = Recorder(batch=1_000_000, linger=3600.0)
    for i in range(int(sys.argv[2])):
        rec.record(User(str(i % 10), "customer", "free"))
    # no close, no stop: the interpreter exits with events in the recorder
"""


def test_events_left_in_a_recorder_at_interpreter_exit_are_flushed(tmp_path):
    from summarizer import SQLiteSink

    db, events = tmp_path / "summary.sqlite", 12_345
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AT_EXIT), str(db), str(events)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert sum(SQLiteSink(db).totals().values()) == events


# -- found by review ---------------------------------------------------------------


def test_a_recorder_dropped_without_close_sends_what_it_held(tree):
    tree()
    users = picks(5)

    def produce() -> None:
        rec = Recorder(batch=1_000, linger=60.0)  # nothing leaves on its own for a minute
        for user in users:
            rec.record(user)
        # returns without close(): the recorder is dropped with 5 events in it

    produce()
    assert drain() == totals(users)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.balanced) == (5, 5, 0, True)


def test_a_recorder_used_again_after_close_is_in_the_books_and_the_stop_again(tree):
    memory = MemorySink()
    sup = tree(sinks=[memory])
    rec = Recorder(batch=1_000, linger=60.0)
    rec.close()
    users = picks(7)
    for user in users:
        rec.record(user)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending) == (7, 7)  # counted while it holds them
    Supervisor.stop(sup)  # the stop sends them
    assert memory.totals() == totals(users)
    rec.close()
