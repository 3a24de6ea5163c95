"""Batched recording on the thread backend: ``record_events`` and ``Recorder`` vs the floor.

Run alone (a few rounds, each going round every case) with::

    python -m benchmarks.batching [--events 1000000] [--runs 5]

`benchmarks.__main__` runs the same cases inside the full report.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from summarizer import EventCollector, Recorder, User

from .workloads import drain, floor, make_picks, run_producers, split, tree

BATCH = 1_000
#: (label, partitions, producer threads) of the batched cases
POINTS = ((3, 1), (3, 8))


def _timed(
    chunks: list[Any], produce: Callable[[Any], None], partitions: int, n: int
) -> tuple[float, int, float]:
    with tree(partitions):
        start, cpu_start = run_producers(chunks, produce)
        drained = drain(partitions)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    assert drained == n, f"drained {drained} of {n} events"
    return elapsed, n, cpu


def record_events(
    picks: Sequence[User], partitions: int, threads: int, batch: int = BATCH
) -> tuple[float, int, float]:
    """Time ``threads`` producers calling ``record_events`` on ``batch``-event lists."""
    chunks = [
        [c[i : i + batch] for i in range(0, len(c), batch)] for c in split(picks, threads)
    ]  # cut before the barrier, as the picks are made before it
    n = sum(len(b) for c in chunks for b in c)

    def produce(batches: list[list[User]]) -> None:
        send = EventCollector.record_events
        for b in batches:
            send(b)

    return _timed(chunks, produce, partitions, n)


def recorder(
    picks: Sequence[User], partitions: int, threads: int, batch: int = BATCH
) -> tuple[float, int, float]:
    """Time ``threads`` producers calling ``Recorder(batch).record`` per event."""
    chunks = split(picks, threads)
    n = sum(len(c) for c in chunks)

    def produce(chunk: list[User]) -> None:
        with Recorder(batch=batch) as rec:
            record = rec.record
            for user in chunk:
                record(user)

    return _timed(chunks, produce, partitions, n)


def cases(picks: Sequence[User]) -> dict[Any, Callable[[], tuple[float, int, float]]]:
    """Return the batched cases, keyed ``(kind, partitions, threads)``."""
    out: dict[Any, Callable[[], tuple[float, int, float]]] = {}
    for p, t in POINTS:
        out["record_events", p, t] = partial(record_events, picks, p, t)
        out["recorder", p, t] = partial(recorder, picks, p, t)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batching", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    picks = make_picks(args.events)
    todo = {"floor": partial(floor, picks), **cases(picks)}
    rates: dict[Any, list[float]] = {key: [] for key in todo}
    for i in range(args.runs):
        for key, fn in todo.items():
            gc.collect()
            seconds, n, _ = fn()
            rates[key].append(n / seconds)
        print(f"round {i + 1}/{args.runs} done", file=sys.stderr, flush=True)
    base = statistics.median(rates["floor"])
    for key, values in rates.items():
        rate = statistics.median(values)
        print(f"{key!s:40} {rate:>14,.0f} events/s  {base / rate:5.2f}x the floor's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
