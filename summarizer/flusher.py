"""EventFlusher: every ``flush_interval`` seconds, flush one collector's buffer.

One flusher runs per partition; flusher ``i`` calls ``flush_events(i)``, which
an int key routes straight to collector ``i``::

    EventFlusher.start_link(TreeOptions(flush_interval=1.0, partitions=3, partition=0))

``init`` returns with a continue that arms the first tick with
``Process.send_after``, so a restarted flusher re-arms its own timer. Each tick
flushes the collector, hands non-empty data to the tree's `Outlet` (the sinks
and ``on_flush``), and re-arms. If the collector is down at tick time the
flusher logs it and tries again at the next tick. On a graceful shutdown it
does one last flush.
"""

from __future__ import annotations

import logging
from typing import Any

from .collector import EventCollector
from .options import TreeOptions
from .otp import ExitError, GenServer, NoReply, Ok, Process
from .otp.validate import brief

__all__ = ["EventFlusher"]

log = logging.getLogger("summarizer")


class EventFlusher(GenServer):
    """Flush one partition's collector at a regular interval."""

    def init(self, options: TreeOptions) -> Ok:
        if not isinstance(options, TreeOptions) or options.partition is None:
            raise TypeError(f"options must be TreeOptions with a partition, got: {brief(options)}")
        Process.flag("trap_exit", True)  # so that terminate does a last flush
        return Ok(options, continue_="schedule_next_run")

    def handle_continue(self, term: Any, state: TreeOptions) -> NoReply:
        Process.send_after(Process.self(), "perform_cron_work", state.flush_interval)
        return NoReply(state)

    def handle_info(self, msg: Any, state: TreeOptions) -> NoReply:
        if msg != "perform_cron_work":
            return super().handle_info(msg, state)  # type: ignore[return-value]
        self.flush(state)
        return NoReply(state, continue_="schedule_next_run")

    def terminate(self, reason: Any, state: TreeOptions) -> None:
        self.flush(state)

    @staticmethod
    def flush(state: TreeOptions) -> None:
        """Flush the partition's collector and deliver what it held."""
        try:
            buffered_events = EventCollector.flush_events(state.part)
        except ExitError as e:
            log.warning("EventFlusher:%r - collector unavailable: %s", Process.self(), e)
            return
        if buffered_events:
            state.outlet.deliver(state.part, buffered_events)
