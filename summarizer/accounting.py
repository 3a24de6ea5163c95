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
  exited, while the tree was stopping (otherwise the runtime hands such events
  to the partition's next collector, and they are pending meanwhile);
* ``"overflow"``: dropped by a full bounded mailbox (``max_mailbox`` with
  ``overflow="drop_newest"``);
* ``"closed"``: recorded after the tree began to stop;
* ``"noproc"`` in ``unrouted``: recorded while no tree had ever run.

``accepted`` and ``lost`` are the runtime's counters of the collectors'
mailboxes (`PartitionSupervisor.stats`); ``flushed`` is the tree's `Outlet`.
``pending`` is what sits in the collectors' buffers and mailboxes, or waits
for a restarting collector, now; after a graceful ``Supervisor.stop`` it is 0.

Past the collectors, ``sinks`` holds each sink's delivery books
(`summarizer.delivery.SinkAccount`): flushes handed to it, delivered, retries,
dead-lettered and queued; ``handed == delivered + dead_lettered + queued``, and
``queued == 0`` after a graceful stop. ``sink_errors`` counts failed writes per
sink, and failed ``on_flush`` calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .delivery import SinkAccount
    from .otp import PartitionStats
    from .outlet import Outlet

__all__ = ["Accounting", "PartitionAccount"]


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


def books(stats: PartitionStats, outlet: Outlet, held: list[int]) -> Accounting:
    """Return the books from the runtime's counters, the flushes, and what buffers hold."""
    return Accounting(
        [
            PartitionAccount(p, s.accepted, outlet.flushed[p], held[p] + s.orphaned, s.lost)
            for p, s in enumerate(stats.partitions)
        ],
        stats.unrouted,
        {**outlet.deliveries.errors(), **outlet.sink_errors},
        outlet.deliveries.stats(),
    )
