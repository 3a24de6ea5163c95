"""Reliability tests: shared helpers (the fixtures are in conftest.py).

Every test here starts its trees through the `tree` fixture (stopped by its
finalizer) and is checked by `leaves_no_thread_behind` (autouse): the threads
it started are joined within a bound and none may be left, nor a name left
registered. Nothing here sleeps to synchronise: waits are on Events, thread
joins with a timeout, or bounded polls whose every turn is a call round-trip.

Sizes come from the environment so the same tests run at CI size and at full
size: ``SUMMARIZER_FAULT_EVENTS`` and ``SUMMARIZER_SOAK_EVENTS``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from support import COLLECTORS, FLUSHERS, WAIT, routed_pids

from summarizer import EventCollector, User
from summarizer.otp import GenServer, Pid, Process, Supervisor

ROOT = Path(__file__).resolve().parents[2]
PRODUCERS = 8
#: 100 users spread over every partition; built once, so producers allocate nothing.
USERS = [User(str(i), f"customer {i}", ("free", "basic", "enterprise")[i % 3]) for i in range(100)]
#: A malformed cast: the collector's handle_cast raises on it (None has no ``id``).
POISON = ("record_event", None)


def child_env(**extra: str) -> dict[str, str]:
    """Return the environment for a ``python -c`` subprocess that imports this checkout.

    The checkout comes after any ``PYTHONPATH`` already set, so a run can point
    the subprocesses at another copy of the package too; run them from a
    neutral directory (the current one would come first on ``sys.path``).
    """
    paths = [p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}


def env_int(name: str, default: int) -> int:
    """Return the positive int in environment variable ``name``, or ``default``."""
    raw = os.environ.get(name, "").replace("_", "")
    if not raw:
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got: {raw!r}")
    return value


@contextlib.contextmanager
def switch_interval(seconds: float = 1.0) -> Iterator[None]:
    """Set the GIL switch interval (``sys.setswitchinterval``) for a block; a scheduling knob.

    Long (1 s): a running thread keeps the GIL until it blocks, so a test can
    queue many messages before a process sees the first, or make a reply land
    while the caller's timed-out wait still needs the GIL back. Short: a thread
    woken by a timer (an injector) gets its turn on time among busy producers.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def join_threads(threads: Sequence[threading.Thread], timeout: float, what: str) -> None:
    """Join ``threads`` within ``timeout`` seconds in all; fail naming ``what`` if one is left."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threads if t.is_alive()]
    assert left == [], f"{what} still running after {timeout} s: {left}"


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Return ``predicate()`` once truthy; each turn must be a call round-trip (no sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def produce(
    events: int,
    users: Sequence[User] = USERS,
    threads: int = PRODUCERS,
    start: threading.Event | None = None,
    stop: threading.Event | None = None,
    ticks: threading.Semaphore | None = None,
) -> tuple[list[threading.Thread], Counter[Any]]:
    """Start ``threads`` producers recording ``events`` in all; return them and the expected totals.

    The users are dealt round-robin, so the expected totals per user are known
    before anything runs. Producers wait for ``start`` if given, give up early
    when ``stop`` is set (then the expected totals are an upper bound), and
    release ``ticks`` once per 1024 events, so a test can wait for progress
    without asking the (busy) collectors.
    """
    expected: Counter[Any] = Counter()
    shares = [events // threads + (1 if k < events % threads else 0) for k in range(threads)]
    n = len(users)
    for k, share in enumerate(shares):
        full, rest = divmod(share, n)
        for i in range(n):
            expected[users[(i + k) % n].id] += full + (1 if i < rest else 0)

    def run(k: int, share: int) -> None:
        if start is not None:
            start.wait(WAIT)
        record = EventCollector.record_event
        for i in range(share):
            if i % 1024 == 0 and i:
                if stop is not None and stop.is_set():
                    return
                if ticks is not None:
                    ticks.release()
            record(users[(i + k) % n])

    workers = [
        threading.Thread(target=run, args=(k, s), name=f"producer-{k}", daemon=True)
        for k, s in enumerate(shares)
    ]
    for w in workers:
        w.start()
    return workers, expected


class Tally:
    """An ``on_flush`` callback that adds up what it is given, from any thread."""

    def __init__(self) -> None:
        self.totals: Counter[Any] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, partition: int, data: dict[Any, int]) -> None:
        with self._lock:
            self.totals.update(data)
            self.calls += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.totals.values())


def stop_tree(pid: Pid, timeout: float = 60.0) -> float:
    """Stop a tree gracefully; return the seconds ``Supervisor.stop`` took."""
    began = time.monotonic()
    Supervisor.stop(pid, "normal", timeout)
    return time.monotonic() - began


class Injector(threading.Thread):
    """Inject a fault every ``pace`` seconds until stopped; count them by kind.

    ``"kill"`` kills a random collector or flusher; ``"raise"`` casts `POISON` to
    a random collector, so its ``handle_cast`` raises. The pace is the load's
    shape, not a synchronisation.
    """

    def __init__(self, fault: str, seed: int, pace: float = 0.05) -> None:
        super().__init__(name=f"injector-{fault}", daemon=True)
        self.fault = fault
        self.pace = pace
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.first = threading.Event()  # set after the first fault: producers start then
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.inject()
            self.first.set()
            self.halt.wait(self.pace)

    def inject(self) -> None:
        if self.fault == "kill":
            kind = self.rng.choice(("collector", "flusher"))
            pids = routed_pids(COLLECTORS if kind == "collector" else FLUSHERS)
            if pids:
                Process.exit(self.rng.choice(pids), "kill")
                self.counts[f"{kind} killed"] += 1
        else:
            pids = routed_pids(COLLECTORS)
            if pids:
                GenServer.cast(self.rng.choice(pids), POISON)
                self.counts["collector crashed"] += 1

    def stop(self) -> None:
        self.halt.set()
        join_threads([self], WAIT, "the injector")
