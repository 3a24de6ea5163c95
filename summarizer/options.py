"""TreeOptions: what SummarizerSupervisor starts its children with, checked once.

The Livebook passes a keyword list down the tree and each child fetches its keys;
here one frozen dataclass travels instead, validated when it is made::

    options = TreeOptions(flush_interval=1.0, partitions=3)
    replace(options, partition=0)  # what collector 0 and flusher 0 get
    TreeOptions(flush_interval=0)
    # ValueError: flush_interval must be a positive number, got: 0

Each sink gets a delivery worker with a queue of ``max_queue`` flushes; failed
writes are retried as ``retry`` says (`RetryPolicy`), and a flush given up, or
still queued ``exit_timeout`` seconds into a graceful stop, is appended to the
JSON Lines file ``dead_letters`` (default: a file in the temp dir named after
the run, created on the first one). A tree still running at interpreter exit
is stopped and flushed within ``exit_timeout``. ``backend="ray"`` keeps each
collector's buffer in a Ray actor (`summarizer.ray_backend`), on Ray started
here (``ray_address=None``) or on the cluster at ``ray_address``.

The options also carry the tree's `Outlet`, the one flush path every child shares. The
two PartitionSupervisors' names are defined here once, as `COLLECTORS` and
`FLUSHERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .delivery import Deliveries, RetryPolicy
from .otp import Mailbox, Overflow, Supervisor
from .otp.partition_supervisor import check_partitions
from .otp.validate import brief, positive_int, positive_number
from .outlet import Outlet
from .sinks import LogSink, Sink

__all__ = ["COLLECTORS", "FLUSHERS", "TreeOptions"]

COLLECTORS = "EventCollectorPartitionSupervisor"
FLUSHERS = "EventFlusherPartitionSupervisor"


@dataclass(frozen=True)
class TreeOptions:
    """The options of one tree run; ``partition`` is set per child."""

    flush_interval: float = 1.0
    partitions: int = None  # type: ignore[assignment]  # None: schedulers_online()
    on_flush: Callable[[int, dict[Any, int]], Any] | None = None
    sinks: tuple[Sink, ...] = None  # type: ignore[assignment]  # None: (LogSink(),)
    max_restarts: int = 3
    max_seconds: float = 5
    max_mailbox: int | None = None
    overflow: Overflow = "block"
    exit_timeout: float = 1.0
    retry: RetryPolicy | None = None
    dead_letters: str | Path | None = None
    max_queue: int = 1000
    backend: Literal["thread", "ray"] = "thread"
    ray_address: str | None = None
    partition: int | None = None
    outlet: Outlet = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("flush_interval", positive_number("flush_interval", self.flush_interval))
        n = check_partitions(self.partitions)
        put("partitions", n)
        if self.on_flush is not None and not callable(self.on_flush):
            raise TypeError(f"on_flush must be callable or None, got: {brief(self.on_flush)}")
        put("sinks", _sinks(self.sinks))
        Mailbox(max_mailbox=self.max_mailbox, overflow=self.overflow)  # checks both
        Supervisor.init([], max_restarts=self.max_restarts, max_seconds=self.max_seconds)
        positive_number("exit_timeout", self.exit_timeout)
        if self.backend not in ("thread", "ray"):
            raise ValueError(f"backend must be 'thread' or 'ray', got: {brief(self.backend)}")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise TypeError(f"ray_address must be a str or None, got: {brief(self.ray_address)}")
        if self.partition is not None and not 0 <= positive_int("partition", self.partition, 0) < n:
            raise ValueError(f"partition must be in 0..{n - 1}, got: {self.partition}")
        outlet: Any = self.outlet  # None but in a copy: replace() keeps the tree's outlet
        if outlet is None:
            deliveries = Deliveries(
                self.sinks,
                retry=self.retry,
                dead_letters=self.dead_letters,
                max_queue=self.max_queue,
                drain_timeout=self.exit_timeout,
            )
            put("outlet", Outlet(n, deliveries, self.on_flush))

    @property
    def part(self) -> int:
        """Return the partition of the child these options were given to."""
        if self.partition is None:
            raise ValueError("partition must be set for a child, got: None")
        return self.partition


def _sinks(sinks: Any) -> tuple[Sink, ...]:
    """Return the sinks as a tuple, LogSink by default; raise unless each can write."""
    if sinks is None:
        return (LogSink(),)
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, Iterable):
        raise TypeError(f"sinks must be a list of sinks or None, got: {brief(sinks)}")
    sinks = tuple(sinks)
    for sink in sinks:
        if not callable(getattr(sink, "write", None)):
            raise TypeError(
                f"sinks must have a write(partition, data, flushed_at), got: {brief(sink)}"
            )
    return sinks  # type: ignore[no-any-return]
