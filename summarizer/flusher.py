"""EventFlusher: every ``flush_interval`` seconds, flush one collector's buffer.

One flusher runs per partition; flusher ``i`` calls ``flush_events(i)``, which
an int key routes straight to collector ``i``::

    EventFlusher.start_link({"flush_interval": 1.0, "partition": 0, "ledger": ledger})

``init`` returns with a continue that arms the first tick with
``Process.send_after``, so a restarted flusher re-arms its own timer. Each tick
flushes the collector, delivers non-empty data to the sinks and ``on_flush``,
and re-arms. If the collector is down at tick time the flusher logs it and
tries again at the next tick. On a graceful shutdown it does one last flush.
"""

from __future__ import annotations

import logging
from typing import Any

from .accounting import Ledger
from .collector import EventCollector
from .otp import ExitError, GenServer, NoReply, Ok, Process
from .otp.validate import brief

__all__ = ["EventFlusher"]

log = logging.getLogger("summarizer")


def _option(options: Any, key: str) -> Any:
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got: {brief(options)}")
    if key not in options:
        raise KeyError(f"EventFlusher needs the option {key!r}; got only {sorted(options)}")
    return options[key]


class EventFlusher(GenServer):
    """Flush one partition's collector at a regular interval."""

    def init(self, options: dict[str, Any]) -> Ok:
        interval = _option(options, "flush_interval")
        partition = _option(options, "partition")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(f"flush_interval must be a positive number, got: {brief(interval)}")
        Process.flag("trap_exit", True)
        self.ledger: Ledger | None = options.get("ledger")
        state = {"flush_interval": float(interval), "partition": partition}
        return Ok(state, continue_="schedule_next_run")

    def handle_continue(self, term: Any, state: dict[str, Any]) -> NoReply:
        Process.send_after(Process.self(), "perform_cron_work", state["flush_interval"])
        return NoReply(state)

    def handle_info(self, msg: Any, state: dict[str, Any]) -> NoReply:
        if msg == "perform_cron_work":
            self.flush(state["partition"])
            return NoReply(state, continue_="schedule_next_run")
        return super().handle_info(msg, state)  # type: ignore[return-value]

    def terminate(self, reason: Any, state: dict[str, Any]) -> None:
        self.flush(state["partition"])

    def flush(self, partition: int) -> None:
        """Flush ``partition``'s collector and deliver what it held."""
        try:
            buffered_events = EventCollector.flush_events(partition)
        except ExitError as e:
            log.warning(
                "EventFlusher:%r - collector %d unavailable: %s", Process.self(), partition, e
            )
            return
        if buffered_events and self.ledger is not None:
            self.ledger.deliver(partition, buffered_events)
