"""SummarizerSupervisor: the Livebook's tree, collectors and flushers, one_for_one.

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
reverse: the intake closes, the flushers do a last flush, the collectors flush
what came after it, and last the delivery workers (`summarizer.delivery`)
write what is queued for the sinks, so a graceful stop reaches the sinks with
everything (or, for a sink that is down, the dead-letter file). At interpreter
exit a tree still running is stopped and flushed within its ``exit_timeout``.

``backend="ray"`` keeps the tree and moves each collector's buffer into a Ray
actor behind a proxy in the collector's place (`summarizer.ray_backend`);
``prep_stop`` first sends what producers' `Recorder` objects hold.
"""

from __future__ import annotations

import atexit
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from .accounting import Accounting, books
from .collector import Buffer
from .flusher import EventFlusher
from .options import COLLECTORS, FLUSHERS, TreeOptions
from .otp import (
    AlreadyStarted,
    CallTimeout,
    ChildSpec,
    ExitError,
    GenServer,
    OtpError,
    PartitionStats,
    PartitionSupervisor,
    Pid,
    Process,
    Supervisor,
    SupervisorFlags,
)
from .otp.child_spec import validate_name
from .ray_backend import collector_spec, look, prepare
from .recorder import flush_all, fold_into

__all__ = ["SummarizerSupervisor", "stop_at_exit"]

log = logging.getLogger("summarizer")


class SummarizerSupervisor(Supervisor):
    """Supervise the collectors and the flushers, each under a PartitionSupervisor."""

    @classmethod
    def start_link(  # type: ignore[override]
        cls, *args: Any, name: str = "SummarizerSupervisor", **kwargs: Any
    ) -> Pid:
        """Start the tree and return its Pid; the options are `TreeOptions`' (seconds)."""
        options = prepare(TreeOptions(*args, **kwargs))  # checked here; Ray joined for "ray"
        validate_name(name)
        for taken in (COLLECTORS, FLUSHERS):  # a second tree would take these names
            if (other := Process.whereis(taken)) is not None:
                raise AlreadyStarted(taken, other)
        pid = Supervisor.start_link(cls, options, name=name)
        _remember(name, options)
        return pid

    def init(self, options: TreeOptions) -> SupervisorFlags:  # type: ignore[override]
        self.options = options
        children = [
            options.outlet.deliveries.child_spec(),  # started first, so stopped last
            partitioned(collector_spec(options), COLLECTORS, options),  # threads or Ray
            partitioned(EventFlusher.child_spec(options), FLUSHERS, options),
        ]
        return Supervisor.init(children, strategy="one_for_one")

    def prep_stop(self, reason: Any) -> None:
        """Close the intake before anything stops: later events are refused, counted."""
        flush_all()  # what producers' recorders hold goes in first
        PartitionSupervisor.close(COLLECTORS)
        self.options.outlet.deliveries.begin_stop()  # the sinks get exit_timeout from now

    @staticmethod
    def accounting(timeout: float | None = 5.0) -> Accounting:
        """Return the books of the running (or last) tree: accepted, flushed, lost, pending."""
        stats, held = _read(_last(), timeout)
        return fold_into(books(stats, _last().outlet, held))

    @staticmethod
    def dead_letters() -> Path:
        """Return the dead-letter file of the running (or last) tree; it may not exist yet."""
        return _last().outlet.deliveries.dead_letters.path

    @staticmethod
    def running(name: str = "SummarizerSupervisor") -> bool:
        """Return whether a tree runs under ``name``."""
        return Process.alive(name)


def partitioned(child_spec: ChildSpec, name: str, options: TreeOptions) -> tuple[Any, ...]:
    """Return a PartitionSupervisor of ``child_spec``, each child given its partition."""
    return (
        PartitionSupervisor,
        {
            "child_spec": child_spec,
            "name": name,
            "partitions": options.partitions,
            "with_arguments": lambda args, p: [replace(args[0], partition=p)],
            "max_restarts": options.max_restarts,
            "max_seconds": options.max_seconds,
        },
    )


def _read(options: TreeOptions, timeout: float | None) -> tuple[PartitionStats, list[int]]:
    """Return the collectors' counters, then what each holds (Ray's proxies look first)."""
    if options.backend == "ray":
        look(timeout)  # the actors' counts of remote producers' events enter the books
    stats = PartitionSupervisor.stats(COLLECTORS)
    return stats, [_held(p, timeout) for p in range(len(stats.partitions))]


def _held(partition: int, timeout: float | None) -> int:
    """Return the events collector ``partition`` holds once its mailbox is read; 0 if down."""
    pid = PartitionSupervisor.route(COLLECTORS, partition)
    try:
        buffer: Buffer = GenServer.get_state(pid, timeout) if pid is not None else Buffer()
    except CallTimeout:  # busy past the bound: the books cannot be read now
        raise
    except ExitError:  # down, or killed meanwhile: what it held is counted lost
        return 0
    return buffer.count


_running: dict[str, TreeOptions] = {}  # trees started, newest last: stopped at exit


def _remember(name: str, options: TreeOptions) -> None:
    """Keep ``options`` as the newest tree's; forget the trees that ended."""
    for other in [n for n in _running if not Process.alive(n)]:
        del _running[other]
    _running[name] = options


def _last() -> TreeOptions:
    """Return the options of the tree started last (a tree of none if none was)."""
    return next(reversed(_running.values()), None) or TreeOptions(partitions=1, sinks=())


@atexit.register
def stop_at_exit() -> None:
    """Stop and flush the trees still running, each within its bound; never hang.

    Registered at import, and again by the Ray backend once Ray is up, so that it
    runs before Ray's own exit hook shuts Ray down.
    """
    for name, options in list(_running.items()):
        if Process.alive(name):
            try:
                Supervisor.stop(name, "shutdown", options.exit_timeout)
            except OtpError as e:
                log.error("%s did not stop at exit: %s", name, e)
                options.outlet.deliveries.abandon()  # the interpreter ends: file what is queued
