"""Peak RSS while events pass through the tree, measured in a fresh interpreter.

Each measurement runs in its own process (``python -m benchmarks.memory EVENTS
[MAX_MAILBOX]``),
so what earlier benchmarks left on the heap does not count. A thread samples the
RSS (psutil) and the collectors' mailbox backlog every 20 ms while 8 producers
record ``EVENTS`` events into 3 partitions flushed every 0.1 s. The events come
from one block of 100,000 picks sent over and over, so the input's size is the
same for every event count and any growth is the tree's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from summarizer import COLLECTORS, EventCollector
from summarizer.otp import PartitionSupervisor

from .workloads import make_picks, run_producers, tree

BLOCK = 100_000
SAMPLE_EVERY = 0.02
ROOT = Path(__file__).resolve().parent.parent


def backlog() -> int:
    """Return how many messages wait in the collectors' mailboxes now."""
    return sum(p.queued for p in PartitionSupervisor.stats(COLLECTORS).partitions)


class Sampler:
    """Sample RSS and backlog on a thread every ``SAMPLE_EVERY`` seconds."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak_rss = 0
        self.peak_backlog = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss-sampler", daemon=True)

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def __enter__(self) -> Sampler:
        self.peak_rss = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.peak_rss = max(self.peak_rss, self.rss())
        self.peak_backlog = max(self.peak_backlog, backlog())

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()


def measure(
    events: int,
    max_mailbox: int | None = None,
    producers: int = 8,
    partitions: int = 3,
    flush_interval: float = 0.1,
) -> dict[str, Any]:
    """Send ``events`` events through the tree; return RSS, backlog and timing figures.

    ``max_mailbox`` bounds each collector's mailbox (producers wait for room).
    """
    bound = {} if max_mailbox is None else {"max_mailbox": max_mailbox, "overflow": "block"}
    block = make_picks(BLOCK)
    per = events // producers
    flushed = [0]
    lock = threading.Lock()

    def on_flush(_partition: int, data: dict[Any, int]) -> None:
        with lock:
            flushed[0] += sum(data.values())

    def produce(_chunk: list[Any]) -> None:
        record = EventCollector.record_event
        whole, rest = divmod(per, len(block))
        for _ in range(whole):
            for user in block:
                record(user)
        for user in block[:rest]:
            record(user)

    with tree(partitions, flush_interval, on_flush=on_flush, **bound), Sampler() as sampler:
        rss_start = sampler.rss()
        start, _cpu = run_producers([[]] * producers, produce)
        produced = time.perf_counter()
        sent_backlog = backlog()
        # stopping the tree flushes whatever is left
    elapsed = time.perf_counter() - start
    rss_end = sampler.rss()
    assert flushed[0] == per * producers, f"flushed {flushed[0]} of {per * producers} events"
    return {
        "events": per * producers,
        "max_mailbox": max_mailbox,
        "rss_start": rss_start,
        "rss_peak": sampler.peak_rss,
        "rss_end": rss_end,
        "peak_backlog": sampler.peak_backlog,
        "backlog_at_end_of_sending": sent_backlog,
        "send_seconds": produced - start,
        "seconds": elapsed,
    }


def run_isolated(
    events: int, max_mailbox: int | None = None, timeout: float = 600.0
) -> dict[str, Any]:
    """Run `measure` in a fresh interpreter; return its figures."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", str(events), str(max_mailbox or 0)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory benchmark for {events} events failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    """Print `measure`'s figures as one JSON line; ``argv``: EVENTS [MAX_MAILBOX, 0: none]."""
    events, max_mailbox = int(argv[0]), int(argv[1]) if len(argv) > 1 else 0
    print(json.dumps(measure(events, max_mailbox or None)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
