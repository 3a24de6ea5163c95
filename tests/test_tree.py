"""SummarizerSupervisor: options, the tree's shape, a clean stop, and the seed's Run cell."""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from support import COLLECTORS, FLUSHERS

from summarizer import EventCollector, MemorySink, SummarizerSupervisor
from summarizer.otp import (
    AlreadyStarted,
    ExitError,
    PartitionSupervisor,
    Pid,
    Process,
    StartError,
    Supervisor,
    async_stream,
    schedulers_online,
)
from summarizer.user import TEST_USERS

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("flush_interval", 0, ValueError),
        ("flush_interval", -1, ValueError),
        ("flush_interval", "1", TypeError),
        ("flush_interval", float("nan"), ValueError),
        pytest.param("flush_interval", 10**400, ValueError, id="flush_interval-10**400"),
        ("partitions", 0, ValueError),
        ("partitions", 1.5, TypeError),
        ("partitions", True, TypeError),
        ("on_flush", 3, TypeError),
        ("sinks", [object()], TypeError),
        ("sinks", 3, TypeError),
    ],
)
def test_start_link_with_a_bad_option_raises_naming_the_option_and_what_it_got(
    option: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=rf"^{option} must .*, got: ") as info:
        SummarizerSupervisor.start_link(**{option: value})
    got = repr(value[0] if isinstance(value, list) else value)
    assert got[:30] in str(info.value)  # long values are shortened in the middle
    assert not SummarizerSupervisor.running()


def test_an_error_message_shows_at_most_80_characters_of_what_it_got() -> None:
    with pytest.raises(TypeError, match=r"^flush_interval must .*, got: 'xxx") as info:
        SummarizerSupervisor.start_link(flush_interval="x" * 10_000)
    assert len(str(info.value)) < 150


def test_which_children_shows_deliveries_collectors_flushers_in_reverse_start_order(
    tree: Callable[..., Pid],
) -> None:
    sup = tree(partitions=3, sinks=[MemorySink(), MemorySink()])
    children = Supervisor.which_children(sup)
    assert [(c.id, c.type, c.modules) for c in children] == [
        (FLUSHERS, "supervisor", ["PartitionSupervisor"]),
        (COLLECTORS, "supervisor", ["PartitionSupervisor"]),
        ("DeliverySupervisor", "supervisor", ["DeliverySupervisor"]),
    ]
    flushers, collectors, deliveries = (c.pid for c in children)
    assert isinstance(flushers, Pid) and isinstance(collectors, Pid)
    assert isinstance(deliveries, Pid)
    # The delivery workers start first, so they stop last: after the final flush.
    assert deliveries < collectors < flushers
    assert Supervisor.count_children(sup) == {
        "specs": 3,
        "active": 3,
        "supervisors": 3,
        "workers": 0,
    }
    workers = Supervisor.which_children(deliveries)
    assert [(c.id, c.type, c.modules) for c in workers] == [
        (1, "worker", ["SinkDelivery"]),
        (0, "worker", ["SinkDelivery"]),
    ]


@pytest.mark.parametrize("name", [COLLECTORS, FLUSHERS])
def test_each_partition_supervisor_runs_one_worker_per_partition(
    tree: Callable[..., Pid], name: str
) -> None:
    tree(partitions=3)
    assert PartitionSupervisor.partitions(name) == 3
    children = PartitionSupervisor.which_children(name)
    assert [c.id for c in children] == [2, 1, 0]
    assert all(c.type == "worker" and Process.alive(c.pid) for c in children)
    assert PartitionSupervisor.count_children(name) == {
        "specs": 3,
        "active": 3,
        "supervisors": 0,
        "workers": 3,
    }


def test_partitions_default_to_schedulers_online(tree: Callable[..., Pid]) -> None:
    tree(partitions=None)
    assert PartitionSupervisor.partitions(COLLECTORS) == schedulers_online()


def test_a_second_tree_under_the_same_name_raises_and_leaves_the_first_running(
    tree: Callable[..., Pid],
) -> None:
    sup = tree(partitions=3)
    with pytest.raises(AlreadyStarted):
        tree(partitions=2)
    assert Process.whereis("SummarizerSupervisor") == sup
    EventCollector.record_event(TEST_USERS[2])
    assert EventCollector.flush_events(1) == {"3": 1}  # still the first tree's routing


def test_a_second_tree_under_another_name_fails_and_leaves_the_running_books_intact(
    tree: Callable[..., Pid],
) -> None:
    tree(partitions=3)
    with pytest.raises(StartError):  # its PartitionSupervisors' names are taken
        tree(partitions=1, name="SecondTree")
    for user in TEST_USERS:
        EventCollector.record_event(user)
    acc = SummarizerSupervisor.accounting()
    assert [p.accepted for p in acc.partitions] == [3, 2, 0]


def test_running_tells_whether_a_tree_runs(tree: Callable[..., Pid]) -> None:
    assert not SummarizerSupervisor.running()
    sup = tree()
    assert SummarizerSupervisor.running()
    Supervisor.stop(sup)
    assert not SummarizerSupervisor.running()


def test_stop_leaves_the_thread_count_as_before() -> None:
    before, names = threading.active_count(), Process.registered()
    sup = SummarizerSupervisor.start_link(flush_interval=0.01, partitions=3, sinks=[])
    for user in TEST_USERS:
        EventCollector.record_event(user)
    assert threading.active_count() > before
    Supervisor.stop(sup)
    assert threading.active_count() == before
    assert Process.registered() == names


def test_the_seeds_run_of_100000_events_gives_exact_per_user_totals(
    tree: Callable[..., Pid],
) -> None:
    memory = MemorySink()
    sup = tree(flush_interval=1.0, partitions=3, sinks=[memory])
    rng = random.Random(42)
    picks = [rng.choice(TEST_USERS) for _ in range(100_000)]

    for _ in async_stream(
        range(100_000), lambda i: EventCollector.record_event(picks[i]), max_concurrency=2000
    ):
        pass
    Supervisor.stop(sup)

    assert memory.totals() == Counter(user.id for user in picks)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (100_000, 100_000, 0, {})


def test_a_tree_that_gives_up_leaves_no_event_waiting_for_a_collector(
    tree: Callable[..., Pid],
) -> None:
    sup = tree(partitions=2)
    done = threading.Event()

    def produce() -> None:
        while not done.is_set():
            for user in TEST_USERS:
                EventCollector.record_event(user)

    producers = [threading.Thread(target=produce) for _ in range(2)]
    for thread in producers:
        thread.start()
    try:
        for _ in range(4):  # default intensity: the 4th restart within 5 s is one too many
            Process.exit(FLUSHERS, "kill")
            # handled after the EXIT the kill queued, so after the restart (or the give-up)
            with contextlib.suppress(ExitError):
                Supervisor.which_children(sup)
        assert Process.monitor_wait(sup, 10.0), "the tree did not give up"
    finally:
        done.set()
        for thread in producers:
            thread.join(10.0)
    books = SummarizerSupervisor.accounting()
    assert books.pending == 0, f"events stranded with no collector to take them: {books}"
    assert books.balanced
