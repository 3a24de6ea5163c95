"""Recorder: batch a producer's events and send them with ``record_events``.

``record_event`` is one cast per event, the Livebook's lesson. A producer that
records many events buffers them instead, as a Kafka producer does
(``batch.size``, ``linger.ms``)::

    with Recorder(batch=1000, linger=0.001) as rec:
        for user in users:
            rec.record(user)
    # on exit the rest is sent: every event reached its collector

A batch leaves when it holds ``batch`` events, or ``linger`` seconds after its
first event, whichever comes first; the rest leaves on exit, on `flush`, when
the tree stops (its ``prep_stop`` flushes every recorder before the intake
closes) and at interpreter exit. Events waiting in a recorder are in the books:
`SummarizerSupervisor.accounting` counts them as accepted and pending, so a
graceful stop loses none of them. In a Ray task of a ``backend="ray"`` tree,
a recorder sends to the tree's actors and, when flushed or closed, returns
once they acknowledged every batch.

A recorder belongs to one producer thread; the linger thread and the tree's
stop may flush it from theirs. Events sit in a `collections.deque`: the owner
appends, a sender pops, so each event leaves exactly once without a lock per
event; one lock lets one send run at a time, so a stop waits for a send in
flight.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .collector import EventCollector, count_ids
from .options import COLLECTORS
from .otp import Process, phash2
from .otp.validate import brief, positive_int, positive_number
from .user import User

if TYPE_CHECKING:
    from .accounting import Accounting

__all__ = ["Recorder"]

log = logging.getLogger("summarizer")

#: Seconds the linger thread stays up with nothing to do (so a busy producer does not
#: start one per batch), and the longest it sleeps before dropping deadlines whose
#: batch left.
_IDLE = 0.05

_live: weakref.WeakSet[Recorder] = weakref.WeakSet()  # recorders that may hold events


class Recorder:
    """Buffer one producer's events; send them in batches with ``record_events``."""

    def __init__(self, batch: int = 1000, linger: float = 0.001) -> None:
        self.batch = positive_int("batch", batch)
        self.linger = positive_number("linger", linger)
        # Appended by the owner, popped by whoever sends: each event leaves once.
        self._events: deque[User] = deque()
        self._sending = threading.Lock()  # one send at a time, so a stop waits for one in flight
        self._generation = 0  # bumped at each send, so a stale linger deadline does nothing
        self._closed = False
        _live.add(self)
        # Dropped without close(): what it still holds is sent, not lost with it.
        weakref.finalize(self, _send_leftovers, self._events)

    def __repr__(self) -> str:
        return f"Recorder(batch={self.batch}, linger={self.linger}, pending={len(self._events)})"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def record(self, user: User) -> None:
        """Buffer one event for ``user``; send the batch if it is full."""
        if user.__class__ is not User and not isinstance(user, User):
            raise TypeError(f"user must be a User, got: {brief(user)}")
        if self._closed:  # used again after close(): track it again
            self._closed = False
            _live.add(self)
        events = self._events
        events.append(user)
        n = len(events)
        if n >= self.batch:
            self._send(settle=False)
        elif n == 1:
            _lingerer.arm(self, self._generation, self.linger)

    def flush(self) -> None:
        """Send the events buffered now; in a Ray worker, wait for their acknowledgements."""
        self._send(settle=True)

    def _send(self, settle: bool) -> None:
        """Send the buffer as one batch (one send at a time)."""
        with self._sending:
            self._generation += 1  # first: an event recorded from now on arms anew
            events = self._events
            popleft = events.popleft
            batch = [popleft() for _ in range(len(events))]
            if not _send_remote(batch, settle) and batch:
                EventCollector.record_events(batch)
            if events:  # recorded while we sent: give them their own linger deadline
                _lingerer.arm(self, self._generation, self.linger)

    def close(self) -> None:
        """Send the events buffered now and stop tracking this recorder (idempotent)."""
        self.flush()
        self._closed = True
        _live.discard(self)

    @property
    def pending(self) -> list[User]:
        """Return a copy of the events buffered now."""
        while True:
            try:
                return list(self._events)
            except RuntimeError:  # the deque changed while being copied: copy again
                continue

    def _linger_expired(self, generation: int) -> None:
        """Send the batch armed at ``generation`` if it is still waiting."""
        if generation == self._generation:
            self.flush()


def _send_leftovers(events: deque[User]) -> None:
    """Send what a recorder dropped without ``close()`` still held (its finalizer)."""
    batch = [events.popleft() for _ in range(len(events))]
    if batch and not _send_remote(batch, settle=False):
        EventCollector.record_events(batch)


def _send_remote(batch: list[User], settle: bool) -> bool:
    """Send ``batch`` to a Ray backend's actors if this is a Ray worker with no tree.

    Batches stay in flight (a few per thread) until a ``settle``: a recorder
    waits for their acknowledgements only when it is flushed or closed.
    """
    if "ray" not in sys.modules or Process.whereis(COLLECTORS) is not None:
        return False
    from . import ray_producers

    return ray_producers.record_remote(count_ids(batch), settle)


def flush_all() -> None:
    """Send what every recorder holds; for the tree's stop and interpreter exit."""
    for rec in list(_live):
        try:
            rec.flush()
        except Exception:
            log.exception("%r could not flush", rec)


def _partition(key: Any, n: int) -> int:
    """Return the partition of ``key`` among ``n``, as PartitionSupervisor routes it."""
    return abs(key) % n if isinstance(key, int) and not isinstance(key, bool) else phash2(key, n)


def fold_into(books: Accounting) -> Accounting:
    """Return ``books`` with the recorders' buffered events as accepted and pending."""
    n = len(books.partitions)
    held = [0] * n
    for rec in list(_live):
        for user in rec.pending:
            held[_partition(user.id, n)] += 1
    if not any(held):
        return books
    parts = [
        replace(p, accepted=p.accepted + h, pending=p.pending + h)
        for p, h in zip(books.partitions, held, strict=True)
    ]
    return replace(books, partitions=parts)


class _Lingerer:
    """Send batches whose linger passed, from one thread that exits when idle."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[Recorder], int]] = []
        self._ticket = itertools.count()  # ties in the heap never compare recorders
        self._cond = threading.Condition()  # guards _heap and _thread
        self._thread: threading.Thread | None = None

    def arm(self, rec: Recorder, generation: int, linger: float) -> None:
        """Send ``rec``'s batch ``generation`` in ``linger`` seconds unless it left before."""
        due = time.monotonic() + linger
        with self._cond:
            first = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, next(self._ticket), weakref.ref(rec), generation))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="summarizer-recorder-linger", daemon=True
                )
                self._thread.start()
            elif first:
                self._cond.notify()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            with self._cond:
                while True:
                    heap = self._heap
                    while heap and _stale(heap[0]):  # its batch left already
                        heapq.heappop(heap)
                    now = time.monotonic()
                    if heap and heap[0][0] <= now:
                        _, _, ref, generation = heapq.heappop(heap)
                        break
                    if heap:
                        idle_since = None
                        self._cond.wait(min(heap[0][0] - now, _IDLE))
                    elif idle_since is None:
                        idle_since = now
                        self._cond.wait(_IDLE)
                    elif now - idle_since >= _IDLE:
                        self._thread = None
                        return
                    else:
                        self._cond.wait(_IDLE - (now - idle_since))
            rec = ref()
            if rec is not None:
                try:
                    rec._linger_expired(generation)
                except Exception:
                    log.exception("%r could not send a lingering batch", rec)


def _stale(entry: tuple[float, int, weakref.ref[Recorder], int]) -> bool:
    """Return whether a linger deadline's batch left already (or its recorder is gone)."""
    rec = entry[2]()
    return rec is None or rec._generation != entry[3]


_lingerer = _Lingerer()
atexit.register(flush_all)
