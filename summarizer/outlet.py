"""Outlet: where a tree's flushes go, counted.

Every event that leaves a collector's buffer passes here once: the collector
counts it (`count`) and whoever holds the data, the flusher or the collector's
own last flush, hands it on (`deliver`): queued for every sink's delivery
worker (`summarizer.delivery`), then given to ``on_flush``::

    outlet = Outlet(3, Deliveries([MemorySink()]), on_flush=print)
    outlet.count(0, 2)
    outlet.deliver(0, {"1": 2})  # queued for MemorySink; on_flush prints "0 {'1': 2}"
    outlet.flushed  # [2, 0, 0]

An ``on_flush`` that raises is logged and counted in ``sink_errors``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from .delivery import Deliveries

__all__ = ["Outlet"]

log = logging.getLogger("summarizer")


class Outlet:
    """Count one tree's flushed events and hand its flushes to the sinks and ``on_flush``."""

    def __init__(
        self,
        partitions: int,
        deliveries: Deliveries,
        on_flush: Callable[[int, dict[Any, int]], Any] | None = None,
    ) -> None:
        self.flushed = [0] * partitions
        self.sink_errors: Counter[str] = Counter()
        self.deliveries = deliveries
        self.on_flush = on_flush
        self._lock = threading.Lock()

    def count(self, partition: int, n: int) -> None:
        """Count ``n`` events that left ``partition``'s buffer."""
        with self._lock:
            self.flushed[partition] += n

    def deliver(self, partition: int, data: Mapping[Any, int]) -> None:
        """Queue one non-empty flush for the sinks; call ``on_flush``; count its failure."""
        if not data:
            return
        self.deliveries.submit(partition, data)
        if self.on_flush is not None:
            try:
                self.on_flush(partition, dict(data))
            except Exception:
                log.exception("on_flush failed on a flush of partition %d", partition)
                with self._lock:
                    self.sink_errors["on_flush"] += 1
