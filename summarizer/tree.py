"""SummarizerSupervisor: the seed's tree, collectors and flushers, one_for_one.

::

    sup = SummarizerSupervisor.start_link(flush_interval=1.0, partitions=3)
    EventCollector.record_event(User("1", "MegaCorp", "enterprise"))
    Supervisor.which_children(sup)
    # [('EventFlusherPartitionSupervisor', #PID<0.20.0>, 'supervisor', ['PartitionSupervisor']),
    #  ('EventCollectorPartitionSupervisor', #PID<0.16.0>, 'supervisor', ['PartitionSupervisor']),
    #  ('DeliverySupervisor', #PID<0.14.0>, 'supervisor', ['DeliverySupervisor'])]
    Supervisor.stop(sup)  # flushes every collector before it returns

The tree::

    SummarizerSupervisor (one_for_one)
    ├── DeliverySupervisor ───────────────── SinkDelivery, one per sink
    ├── EventCollectorPartitionSupervisor ── EventCollector 0..n-1
    └── EventFlusherPartitionSupervisor ──── EventFlusher 0..n-1

one_for_one because the two halves do not depend on each other's state: a
crashed flusher loses nothing (the collector keeps buffering), and a crashed
collector leaves the flushers polling until it is back. Stopping runs in
reverse: the flushers do a last flush, then the collectors flush what came
after it, and last the delivery workers (`summarizer.delivery`) write what is
queued for the sinks, so a graceful stop reaches the sinks with everything
(or, for a sink that is down, the dead-letter file).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import collector
from .accounting import Accounting, Ledger
from .collector import EventCollector
from .delivery import Deliveries, RetryPolicy
from .flusher import EventFlusher
from .otp import (
    AlreadyStarted,
    NoProcess,
    OtpError,
    PartitionSupervisor,
    Pid,
    Process,
    Supervisor,
    schedulers_online,
)
from .otp.child_spec import validate_name
from .otp.partition_supervisor import MAX_PARTITIONS
from .otp.supervisor import SupervisorFlags
from .otp.validate import brief, positive_int, positive_number
from .sinks import LogSink, Sink

__all__ = ["SummarizerSupervisor"]

FLUSHERS = "EventFlusherPartitionSupervisor"


_at_exit: dict[str, float] = {}  # trees to stop at interpreter exit, with their bound


@atexit.register
def _stop_at_exit() -> None:
    """Stop and flush the trees still running, each within its bound; never hang."""
    for name, timeout in list(_at_exit.items()):
        if Process.alive(name):
            try:
                Supervisor.stop(name, "shutdown", timeout)
            except OtpError as e:
                logging.getLogger("summarizer").error("%s did not stop at exit: %s", name, e)
                deliveries = collector.ledger().deliveries
                if deliveries is not None:  # the interpreter ends now: file what is queued
                    deliveries.abandon()


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
        *,
        max_restarts: int = 3,
        max_seconds: float = 5,
        max_mailbox: int | None = None,
        overflow: str = "block",
        exit_timeout: float = 1.0,
        retry: RetryPolicy | None = None,
        dead_letters: str | Path | None = None,
        max_queue: int = 1000,
    ) -> Pid:
        """Start the tree and return its Pid; times are in seconds.

        ``max_restarts``/``max_seconds`` set the intensity of both
        PartitionSupervisors (OTP's defaults). ``max_mailbox`` bounds each
        collector's queued casts: with ``overflow="block"`` producers wait, with
        ``"drop_newest"`` the event is dropped and counted; None (default) is
        unbounded, as OTP. At interpreter exit a tree still running is stopped
        and flushed within ``exit_timeout`` seconds.

        Each sink gets a delivery worker with a queue of ``max_queue`` flushes;
        failed writes are retried as ``retry`` says (`RetryPolicy`), and a flush
        given up, or still queued ``exit_timeout`` seconds into a graceful stop,
        is appended to the JSON Lines file ``dead_letters`` (default: a file
        in the temp dir named after the run, created on the first one).
        """
        positive_number("flush_interval", flush_interval)
        partitions = positive_int(
            "partitions", schedulers_online() if partitions is None else partitions
        )
        if partitions > MAX_PARTITIONS:
            raise ValueError(
                f"partitions must be an integer <= {MAX_PARTITIONS}, got: {partitions}"
            )
        if on_flush is not None and not callable(on_flush):
            raise TypeError(f"on_flush must be callable or None, got: {brief(on_flush)}")
        if sinks is not None and not isinstance(sinks, Iterable):
            raise TypeError(f"sinks must be a list of sinks or None, got: {brief(sinks)}")
        sinks = [LogSink()] if sinks is None else list(sinks)
        for sink in sinks:
            if not callable(getattr(sink, "write", None)):
                raise TypeError(
                    f"sinks must have a write(partition, data, flushed_at), got: {brief(sink)}"
                )
        if max_mailbox is not None:
            positive_int("max_mailbox", max_mailbox)
        if overflow not in ("block", "drop_newest"):
            raise ValueError(f"overflow must be 'block' or 'drop_newest', got: {brief(overflow)}")
        positive_number("exit_timeout", exit_timeout)
        flags = Supervisor.init([], max_restarts=max_restarts, max_seconds=max_seconds)
        deliveries = Deliveries(
            sinks,
            retry=retry,
            dead_letters=dead_letters,
            max_queue=max_queue,
            drain_timeout=exit_timeout,
        )
        ledger = Ledger(partitions, deliveries, on_flush, max_mailbox, overflow)
        options = {
            "flush_interval": float(flush_interval),
            "ledger": ledger,
            "partitions": partitions,
            "max_restarts": flags.max_restarts,
            "max_seconds": flags.max_seconds,
        }
        validate_name(name)
        for taken in (collector.NAME, FLUSHERS):  # before init installs our ledger
            other = Process.whereis(taken)
            if other is not None:
                raise AlreadyStarted(taken, other)
        pid = Supervisor.start_link(cls, options, name=name)
        _at_exit[name] = exit_timeout
        return pid

    def init(self, options: dict[str, Any]) -> SupervisorFlags:  # type: ignore[override]
        self.ledger: Ledger = options["ledger"]
        self.ledger.closed = False
        collector._Books.ledger = options["ledger"]
        n = options["partitions"]
        assert self.ledger.deliveries is not None
        children: list[Any] = [
            self.ledger.deliveries.child_spec(),  # started first, so stopped last
            (
                PartitionSupervisor,
                {
                    "child_spec": EventCollector.child_spec(options),
                    "name": collector.NAME,
                    "partitions": n,
                    "with_arguments": _with_partition,
                    "max_restarts": options["max_restarts"],
                    "max_seconds": options["max_seconds"],
                },
            ),
            (
                PartitionSupervisor,
                {
                    "child_spec": EventFlusher.child_spec(options),
                    "name": FLUSHERS,
                    "partitions": n,
                    "with_arguments": _with_partition,
                    "max_restarts": options["max_restarts"],
                    "max_seconds": options["max_seconds"],
                },
            ),
        ]
        return Supervisor.init(children, strategy="one_for_one")

    def prep_stop(self, reason: Any) -> None:
        """Close the intake before anything stops: later events are refused and counted.

        Without it, producers keep filling the mailboxes while the flushers and
        collectors drain them, and a stop under full load chases the backlog.
        """
        self.ledger.close()
        if self.ledger.deliveries is not None:  # the sinks get exit_timeout from now
            self.ledger.deliveries.begin_stop()

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
    def dead_letters() -> Path | None:
        """Return the dead-letter file of the running (or last) tree; it may not exist yet."""
        deliveries = collector.ledger().deliveries
        return None if deliveries is None else deliveries.dead_letters.path

    @staticmethod
    def running(name: str = "SummarizerSupervisor") -> bool:
        """Return whether a tree runs under ``name``."""
        return Process.alive(name)
