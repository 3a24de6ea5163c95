"""SummarizerSupervisor: the seed's tree, collectors and flushers, one_for_one.

::

    sup = SummarizerSupervisor.start_link(flush_interval=1.0, partitions=3)
    EventCollector.record_event(User("1", "MegaCorp", "enterprise"))
    Supervisor.which_children(sup)
    # [('EventFlusherPartitionSupervisor', #PID<0.20.0>, 'supervisor', ['PartitionSupervisor']),
    #  ('EventCollectorPartitionSupervisor', #PID<0.16.0>, 'supervisor', ['PartitionSupervisor'])]
    Supervisor.stop(sup)  # flushes every collector before it returns

The tree::

    SummarizerSupervisor (one_for_one)
    ├── EventCollectorPartitionSupervisor ── EventCollector 0..n-1
    └── EventFlusherPartitionSupervisor ──── EventFlusher 0..n-1

one_for_one because the two halves do not depend on each other's state: a
crashed flusher loses nothing (the collector keeps buffering), and a crashed
collector leaves the flushers polling until it is back. Stopping runs in
reverse: the flushers do a last flush, then the collectors flush what came
after it, so a graceful stop reaches the sinks with everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import collector
from .accounting import Accounting, Ledger
from .collector import EventCollector
from .flusher import EventFlusher
from .otp import (
    NoProcess,
    PartitionSupervisor,
    Pid,
    Supervisor,
    schedulers_online,
)
from .otp.supervisor import SupervisorFlags
from .sinks import LogSink, Sink

__all__ = ["SummarizerSupervisor"]

FLUSHERS = "EventFlusherPartitionSupervisor"


def _with_partition(args: list[Any], partition: int) -> list[Any]:
    """Put the partition into the child's options, as the seed's ``with_arguments``."""
    [options] = args
    return [{**options, "partition": partition}]


class SummarizerSupervisor(Supervisor):
    """Supervise the collectors and the flushers, each under a PartitionSupervisor."""

    @classmethod
    def start_link(  # type: ignore[override]
        cls,
        flush_interval: float = 1.0,
        partitions: int | None = None,
        on_flush: Callable[[int, dict[Any, int]], Any] | None = None,
        sinks: Iterable[Sink] | None = None,
        name: str = "SummarizerSupervisor",
    ) -> Pid:
        """Start the tree and return its Pid; times are in seconds."""
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, (int, float))
            or not 0 < flush_interval < float("inf")
        ):
            raise ValueError(f"flush_interval must be a positive number, got: {flush_interval!r}")
        if partitions is None:
            partitions = schedulers_online()
        if isinstance(partitions, bool) or not isinstance(partitions, int):
            raise TypeError(f"partitions must be a positive integer, got: {partitions!r}")
        if partitions < 1:
            raise ValueError(f"partitions must be a positive integer, got: {partitions!r}")
        if on_flush is not None and not callable(on_flush):
            raise TypeError(f"on_flush must be callable or None, got: {on_flush!r}")
        sinks = [LogSink()] if sinks is None else list(sinks)
        for sink in sinks:
            if not callable(getattr(sink, "write", None)):
                raise TypeError(
                    f"sinks must have a write(partition, data, flushed_at), got: {sink!r}"
                )
        ledger = Ledger(partitions, sinks, on_flush)
        options = {
            "flush_interval": float(flush_interval),
            "ledger": ledger,
            "partitions": partitions,
        }
        pid = Supervisor.start_link(cls, options, name=name)
        return pid

    def init(self, options: dict[str, Any]) -> SupervisorFlags:  # type: ignore[override]
        collector._Books.ledger = options["ledger"]
        n = options["partitions"]
        children = [
            (
                PartitionSupervisor,
                {
                    "child_spec": EventCollector.child_spec(options),
                    "name": collector.NAME,
                    "partitions": n,
                    "with_arguments": _with_partition,
                },
            ),
            (
                PartitionSupervisor,
                {
                    "child_spec": EventFlusher.child_spec(options),
                    "name": FLUSHERS,
                    "partitions": n,
                    "with_arguments": _with_partition,
                },
            ),
        ]
        return Supervisor.init(children, strategy="one_for_one")

    @staticmethod
    def accounting(timeout: float | None = 5.0) -> Accounting:
        """Return the books of the running (or last) tree: accepted, flushed, lost, pending."""
        ledger: Ledger = collector.ledger()
        pending = []
        for p in range(ledger.partitions):
            try:
                pending.append(EventCollector.pending(p, timeout))
            except NoProcess:
                pending.append(0)
        return ledger.snapshot(pending)

    @staticmethod
    def running(name: str = "SummarizerSupervisor") -> bool:
        """Return whether a tree runs under ``name``."""
        from .otp import Process

        return Process.alive(name)
