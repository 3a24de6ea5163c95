"""Fault injection: kills and crashes under load lose only what a kill destroys, all counted.

8 producers record ``SUMMARIZER_FAULT_EVENTS`` events (default 1,000,000: one to
two seconds of load on the project's 2-core machine) while an injector thread
kills a random collector or flusher every 50 ms, or makes a random collector's
``handle_cast`` raise. Afterwards a graceful ``Supervisor.stop`` must leave the
books exact: ``accepted == flushed + lost``, nothing pending, the sinks and
``on_flush`` holding exactly what was flushed, and every loss explained: by a
kill ("killed": the buffer and mailbox it destroyed). Casts that find a
collector dead before its restart, or still queued when it crashed, are handed
by the runtime to its successor, so a crash (an exception in a handler) loses
nothing at all.

The other tests pin down, one at a time, the races such a run can hit: two
malformed casts in one mailbox, a malformed cast to a dead pid, a flush call
that times out, a reply that lands as its caller's wait times out.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

from support import COLLECTORS, WAIT, live_children

from summarizer import EventCollector, MemorySink, SummarizerSupervisor, User
from summarizer.otp import CallTimeout, GenServer, NoReply, Ok, Process, Reply, Supervisor

from .helpers import (
    POISON,
    PRODUCERS,
    Injector,
    Tally,
    env_int,
    join_threads,
    poll,
    produce,
    stop_tree,
    switch_interval,
)

#: A short GIL switch interval: with the default 5 ms, 12 busy threads leave the
#: injector a turn about every 200 ms instead of every 50 ms.
SWITCH = 0.0005
EVENTS = env_int("SUMMARIZER_FAULT_EVENTS", 1_000_000)
PARTITIONS = 4
#: High enough that 20 faults a second stay below the PartitionSupervisors' intensity.
INTENSITY = {"max_restarts": 1000, "max_seconds": 1}


def run_under_faults(tree: Any, fault: str, seed: int) -> tuple[Any, Counter[str], Any, Any]:
    """Push `EVENTS` from 8 producers while injecting ``fault``; stop; return the books."""
    sink, tally = MemorySink(), Tally()
    sup = tree(flush_interval=0.1, partitions=PARTITIONS, sinks=[sink], on_flush=tally, **INTENSITY)
    injector = Injector(fault, seed)
    with switch_interval(SWITCH):  # the injector's turn comes at its pace
        injector.start()
        producers, expected = produce(EVENTS, start=injector.first)
        join_threads(producers, 240.0, "the producers")
        injector.stop()
    seconds = stop_tree(sup)
    acc = SummarizerSupervisor.accounting()
    print(
        f"\n{fault}: {EVENTS:,} events from {PRODUCERS} producers, faults {dict(injector.counts)}, "
        f"flushed {acc.flushed:,}, lost {acc.lost}, stop took {seconds:.2f} s"
    )
    return acc, injector.counts, (sink, tally), expected


def test_killing_collectors_and_flushers_every_50ms_loses_only_killed_events_all_counted(tree):
    acc, faults, (sink, tally), _ = run_under_faults(tree, "kill", seed=1)

    assert sum(faults.values()) >= 1
    assert acc.accepted == EVENTS
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost_total
    assert set(acc.lost) <= {"killed", "noproc"}, f"a loss not caused by a kill: {acc.lost}"
    assert acc.sink_errors == {}
    assert sum(sink.totals().values()) == acc.flushed, "the sink does not hold what was flushed"
    assert tally.total() == acc.flushed, "on_flush was not given what was flushed"


def test_crashing_collector_handlers_every_50ms_loses_nothing(tree):
    # A crash runs terminate, which flushes the buffer. The casts still queued,
    # or that reach the collector between its death and its restart, are handed
    # by the runtime to the next collector of the partition (OTP would drop
    # them): nothing is lost.
    acc, faults, (sink, tally), expected = run_under_faults(tree, "raise", seed=2)

    assert faults["collector crashed"] >= 1
    assert acc.accepted == EVENTS
    assert acc.pending == 0
    assert acc.lost == {}, f"a crash lost events: {acc.lost}"
    assert acc.accepted == acc.flushed, f"unbalanced books: {acc}"
    assert acc.sink_errors == {}
    assert sink.totals() == expected
    assert tally.totals == expected


def test_a_crashing_handler_loses_nothing_when_no_event_races_its_restart(tree):
    sink = MemorySink()
    sup = tree(flush_interval=60.0, partitions=PARTITIONS, sinks=[sink], **INTENSITY)
    before = live_children(COLLECTORS)
    workers, first = produce(40_000)
    join_threads(workers, WAIT * 6, "the producers")
    for pid in before:  # queued behind the events: each collector crashes after them
        GenServer.cast(pid, POISON)
    for pid in before:
        assert Process.monitor_wait(pid, WAIT), f"collector {pid} did not crash"
    after = poll(
        lambda: (c := live_children(COLLECTORS)) and len(c) == PARTITIONS and c,
        WAIT,
        "the collectors' restarts",
    )
    assert set(after).isdisjoint(before)
    workers, second = produce(40_000)
    join_threads(workers, WAIT * 6, "the producers")
    stop_tree(sup)

    acc = SummarizerSupervisor.accounting()
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == 80_000
    assert sink.totals() == first + second


def test_two_malformed_casts_queued_in_one_mailbox_lose_no_accepted_event(tree):
    # The first poison cast makes handle_cast raise; terminate flushes the first
    # 1,000 events, and the runtime hands the casts still queued (1,000 events
    # and the second poison cast) to the successor, which crashes on the second
    # and flushes the second 1,000.
    sink = MemorySink()
    sup = tree(flush_interval=60.0, partitions=1, sinks=[sink])
    [collector] = live_children(COLLECTORS)
    user = User("1", "MegaCorp", "enterprise")
    with switch_interval():  # all of it is queued before the collector runs again
        for _ in range(1_000):
            EventCollector.record_event(user)
        GenServer.cast(collector, POISON)
        for _ in range(1_000):
            EventCollector.record_event(user)
        GenServer.cast(collector, POISON)
    assert Process.monitor_wait(collector, WAIT), "the poisoned collector did not exit"
    poll(lambda: SummarizerSupervisor.accounting().flushed == 2_000, WAIT, "both crashes' flushes")

    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == 2_000
    assert acc.balanced, f"unbalanced books: {acc}"
    assert acc.lost == {}
    assert acc.pending == 0
    Supervisor.stop(sup)  # the sinks are written by their delivery workers: drain them
    assert sink.totals() == {"1": 2_000}


def test_a_malformed_cast_to_a_dead_collector_is_not_counted_as_a_lost_event(tree):
    tree(flush_interval=60.0, partitions=1)
    [collector] = live_children(COLLECTORS)
    Process.exit(collector, "kill")
    GenServer.cast(collector, POISON)  # never accepted by record_event: not an event

    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == 0
    assert acc.lost == {}, "a cast that was never an accepted event was counted as lost"


def flush_with_a_timeout(late: bool) -> None:
    """Time out a flush_events call behind a backlog; check that no flushed event is lost.

    ``late``: the collector serves the call after the caller gave up. Otherwise
    the reply lands just as the caller's wait times out (a long switch interval
    keeps the caller from running between the two): the race of a flusher whose
    5 s timeout expires under load.
    """
    sink = MemorySink()
    sup = SummarizerSupervisor.start_link(flush_interval=60.0, partitions=1, sinks=[sink])
    user = User("1", "MegaCorp", "enterprise")
    received: Counter[Any] = Counter()
    try:
        with switch_interval():
            for _ in range(200_000):  # queued before the collector runs again
                EventCollector.record_event(user)
            if not late:
                with contextlib.suppress(CallTimeout):
                    received.update(EventCollector.flush_events(0, timeout=1e-6))
        if late:
            with contextlib.suppress(CallTimeout):
                received.update(EventCollector.flush_events(0, timeout=1e-6))
        acc = SummarizerSupervisor.accounting()  # a call: the timed-out one was served first
    finally:
        stop_tree(sup)

    final = SummarizerSupervisor.accounting()
    delivered = sum(sink.totals().values()) + sum(received.values())
    assert final.accepted == 200_000
    assert final.accepted == final.flushed + final.lost_total
    assert delivered == final.flushed, (
        f"{final.flushed - delivered} events counted as flushed reached no one "
        f"(after the timed-out call: flushed {acc.flushed}, pending {acc.pending})"
    )


def test_a_flush_call_served_after_its_caller_timed_out_loses_no_event():
    flush_with_a_timeout(late=True)


def test_a_flush_reply_that_races_its_callers_timeout_loses_no_event():
    flush_with_a_timeout(late=False)


class Recorder(GenServer):
    """Answer every call at once; keep each call's reply slot to inspect later."""

    def init(self, slots: list[Any]) -> Ok:
        return Ok(slots)

    def handle_cast(self, request: Any, slots: list[Any]) -> NoReply:
        return NoReply(slots)  # busy work: a backlog the call waits behind

    def handle_call(self, request: Any, from_: Any, slots: list[Any]) -> Reply:
        slots.append((request, from_))
        return Reply(request, slots)


def test_a_call_that_times_out_never_swallows_a_reply_the_server_delivered():
    # The race behind a lost flush: the caller's wait times out, then the server's
    # reply lands in the slot before the caller marks it timed out. The caller must
    # then return that reply; raising CallTimeout throws it away, and the server,
    # which saw its reply accepted, cannot know. Each call waits behind 20,000
    # casts; a long switch interval lets the server work through them and answer
    # while the caller, whose wait has timed out, waits for the GIL: every time.
    slots: list[Any] = []
    pid = Recorder.start_link(slots)
    timeouts, swallowed = 0, []
    try:
        for i in range(20):
            try:
                with switch_interval():
                    for _ in range(20_000):
                        GenServer.cast(pid, "work")
                    GenServer.call(pid, i, timeout=0.001)
            except CallTimeout:
                timeouts += 1
                GenServer.call(pid, "sync", timeout=None)  # the timed-out call was served
                [from_] = [f for request, f in slots if request == i]
                if from_.error is None:  # the reply won: it was delivered, then dropped
                    swallowed.append(i)
    finally:
        GenServer.stop(pid)
    print(f"\n{timeouts} call timeouts, {len(swallowed)} swallowed a delivered reply")
    assert swallowed == [], f"{len(swallowed)} of {timeouts} timed-out calls dropped a reply"
