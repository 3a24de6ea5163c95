"""Intensity: crashes faster than max_restarts/max_seconds escalate to the top, as in OTP.

With OTP's defaults (3 restarts in 5 s) at both levels, the 4th collector
crash within 5 s makes ``EventCollectorPartitionSupervisor`` give up; the
tree restarts it, and its 4th death within 5 s makes ``SummarizerSupervisor``
itself exit: 16 kills in all. Nothing may hang or be left running, and a new
tree must start and work afterwards.
"""

from __future__ import annotations

import threading
import time

from support import COLLECTORS, WAIT, live_children

from summarizer import EventCollector, SummarizerSupervisor
from summarizer.otp import OtpError, Pid, Process, Supervisor

from .helpers import USERS, join_threads, poll

PARTITIONS = 2


def kill_and_wait(sup: Pid, victim: Pid) -> bool:
    """Kill ``victim``; return True once its collector is back, False once the top is dead.

    Each turn of the poll is a call round-trip: to the collectors' supervisor
    (served after the victim's EXIT), or, while that one is being replaced, to the top.
    """
    Process.exit(victim, "kill")

    def settled() -> str | None:
        try:
            pids = live_children(COLLECTORS)
        except OtpError:  # the collectors' supervisor gave up: ask the top
            try:
                Supervisor.which_children(sup)
            except OtpError:
                return "top died"
            return None
        return "restarted" if len(pids) == PARTITIONS and victim not in pids else None

    return poll(settled, WAIT, f"a restart after killing {victim}") == "restarted"


def test_collector_kills_faster_than_the_intensity_allows_bring_down_the_top_supervisor(tree):
    before = set(threading.enumerate())
    baseline = threading.active_count()
    names = Process.registered()
    sup = tree(flush_interval=0.05, partitions=PARTITIONS)
    for i in range(10_000):
        EventCollector.record_event(USERS[i % len(USERS)])

    began = time.monotonic()
    kills = 0
    while kill_and_wait(sup, live_children(COLLECTORS)[kills % PARTITIONS]):
        kills += 1
        assert kills < 100, "the top supervisor never gave up"
    kills += 1  # the last one took the top down
    assert Process.monitor_wait(sup, WAIT), "the top supervisor did not exit"
    seconds = time.monotonic() - began
    print(f"\n{kills} kills in {seconds:.2f} s brought SummarizerSupervisor down")

    assert not Process.alive(sup)
    if seconds < 4:  # all within one intensity window: OTP's count exactly
        assert kills == 16
    join_threads([t for t in threading.enumerate() if t not in before], WAIT, "the tree's threads")
    assert threading.active_count() == baseline
    assert Process.registered() == names

    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == 10_000
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost_total
    assert set(acc.lost) <= {"killed", "noproc"}


def test_a_tree_starts_again_and_works_after_its_top_supervisor_gave_up(tree):
    sup = tree(flush_interval=0.05, partitions=PARTITIONS, max_restarts=0)
    # max_restarts=0: each collector kill takes its PartitionSupervisor down at once.
    while kill_and_wait(sup, live_children(COLLECTORS)[0]):
        pass
    assert Process.monitor_wait(sup, WAIT)

    flushed = threading.Event()
    tree(flush_interval=0.05, partitions=PARTITIONS, on_flush=lambda p, data: flushed.set())
    for i in range(1_000):
        EventCollector.record_event(USERS[i % len(USERS)])
    assert flushed.wait(WAIT), "the new tree's flushers never flushed"
    drained = sum(sum(EventCollector.flush_events(p).values()) for p in range(PARTITIONS))
    acc = SummarizerSupervisor.accounting()
    assert acc.accepted == 1_000
    assert acc.flushed == 1_000 and acc.pending == 0 and acc.lost == {}
    assert drained <= 1_000


def test_kills_within_the_intensity_are_absorbed_below_the_top(tree):
    sup = tree(flush_interval=0.05, partitions=PARTITIONS)
    children = Supervisor.which_children(sup)
    for k in range(3):  # max_restarts=3: three restarts are allowed
        assert kill_and_wait(sup, live_children(COLLECTORS)[k % PARTITIONS])
    assert Process.alive(sup)
    assert Supervisor.which_children(sup) == children, "a supervisor below the top restarted"
