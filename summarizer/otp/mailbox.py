"""Mailboxes of supervised children: counted, optionally bounded, handed to the successor.

OTP delivers a cast or loses it silently: a cast to a dead process vanishes, and a
process's mailbox dies with it. A supervisor can give a child a `Mailbox` in its
spec to make that delivery accountable::

    spec = Counter.child_spec(None)
    spec = dataclasses.replace(spec, mailbox=Mailbox(handoff=True, max_mailbox=10_000))
    PartitionSupervisor.start_link(child_spec=spec, name="Counters", partitions=3)
    PartitionSupervisor.cast("Counters", "user-1", "incr")  # counted in stats
    PartitionSupervisor.stats("Counters").partitions[0].accepted  # 1

The mailbox belongs to the child's place in its supervisor, not to one process,
so it outlives restarts. It keeps, across them:

* **counters** of the casts it accepted and of those lost, by reason: ``"killed"``
  (in the mailbox or the state of a killed process), ``"noproc"`` (cast to a dead
  process), ``"exit"`` (still queued when the process exited), ``"overflow"``
  (refused by a full bounded mailbox), ``"closed"`` (cast after `close`, which
  refuses new casts ahead of a stop);
* with ``handoff=True``, the **orphans**: casts that reached a dead process or were
  still queued when it crashed. The next process of the place gets them in its
  mailbox before any other message, so a crash loses no cast. A kill still
  destroys the mailbox, as on the BEAM, and the loss is counted;
* with ``max_mailbox=n``, a **bound** on the queued casts, and on the orphans
  while no process holds the place: a sender waits for room (``overflow="block"``)
  or the cast is dropped and counted (``"drop_newest"``). Senders that look at the
  same moment may each add one, so a mailbox can exceed the bound by one cast per
  sending thread.

Counters count *units*: one per cast, unless ``weigh(msg)`` says a message carries
more (a batch of events) and ``held(state)`` how many units a state holds when a
kill destroys it. `PartitionSupervisor.cast` takes the units from its caller
(``units=``, default 1) so that its fast path weighs nothing: they must agree
with ``weigh``. Bumping a counter is one ``next()`` on an ``itertools.count``,
atomic under the GIL, so the hot path takes no lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .validate import brief, positive_int

if TYPE_CHECKING:
    from .process import Proc

__all__ = ["Mailbox", "MailboxStats", "Overflow", "Place", "Tally", "count_accepted", "count_lost"]

log = logging.getLogger("summarizer")

Overflow = Literal["block", "drop_newest"]
OVERFLOWS = ("block", "drop_newest")


class Tally:
    """Count from many threads: ``bump()`` is one ``next()``, atomic under the GIL.

    ``value()`` reads the count without parsing a repr: it takes one ``next()``
    itself and subtracts the reads so far (readers share a lock; bumpers do not).
    """

    __slots__ = ("_lock", "_reads", "bump")

    def __init__(self) -> None:
        self.bump = itertools.count().__next__
        self._reads = 0
        self._lock = threading.Lock()

    def value(self) -> int:
        """Return how many times ``bump`` was called."""
        with self._lock:
            n = self.bump() - self._reads
            self._reads += 1
        return n


def _one(_msg: Any) -> int:
    return 1


def _nothing(_state: Any) -> int:
    return 0


@dataclass(frozen=True)
class Mailbox:
    """Say how a supervisor delivers casts to one child (see the module docstring)."""

    handoff: bool = False
    max_mailbox: int | None = None
    overflow: Overflow = "block"
    weigh: Callable[[Any], int] = field(default=_one, compare=False)
    held: Callable[[Any], int] = field(default=_nothing, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.handoff, bool):
            raise TypeError(f"handoff must be a bool, got: {brief(self.handoff)}")
        if self.max_mailbox is not None:
            positive_int("max_mailbox", self.max_mailbox)
        if self.overflow not in OVERFLOWS:
            raise ValueError(
                f"overflow must be 'block' or 'drop_newest', got: {brief(self.overflow)}"
            )
        for name in ("weigh", "held"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable, got: {brief(getattr(self, name))}")


class MailboxStats(NamedTuple):
    """The counters of one place: units accepted, lost by reason, and waiting now."""

    accepted: int
    lost: dict[str, int]
    queued: int  # messages in the current process's mailbox
    orphaned: int  # units waiting for the next process


class _Room:
    """Make senders wait for room in one process's bounded mailbox."""

    __slots__ = ("_cond", "_low", "limit", "proc", "waiting")

    def __init__(self, proc: Proc, limit: int) -> None:
        self.proc = proc
        self.limit = limit
        self._low = limit // 2
        self._cond = threading.Condition(threading.Lock())
        self.waiting = 0

    def full(self) -> bool:
        """Return whether the mailbox holds ``limit`` messages or more."""
        return self.proc.mailbox.qsize() >= self.limit

    def wait(self) -> None:
        """Wait until the mailbox has room, or its process died."""
        proc = self.proc
        with self._cond:
            self.waiting += 1
            try:
                while self.full() and proc.alive:
                    self._cond.wait(0.05)  # a missed wake-up costs at most this
            finally:
                self.waiting -= 1

    def taken(self) -> None:
        """Wake the waiting senders once the mailbox has drained to half the bound."""
        if self.waiting and self.proc.mailbox.qsize() <= self._low:
            with self._cond:
                self._cond.notify_all()


class Place:
    """One child's place under its supervisor: its mailbox options, counters and orphans.

    ``proc`` is the process that holds the place now (dead between a death and
    the restart). Every method is safe from any thread. ``_lock`` guards the
    counters, the orphans and ``proc``; ``_changed`` (on the same lock) wakes
    senders waiting for room while no process holds the place.
    """

    __slots__ = (
        "_changed",
        "_extra",
        "_lock",
        "accepted",
        "closed",
        "fast",
        "final",
        "lost",
        "orphaned",
        "orphans",
        "proc",
        "spec",
    )

    def __init__(self, spec: Mailbox) -> None:
        self.spec = spec
        self.proc: Proc | None = None
        self.fast: Proc | None = None  # proc, while the place is open and unbounded
        self.accepted = Tally()
        self._extra = 0  # units accepted in messages of more than one unit
        self.lost: Counter[str] = Counter()
        self.orphans: list[Any] = []
        self.orphaned = 0  # the units the orphans carry
        self.closed = False  # refuses new casts (a stop is coming)
        self.final = False  # no process will hold the place again
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def units(self, msgs: list[Any]) -> int:
        """Return the units ``msgs`` carry, by ``weigh``; one each if ``weigh`` raises."""
        try:
            return sum(map(self.spec.weigh, msgs))
        except Exception:
            log.exception("weigh raised: counting each message as one unit")
            return len(msgs)

    # -- sending -------------------------------------------------------------

    def cast(self, msg: Any, units: int = 1) -> None:
        """Deliver a cast of ``units`` (what ``weigh(msg)`` says) to the place's process."""
        if units == 1:
            self.accepted.bump()
        else:
            with self._lock:
                self._extra += units
        self.deliver(self.proc, msg, units)

    def cast_to(self, proc: Proc, msg: Any) -> None:
        """Deliver a cast addressed to ``proc`` (this place's, maybe a dead one)."""
        units = self.units([msg])
        if units == 1:
            self.accepted.bump()
        else:
            with self._lock:
                self._extra += units
        self.deliver(proc, msg, units)

    def deliver(self, proc: Proc | None, msg: Any, units: int) -> None:
        """Put ``msg`` into ``proc``'s mailbox within the bound, or keep or count it."""
        bound = self.spec.max_mailbox
        while True:
            if self.closed:
                self.lose("closed", units)
                return
            if proc is not None and proc.alive:
                room: _Room | None = proc.room
                if room is not None and room.full():
                    if self.spec.overflow == "drop_newest":
                        self.lose("overflow", units)
                        return
                    room.wait()  # if it dies meanwhile, the put finds it dead: handed off
                proc.put(msg)
                return
            if bound is None or not self.spec.handoff or len(self.orphans) < bound:
                if proc is None:  # never started yet: kept for the first process
                    self.lost_casts(None, [msg], "noproc")
                else:  # dead: its put keeps it for the next process, or counts it lost
                    proc.put(msg)
                return
            if self.spec.overflow == "drop_newest":  # the bound holds between processes too
                self.lose("overflow", units)
                return
            with self._changed:  # wait for the successor, or for the stop
                self._changed.wait(0.05)  # a missed wake-up costs at most this
            proc = self.proc

    # -- the runtime's side ----------------------------------------------------

    def attach(self, proc: Proc) -> None:
        """Make ``proc`` hold the place: give it the orphans first, then new casts."""
        proc.place = self
        if self.spec.max_mailbox is not None:
            proc.room = _Room(proc, self.spec.max_mailbox)
        with self._lock:
            orphans, self.orphans, self.orphaned = self.orphans, [], 0
            for msg in orphans:
                proc.mailbox.put(msg)
            self.proc = proc
            self.fast = None if proc.room is not None or self.closed else proc
            self._changed.notify_all()

    def lost_casts(self, proc: Proc | None, msgs: list[Any], reason: Any) -> bool:
        """Take casts ``proc`` will never handle: keep them for the next, or count them lost.

        Return True if they were kept (handed off), False if counted lost.
        """
        units = self.units(msgs)
        if reason == "killed":
            self.lose("killed", units)
            return False
        with self._lock:
            current = self.proc
            if not self.spec.handoff or self.final:
                self.lost["noproc" if reason == "noproc" else "exit"] += units
                return False
            if current is None or current is proc or not current.alive:
                self.orphans.extend(msgs)  # for the next process, before its first message
                self.orphaned += units
                return True
        for msg in msgs:  # the successor runs already: straight to it (outside the lock:
            current.put(msg)  # if it died meanwhile, its put hands them on again)
        return True

    def lost_state(self, state: Any, reason: Any) -> None:
        """Count the units the state of a process that died untrapped held."""
        try:
            units = self.spec.held(state)
        except Exception:
            log.exception("held raised: the units of a lost state are not counted")
            return
        self.lose("killed" if reason == "killed" else "exit", units)

    def lose(self, reason: str, units: int) -> None:
        """Count ``units`` lost for ``reason``."""
        if units > 0:
            with self._lock:
                self.lost[reason] += units

    def close(self) -> None:
        """Refuse casts from now on, counted ``"closed"``; the running process goes on."""
        with self._lock:
            self.closed = True
            self.fast = None
            self._changed.notify_all()

    def finish(self) -> None:
        """Close for good: no process will come, so the orphans are lost, ``"noproc"``."""
        with self._lock:
            self.closed = self.final = True
            self.fast = None
            if self.orphaned:
                self.lost["noproc"] += self.orphaned
            self.orphans, self.orphaned = [], 0
            self._changed.notify_all()

    def stats(self) -> MailboxStats:
        """Return the counters now."""
        accepted = self.accepted.value()
        proc = self.proc
        with self._lock:
            return MailboxStats(
                accepted + self._extra,
                dict(self.lost),
                proc.mailbox.qsize() if proc is not None else 0,
                self.orphaned,
            )


_spawning = threading.local()


@contextmanager
def spawning(place: Place | None) -> Iterator[None]:
    """Make the next process started from this thread hold ``place`` (a supervisor's start)."""
    _spawning.place = place
    try:
        yield
    finally:
        _spawning.place = None


def take_place() -> Place | None:
    """Return the place the process being started takes, once (for `start`)."""
    place: Place | None = getattr(_spawning, "place", None)
    _spawning.place = None
    return place


def _own_place() -> Place | None:
    from .process import current

    proc = current()
    return None if proc is None else proc.place


def count_accepted(units: int) -> None:
    """Count ``units`` accepted by the calling process's place, that came another way.

    For a process whose work arrives outside its mailbox (a proxy whose remote
    half takes events directly): the books then include them. No-op without a place.
    """
    place = _own_place()
    if place is not None and units > 0:
        with place._lock:
            place._extra += units


def count_lost(units: int, reason: str) -> None:
    """Count ``units`` lost for ``reason`` on the calling process's place (no-op without one).

    For what the runtime cannot see: a proxy's remote state that died with its host.
    """
    place = _own_place()
    if place is not None:
        place.lose(reason, units)
