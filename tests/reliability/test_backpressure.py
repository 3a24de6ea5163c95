"""Backpressure: ``max_mailbox`` bounds each collector's queued casts.

8 producers outpace the collectors (the unbounded run shows their mailboxes
growing far past the bound). With ``overflow="block"`` the producers wait for
room (a mailbox exceeds the bound by at most one event per producer) and
nothing is lost; with ``"drop_newest"`` every dropped event is
counted under ``lost["overflow"]``; the default is unbounded, as OTP.

A sampler thread reads every collector's mailbox size (an internal, fine for
a test) every millisecond while the producers run; no flush runs meanwhile
(``flush_interval`` 60 s), so the mailboxes hold casts only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from support import COLLECTORS, WAIT, held, live_children, queued

from summarizer import MemorySink, SummarizerSupervisor
from summarizer.otp import Pid, Process

from .helpers import PRODUCERS, join_threads, produce, stop_tree

BOUND = 64
EVENTS = 300_000
PARTITIONS = 2


class Sampler(threading.Thread):
    """Record the largest mailbox size of ``pids`` until stopped."""

    def __init__(self, pids: list[Pid]) -> None:
        super().__init__(name="mailbox-sampler", daemon=True)
        self.pids = pids
        self.largest = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.largest = max(self.largest, *(queued(pid) for pid in self.pids))
            self.samples += 1
            self.halt.wait(0.001)  # the sampling rate, not a synchronisation

    def stop(self) -> int:
        self.halt.set()
        join_threads([self], WAIT, "the sampler")
        return self.largest


def run_load(tree: Any, **options: Any) -> tuple[Any, int, MemorySink, Any]:
    """Push `EVENTS` from 8 producers while sampling the mailboxes; stop; return the books."""
    sink = MemorySink()
    sup = tree(flush_interval=60.0, partitions=PARTITIONS, sinks=[sink], **options)
    sampler = Sampler(live_children(COLLECTORS))
    sampler.start()
    producers, expected = produce(EVENTS)
    join_threads(producers, 120.0, "the producers")
    largest = sampler.stop()
    stop_tree(sup)
    acc = SummarizerSupervisor.accounting()
    print(
        f"\n{options or 'unbounded'}: largest mailbox {largest} in {sampler.samples} samples, "
        f"lost {acc.lost}"
    )
    return acc, largest, sink, expected


def test_a_blocking_bounded_mailbox_never_exceeds_its_bound_and_loses_nothing(tree):
    acc, largest, sink, expected = run_load(tree, max_mailbox=BOUND, overflow="block")

    # producers that look at the same moment may each add one: at most one over per producer
    assert largest <= BOUND + PRODUCERS
    assert largest > BOUND // 2, "the producers never filled a mailbox: the bound was not tested"
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == EVENTS
    assert sink.totals() == expected


def test_a_dropping_bounded_mailbox_counts_every_dropped_event_as_overflow(tree):
    acc, largest, sink, expected = run_load(tree, max_mailbox=BOUND, overflow="drop_newest")

    assert largest <= BOUND + PRODUCERS
    assert set(acc.lost) <= {"overflow"}
    assert acc.lost.get("overflow", 0) > 0, "nothing was dropped: the bound was not tested"
    assert acc.accepted == EVENTS
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost["overflow"]
    totals = sink.totals()
    assert sum(totals.values()) == acc.flushed
    assert all(totals.get(user, 0) <= n for user, n in expected.items())


def test_the_default_mailbox_is_unbounded_and_loses_nothing(tree):
    acc, largest, sink, expected = run_load(tree)

    assert largest > BOUND, "the producers did not outpace the collectors"
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == EVENTS
    assert sink.totals() == expected


def test_stopping_the_tree_releases_producers_blocked_on_a_full_mailbox(tree):
    sup = tree(flush_interval=60.0, partitions=1, max_mailbox=1, overflow="block")
    halt = threading.Event()
    producers, _ = produce(10**9, stop=halt)  # until halted
    [collector] = live_children(COLLECTORS)
    # A call round-trip at a time until the mailbox is seen full: producers are blocked.
    deadline = time.monotonic() + WAIT
    while queued(collector) < 1:
        assert held(0) >= 0
        assert time.monotonic() < deadline, "the mailbox never filled"
    seconds = stop_tree(sup)
    halt.set()
    join_threads(producers, WAIT, "producers blocked on a stopped tree's mailbox")

    acc = SummarizerSupervisor.accounting()
    assert seconds < 5.0
    assert not Process.alive(sup)
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost_total
    assert set(acc.lost) <= {"exit", "noproc", "closed"}
