"""Accounting: every accepted event is flushed, pending, or lost with a reason.

OTP drops data silently in a few places: a cast to a dead process, a mailbox
or a state destroyed by a kill. We keep OTP's behaviour and count each loss::

    sup = SummarizerSupervisor.start_link(flush_interval=1.0)
    ...  # record events, kill a collector
    acc = SummarizerSupervisor.accounting()
    acc.accepted == acc.flushed + acc.lost_total + acc.pending  # always, when quiet
    acc.lost  # {"killed": 1412}

Per partition we count ``accepted`` (``record_event`` returned), ``flushed``
(left the collector's buffer through ``flush_events`` or its final flush) and
``lost`` by reason:

* ``"killed"``: in the buffer or the mailbox of a collector that was killed;
* ``"noproc"``, ``"exit"``: cast to a dead collector, or still queued when it
  exited, while the tree was stopping (otherwise such events are *adopted*:
  kept for the partition's next collector, and pending meanwhile);
* ``"overflow"``: dropped by a full bounded mailbox (``max_mailbox`` with
  ``overflow="drop_newest"``);
* ``"no_tree"``: recorded while no tree was running (counted, not partitioned).

``pending`` is what sits in the collectors' buffers and mailboxes, or waits
for a restarting collector, now; after a graceful ``Supervisor.stop`` it is 0.

Past the collectors, ``sinks`` holds each sink's delivery books
(`summarizer.delivery.SinkAccount`): flushes handed to it, delivered, retries,
dead-lettered and queued; ``handed == delivered + dead_lettered + queued``, and
``queued == 0`` after a graceful stop. ``sink_errors`` counts failed writes per
sink, and failed ``on_flush`` calls.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backpressure import Room

if TYPE_CHECKING:
    import pandas as pd

    from .delivery import Deliveries, SinkAccount
    from .otp import Pid

__all__ = ["Accounting", "Ledger", "PartitionAccount"]

log = logging.getLogger("summarizer")


def _count_of(counter: itertools.count[int]) -> int:
    """Return how many times ``next`` was called on a fresh ``itertools.count()``."""
    return int(repr(counter)[6:-1])  # "count(42)": atomic to bump, cheap to read


@dataclass(frozen=True)
class PartitionAccount:
    """The books of one partition."""

    partition: int
    accepted: int
    flushed: int
    pending: int
    lost: dict[str, int]

    @property
    def balanced(self) -> bool:
        """Return whether ``accepted == flushed + lost + pending``."""
        return self.accepted == self.flushed + sum(self.lost.values()) + self.pending


@dataclass(frozen=True)
class Accounting:
    """The books of one tree: per partition, totals, sink errors, and per sink deliveries."""

    partitions: list[PartitionAccount]
    unrouted: dict[str, int] = field(default_factory=dict)
    sink_errors: dict[str, int] = field(default_factory=dict)
    sinks: dict[str, SinkAccount] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        """Return the events ``record_event`` accepted."""
        return sum(p.accepted for p in self.partitions) + sum(self.unrouted.values())

    @property
    def flushed(self) -> int:
        """Return the events that left a collector's buffer."""
        return sum(p.flushed for p in self.partitions)

    @property
    def pending(self) -> int:
        """Return the events still in a collector's buffer or mailbox."""
        return sum(p.pending for p in self.partitions)

    @property
    def lost(self) -> dict[str, int]:
        """Return the events lost, by reason."""
        total: Counter[str] = Counter(self.unrouted)
        for p in self.partitions:
            total.update(p.lost)
        return dict(total)

    @property
    def lost_total(self) -> int:
        """Return the events lost, all reasons together."""
        return sum(self.lost.values())

    @property
    def balanced(self) -> bool:
        """Return whether ``accepted == flushed + lost + pending``."""
        return self.accepted == self.flushed + self.lost_total + self.pending

    def frame(self) -> pd.DataFrame:
        """Return one row per partition: accepted, flushed, pending, lost."""
        import pandas as pd

        rows = [
            {
                "partition": p.partition,
                "accepted": p.accepted,
                "flushed": p.flushed,
                "pending": p.pending,
                "lost": sum(p.lost.values()),
            }
            for p in self.partitions
        ]
        columns = ["partition", "accepted", "flushed", "pending", "lost"]
        frame: pd.DataFrame = pd.DataFrame(rows, columns=columns).set_index("partition")
        return frame


class Ledger:
    """Count one tree's events and deliver its flushes to sinks and ``on_flush``.

    ``accept`` runs on the producers' hot path: one ``next`` on an
    ``itertools.count``, atomic under the GIL. The other counters change rarely
    and take a lock.
    """

    def __init__(
        self,
        partitions: int,
        deliveries: Deliveries | None = None,
        on_flush: Callable[[int, dict[Any, int]], Any] | None = None,
        max_mailbox: int | None = None,
        overflow: str = "block",
    ) -> None:
        self.partitions = partitions
        self.accepted = [itertools.count() for _ in range(partitions)]
        self.flushed = [0] * partitions
        self.lost: list[Counter[str]] = [Counter() for _ in range(partitions)]
        self.unrouted: Counter[str] = Counter()
        self.sink_errors: Counter[str] = Counter()
        self.deliveries = deliveries
        self.on_flush = on_flush
        self.max_mailbox = max_mailbox
        self.overflow = overflow
        self.closed = False  # set when the tree starts stopping: events are refused, counted
        self.orphans: list[Counter[Any]] = [Counter() for _ in range(partitions)]
        self._rooms: dict[Pid, Room] = {}
        self._lock = threading.Lock()

    def open_mailbox(self, pid: Pid) -> Room:
        """Bound a new collector's mailbox to ``max_mailbox`` queued casts."""
        assert self.max_mailbox is not None
        room = Room(pid._proc.mailbox, self.max_mailbox)
        with self._lock:
            self._rooms = {p: r for p, r in self._rooms.items() if p._proc.alive}
            self._rooms[pid] = room
        return room

    def admit(self, partition: int, pid: Pid) -> bool:
        """Let a cast into a bounded mailbox: at once, after a wait, or not (counted)."""
        room = self._rooms.get(pid)
        if room is None or not room.full():
            return True
        if self.overflow == "drop_newest":
            self.lose(partition, "overflow", 1)
            return False
        proc = pid._proc
        room.wait(lambda: proc.alive)  # if it dies, the cast finds it dead and is counted
        return True

    def lose(self, partition: int | None, reason: str, n: int) -> None:
        """Count ``n`` events lost for ``reason``."""
        if n <= 0:
            return
        with self._lock:
            (self.unrouted if partition is None else self.lost[partition])[reason] += n

    def adopt(self, partition: int, user_ids: Iterable[Any], reason: str) -> None:
        """Keep events no collector took (it had died) for ``partition``'s next collector.

        Once the tree is stopping no collector will come: count them lost for ``reason``.
        The check and the adoption hold the lock that `close` takes, so no event is
        adopted after the last collector made its last claim.
        """
        with self._lock:
            if self.closed:
                ids = list(user_ids)
                if ids:
                    self.lost[partition][reason] += len(ids)
            else:
                self.orphans[partition].update(user_ids)

    def close(self) -> None:
        """Refuse new events from now on: the tree is stopping."""
        with self._lock:
            self.closed = True

    def claim(self, partition: int) -> Counter[Any]:
        """Hand ``partition``'s orphaned events (user id -> events) to its collector."""
        if not self.orphans[partition]:  # the usual case, without the lock
            return Counter()
        with self._lock:
            orphans, self.orphans[partition] = self.orphans[partition], Counter()
        return orphans

    def flush(self, partition: int, n: int) -> None:
        """Count ``n`` events that left ``partition``'s buffer."""
        with self._lock:
            self.flushed[partition] += n

    def deliver(self, partition: int, data: Mapping[Any, int]) -> None:
        """Queue one non-empty flush for the sinks; call ``on_flush``; count its failure."""
        if not data:
            return
        if self.deliveries is not None:
            self.deliveries.submit(partition, data)
        if self.on_flush is not None:
            try:
                self.on_flush(partition, dict(data))
            except Exception:
                log.exception("on_flush failed on a flush of partition %d", partition)
                with self._lock:
                    self.sink_errors["on_flush"] += 1

    def snapshot(self, pending: list[int]) -> Accounting:
        """Return the books, given what each partition holds now."""
        with self._lock:
            return Accounting(
                [
                    PartitionAccount(
                        p,
                        _count_of(self.accepted[p]),
                        self.flushed[p],
                        pending[p] + self.orphans[p].total(),
                        dict(self.lost[p]),
                    )
                    for p in range(self.partitions)
                ],
                dict(self.unrouted),
                {**(self.deliveries.errors() if self.deliveries else {}), **self.sink_errors},
                self.deliveries.stats() if self.deliveries else {},
            )
