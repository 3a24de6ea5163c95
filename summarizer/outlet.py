"""Outlet: where a tree's flushes go, counted.

Every event that leaves a collector's buffer passes here once: the collector
counts it (`count`) and whoever holds the data, the flusher or the collector's
own last flush, hands it on (`deliver`) to every sink and ``on_flush``::

    outlet = Outlet(3, sinks=[MemorySink()], on_flush=print)
    outlet.count(0, 2)
    outlet.deliver(0, {"1": 2})  # MemorySink gets it, then on_flush prints "0 {'1': 2}"
    outlet.flushed  # [2, 0, 0]

A sink that raises is logged and counted in ``sink_errors``; the other sinks
still get the flush.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sinks import Sink

__all__ = ["Outlet"]

log = logging.getLogger("summarizer")


class Outlet:
    """Count one tree's flushed events and deliver its flushes to sinks and ``on_flush``."""

    def __init__(
        self,
        partitions: int,
        sinks: Iterable[Sink] = (),
        on_flush: Callable[[int, dict[Any, int]], Any] | None = None,
    ) -> None:
        self.flushed = [0] * partitions
        self.sink_errors: Counter[str] = Counter()
        self.sinks = list(sinks)
        self.on_flush = on_flush
        self._lock = threading.Lock()

    def count(self, partition: int, n: int) -> None:
        """Count ``n`` events that left ``partition``'s buffer."""
        with self._lock:
            self.flushed[partition] += n

    def deliver(self, partition: int, data: Mapping[Any, int]) -> None:
        """Hand one non-empty flush to every sink and ``on_flush``; count failures."""
        if not data:
            return
        flushed_at = time.time()
        targets: list[tuple[str, Callable[[], Any]]] = [
            (repr(s), functools.partial(s.write, partition, data, flushed_at)) for s in self.sinks
        ]
        if self.on_flush is not None:
            on_flush = self.on_flush
            targets.append(("on_flush", lambda: on_flush(partition, dict(data))))
        for name, write in targets:
            try:
                write()
            except Exception:
                log.exception("sink %s failed on a flush of partition %d", name, partition)
                with self._lock:
                    self.sink_errors[name] += 1
