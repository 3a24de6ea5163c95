"""Soak: millions of events with periodic kills; the process's memory stays flat.

8 producers record the events while an injector kills a random collector or
flusher every 250 ms and a sampler reads the process's RSS (psutil) every
100 ms. The largest RSS of the run's second half may exceed the first half's
by less than 50 MB: buffers, timers, dead processes, mailbox places and the routing
cache must not accumulate. The books must balance, as in the fault tests.

The mailboxes are bounded (``max_mailbox=10_000``, producers block): with
OTP's unbounded mailboxes 8 producers outpace the collectors, and the RSS
then follows the backlog (a transient, not a leak: it measured +73 MB between
halves, back to the first half's peak once stopped), which would hide a leak.

The CI-size run (500,000 events) always runs; the full size (10,000,000, or
``SUMMARIZER_SOAK_EVENTS``) is marked ``soak`` and runs on demand:
``pytest -m soak tests/reliability``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil
import pytest
from support import WAIT

from summarizer import SummarizerSupervisor

from .helpers import Injector, env_int, join_threads, produce, stop_tree

CI_EVENTS = 500_000
FULL_EVENTS = env_int("SUMMARIZER_SOAK_EVENTS", 10_000_000)
MARGIN = 50 << 20  # bytes the second half's peak RSS may exceed the first half's by
MB = 1 << 20


class CountingSink:
    """Add up every flush without keeping the flushes (a MemorySink grows by design)."""

    def __init__(self) -> None:
        self.total = 0
        self._lock = threading.Lock()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        n = sum(data.values())
        with self._lock:
            self.total += n


class RssSampler(threading.Thread):
    """Sample this process's RSS every 100 ms until stopped."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.samples: list[int] = []
        self.halt = threading.Event()
        self._me = psutil.Process()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append(self._me.memory_info().rss)
            self.halt.wait(0.1)  # the sampling rate, not a synchronisation

    def stop(self) -> list[int]:
        self.halt.set()
        join_threads([self], WAIT, "the RSS sampler")
        self.samples.append(self._me.memory_info().rss)
        return self.samples


def soak(tree: Any, events: int) -> None:
    sink = CountingSink()
    sup = tree(
        flush_interval=0.1,
        partitions=4,
        sinks=[sink],
        max_restarts=1000,
        max_seconds=1,
        max_mailbox=10_000,
        overflow="block",
    )
    sampler, injector = RssSampler(), Injector("kill", seed=3, pace=0.25)
    sampler.start()
    injector.start()
    began = time.monotonic()
    producers, _ = produce(events, start=injector.first)
    join_threads(producers, 280.0, "the producers")
    injector.stop()
    seconds = time.monotonic() - began
    stop_tree(sup)
    samples = sampler.stop()

    acc = SummarizerSupervisor.accounting()
    half = len(samples) // 2
    first, second = max(samples[:half]), max(samples[half:])
    print(
        f"\nsoak: {events:,} events in {seconds:.1f} s ({events / seconds:,.0f}/s), "
        f"faults {dict(injector.counts)}, lost {acc.lost}; RSS {len(samples)} samples: "
        f"start {samples[0] / MB:.1f} MB, first-half peak {first / MB:.1f} MB, "
        f"second-half peak {second / MB:.1f} MB, end {samples[-1] / MB:.1f} MB"
    )
    assert half >= 2, "too few RSS samples to compare halves"
    assert second - first < MARGIN, f"RSS grew by {(second - first) / MB:.1f} MB"
    assert acc.accepted == events
    assert acc.pending == 0
    assert acc.accepted == acc.flushed + acc.lost_total
    assert set(acc.lost) <= {"killed", "noproc"}
    assert sink.total == acc.flushed


def test_half_a_million_events_with_periodic_kills_keep_memory_flat(tree):
    soak(tree, CI_EVENTS)


@pytest.mark.soak
def test_ten_million_events_with_periodic_kills_keep_memory_flat(tree):
    soak(tree, FULL_EVENTS)
