"""EventCollector: record_event casts, flush_events returns and resets, BEAM routing, losses."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from support import COLLECTORS, WAIT

from summarizer import Buffer, EventCollector, MemorySink, SummarizerSupervisor, User
from summarizer.otp import (
    CallTimeout,
    ExitError,
    GenServer,
    NoProcess,
    PartitionSupervisor,
    Pid,
    Process,
    Supervisor,
)
from summarizer.user import TEST_USERS

MEGACORP = TEST_USERS[0]  # partition 0 of 3

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


class HoldFlush(logging.Handler):
    """Hold a collector inside its flush_events handler (it logs there) until resumed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entered = threading.Event()
        self.resume = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "events flushed" in record.getMessage() and not self.entered.is_set():
            self.entered.set()
            self.resume.wait(WAIT)


@contextlib.contextmanager
def flush_held() -> Iterator[HoldFlush]:
    """Make the next collector that flushes a non-empty buffer wait for ``resume``."""
    log = logging.getLogger("summarizer")
    handler, level = HoldFlush(), log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield handler
    finally:
        handler.resume.set()
        log.removeHandler(handler)
        log.setLevel(level)


class HoldingSink(MemorySink):
    """A MemorySink whose first write waits for ``resume``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.resume = threading.Event()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.resume.wait(WAIT)
        super().write(partition, data, flushed_at)


def collector(partition: int) -> Pid:
    """Return the pid of collector ``partition``, as its supervisor knows it now."""
    [pid] = [c.pid for c in PartitionSupervisor.which_children(COLLECTORS) if c.id == partition]
    assert isinstance(pid, Pid)
    return pid


def thread_of(pid: Pid) -> threading.Thread:
    """Return the thread a process runs on (threads are named after their pid)."""
    [thread] = [t for t in threading.enumerate() if t.name.endswith(f"-{pid!r}")]
    return thread


def pending(partition: int) -> int:
    """Return the events collector ``partition`` holds once its mailbox is read (a call)."""
    buffer: Buffer = GenServer.get_state(collector(partition))
    return buffer.count


def record(user: User, n: int) -> None:
    """Record ``n`` events for ``user``."""
    for _ in range(n):
        EventCollector.record_event(user)


# -- record_event and flush_events ------------------------------------------


@pytest.mark.parametrize("not_a_user", [None, "1", {"id": "1"}, ("1", "MegaCorp", "free")])
def test_record_event_with_a_non_user_raises_type_error_at_the_call_site_naming_user(
    tree: Callable[..., Pid], not_a_user: Any
) -> None:
    tree()
    with pytest.raises(TypeError, match=r"^user must be a User, got: "):
        EventCollector.record_event(not_a_user)
    assert SummarizerSupervisor.accounting().accepted == 0


def test_flush_events_returns_the_partitions_buffer_and_resets_it(
    tree: Callable[..., Pid],
) -> None:
    tree()
    record(TEST_USERS[0], 3)
    record(TEST_USERS[1], 1)
    assert EventCollector.flush_events(0) == {"1": 3, "2": 1}
    assert EventCollector.flush_events(0) == {}


@pytest.mark.parametrize(
    ("partition", "error", "message"),
    [
        (3, ValueError, r"^partition must be in 0\.\.2, got: 3$"),
        (-1, ValueError, r"^partition must be in 0\.\.2, got: -1$"),
        ("0", TypeError, r"^partition must be an int, got: '0'$"),
        (1.0, TypeError, r"^partition must be an int, got: 1\.0$"),
        (True, TypeError, r"^partition must be an int, got: True$"),
    ],
)
def test_flush_events_with_a_bad_partition_raises_naming_partition(
    tree: Callable[..., Pid], partition: Any, error: type[Exception], message: str
) -> None:
    tree()
    with pytest.raises(error, match=message):
        EventCollector.flush_events(partition)


def test_flush_events_without_a_tree_raises_no_process() -> None:
    with pytest.raises(NoProcess):
        EventCollector.flush_events(0)


def test_an_event_recorded_after_the_tree_stopped_is_counted_as_lost_closed(
    tree: Callable[..., Pid],
) -> None:
    Supervisor.stop(tree())
    EventCollector.record_event(MEGACORP)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.lost) == (1, {"closed": 1})
    assert acc.balanced


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        (3, [{"1": 1, "2": 1, "5": 1}, {"3": 1, "4": 1}, {}]),
        (2, [{}, {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}]),
    ],
)
def test_routing_equals_the_beams_phash2_of_the_user_id(
    tree: Callable[..., Pid], partitions: int, expected: list[dict[str, int]]
) -> None:
    tree(partitions=partitions)
    for user in TEST_USERS:
        EventCollector.record_event(user)
    assert [EventCollector.flush_events(p) for p in range(partitions)] == expected


def test_an_int_user_id_routes_by_its_absolute_value_modulo_partitions(
    tree: Callable[..., Pid],
) -> None:
    tree()
    EventCollector.record_event(User(-7, "Negative", "free"))
    assert EventCollector.flush_events(1) == {-7: 1}


# -- crashes and kills ------------------------------------------------------


def test_an_exception_in_handle_cast_keeps_the_buffer_and_the_collector_restarts(
    tree: Callable[..., Pid],
) -> None:
    flushes: queue.SimpleQueue[tuple[int, dict[Any, int]]] = queue.SimpleQueue()
    tree(on_flush=lambda p, data: flushes.put((p, data)))
    record(MEGACORP, 10)
    assert pending(0) == 10
    crashed = collector(0)

    GenServer.cast(crashed, ("record_event", None))  # handle_cast raises on None.id

    assert flushes.get(timeout=WAIT) == (0, {"1": 10})  # terminate flushed the buffer
    assert Process.monitor_wait(crashed, WAIT)
    restarted = collector(0)  # the supervisor handled the EXIT before this call
    assert restarted != crashed and Process.alive(restarted)
    record(MEGACORP, 2)
    assert EventCollector.flush_events(0) == {"1": 2}
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (12, 12, 0, {})


def test_a_kill_counts_the_collectors_buffer_as_lost_killed(tree: Callable[..., Pid]) -> None:
    tree()
    record(MEGACORP, 7)
    record(TEST_USERS[2], 4)  # partition 1: untouched by the kill
    assert pending(0) == 7
    killed = collector(0)
    thread = thread_of(killed)

    Process.exit(killed, "kill")

    thread.join(WAIT)  # the old thread accounts for the state it dropped, then ends
    assert not thread.is_alive()
    assert collector(0) != killed
    acc = SummarizerSupervisor.accounting()
    assert acc.lost == {"killed": 7}
    assert (acc.accepted, acc.flushed, acc.pending) == (11, 0, 4)
    assert acc.accepted == acc.flushed + acc.lost_total + acc.pending
    assert EventCollector.flush_events(0) == {}  # the restarted collector starts empty


def test_the_accounting_balances_under_eight_producers_with_a_kill_in_the_middle(
    tree: Callable[..., Pid],
) -> None:
    memory = MemorySink()
    sup = tree(flush_interval=0.01, sinks=[memory])
    producers, per_producer = 8, 3000
    start = threading.Barrier(producers + 1)
    halfway, killed_now = threading.Event(), threading.Event()

    def produce(k: int) -> None:
        start.wait(WAIT)
        for i in range(per_producer):
            if k == 0 and i == per_producer // 2:
                halfway.set()
            if i == per_producer * 3 // 4:
                killed_now.wait(WAIT)  # so every producer records after the kill too
            EventCollector.record_event(TEST_USERS[(k + i) % len(TEST_USERS)])

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    start.wait(WAIT)
    assert halfway.wait(WAIT)
    killed = collector(0)
    old_thread = thread_of(killed)
    Process.exit(killed, "kill")
    killed_now.set()
    for t in threads:
        t.join(WAIT)
    Supervisor.stop(sup)
    old_thread.join(WAIT)

    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == producers * per_producer
    assert acc.pending == 0
    assert set(acc.lost) <= {"killed", "noproc"}
    assert acc.balanced, acc
    assert acc.flushed == sum(memory.totals().values())
    recorded = Counter(
        TEST_USERS[(k + i) % len(TEST_USERS)].id
        for k in range(producers)
        for i in range(per_producer)
    )
    assert all(memory.totals().get(uid, 0) <= n for uid, n in recorded.items())
    for uid in ("3", "4"):  # partition 1 was never killed: exact
        assert memory.totals()[uid] == recorded[uid]


def test_a_second_bad_cast_queued_behind_the_first_does_not_lose_the_buffer(
    tree: Callable[..., Pid],
) -> None:
    flushes: queue.SimpleQueue[tuple[int, dict[Any, int]]] = queue.SimpleQueue()
    tree(on_flush=lambda p, data: flushes.put((p, data)))
    record(MEGACORP, 5)
    taken: list[dict[Any, int]] = []
    crashed = collector(0)
    with flush_held() as held:
        flusher = threading.Thread(target=lambda: taken.append(EventCollector.flush_events(0)))
        flusher.start()
        assert held.entered.wait(WAIT)  # the collector is busy: what follows queues up
        record(MEGACORP, 3)
        GenServer.cast(crashed, ("record_event", None))
        record(MEGACORP, 2)
        GenServer.cast(crashed, ("record_event", None))  # terminate meets this one
        record(MEGACORP, 1)
    flusher.join(WAIT)

    assert taken == [{"1": 5}]
    # Each bad cast crashes the collector that meets it; its terminate flushes its
    # buffer and the casts queued behind it go to its successor: 3, then 2, then 1.
    assert flushes.get(timeout=WAIT) == (0, {"1": 3})
    assert flushes.get(timeout=WAIT) == (0, {"1": 2})
    assert Process.monitor_wait(crashed, WAIT)
    assert pending(0) == 1
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (11, 10, 1, {})


def test_a_flush_events_call_that_times_out_hands_the_buffer_to_the_sinks(
    tree: Callable[..., Pid],
) -> None:
    flushes: queue.SimpleQueue[tuple[int, dict[Any, int]]] = queue.SimpleQueue()
    tree(on_flush=lambda p, data: flushes.put((p, data)))
    record(MEGACORP, 5)
    with flush_held(), pytest.raises(CallTimeout):
        EventCollector.flush_events(0, timeout=0.1)  # the collector answers only after this

    assert flushes.get(timeout=WAIT) == (0, {"1": 5})
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (5, 5, 0, {})


def test_a_kill_while_the_collector_is_busy_accounts_for_every_event(
    tree: Callable[..., Pid],
) -> None:
    flushes: queue.SimpleQueue[tuple[int, dict[Any, int]]] = queue.SimpleQueue()
    tree(on_flush=lambda p, data: flushes.put((p, data)))
    record(MEGACORP, 5)
    killed = collector(0)
    old_thread = thread_of(killed)
    errors: list[Exception] = []

    def flush() -> None:
        try:
            EventCollector.flush_events(0)
        except ExitError as e:
            errors.append(e)

    with flush_held() as held:
        flusher = threading.Thread(target=flush)
        flusher.start()
        assert held.entered.wait(WAIT)
        record(MEGACORP, 3)  # queued behind the flush
        Process.exit(killed, "kill")
    flusher.join(WAIT)
    old_thread.join(WAIT)

    assert [e.reason for e in errors] == ["killed"]  # the caller never got the buffer...
    assert flushes.get(timeout=WAIT) == (0, {"1": 5})  # ...so the collector delivered it
    acc = SummarizerSupervisor.accounting()
    assert acc.lost == {"killed": 3}
    assert (acc.accepted, acc.flushed, acc.pending) == (8, 5, 0)
    assert acc.balanced


def test_a_stray_cast_dropped_by_a_dead_collector_is_not_counted_as_a_lost_event(
    tree: Callable[..., Pid],
) -> None:
    tree()
    dead = collector(0)
    thread = thread_of(dead)
    Process.exit(dead, "kill")
    thread.join(WAIT)

    GenServer.cast(dead, ("record_event", None))  # never accepted by record_event
    GenServer.cast(dead, "hello")

    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.lost) == (0, {})
    assert acc.balanced


def test_a_collector_killed_while_terminate_delivers_its_buffer_counts_it_once(
    tree: Callable[..., Pid],
) -> None:
    sink = HoldingSink()
    sup = tree(sinks=[sink])
    record(MEGACORP, 5)
    assert pending(0) == 5
    crashed = collector(0)
    thread = thread_of(crashed)
    try:
        GenServer.cast(crashed, ("record_event", None))  # terminate hands the buffer over...
        assert sink.entered.wait(WAIT)
        Process.exit(crashed, "kill")  # ...and is killed while the sink holds it
    finally:
        sink.resume.set()
    thread.join(WAIT)
    Supervisor.stop(sup)  # the sink's delivery worker finishes the write

    assert sink.totals() == {"1": 5}
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (5, 5, 0, {})


class Customer(User):
    """A subclass of User, as an application might define one."""

    __slots__ = ()


def test_a_user_subclass_is_recorded_and_flushed_like_a_user(tree: Callable[..., Pid]) -> None:
    tree()
    EventCollector.record_event(Customer("1", "MegaCorp", "enterprise"))
    assert EventCollector.flush_events(0) == {"1": 1}
    books = SummarizerSupervisor.accounting()
    assert books.balanced and books.accepted == books.flushed == 1


def test_the_seeds_tagged_cast_sent_directly_enters_the_books(tree: Callable[..., Pid]) -> None:
    tree()
    for _ in range(3):
        GenServer.cast(collector(0), ("record_event", MEGACORP))
    assert EventCollector.flush_events(0) == {"1": 3}
    books = SummarizerSupervisor.accounting()
    assert books.balanced and books.accepted == books.flushed == 3


def test_tagged_casts_sent_directly_do_not_widen_a_bounded_mailbox(
    tree: Callable[..., Pid],
) -> None:
    tree(max_mailbox=4, overflow="drop_newest")
    pid = collector(0)
    for _ in range(25):  # the bound is the process's: direct casts count against it too
        for _ in range(4):
            GenServer.cast(pid, ("record_event", MEGACORP))
        pending(0)  # a call round-trip: the four are handled, the mailbox is empty
    EventCollector.record_event(MEGACORP)  # a non-empty buffer, so its flush logs
    with flush_held() as held:  # hold the collector: whatever is recorded now stays queued
        caller = threading.Thread(target=EventCollector.flush_events, args=(0,))
        caller.start()
        assert held.entered.wait(WAIT)
        record(MEGACORP, 10)  # 4 slots: 4 queued, 6 dropped
        held.resume.set()
        caller.join(WAIT)
    books = SummarizerSupervisor.accounting()
    assert books.lost == {"overflow": 6}, books.lost
    assert books.balanced
