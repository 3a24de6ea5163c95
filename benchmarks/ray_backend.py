"""The Ray backend against the thread backend, in the same run.

Producers are Ray tasks (1, 2, 4), each recording its share of the seeded
picks through ``Recorder(batch=1000)`` into a tree with ``backend="ray"``; the
thread backend gets the same shares on as many threads, also through a
``Recorder``. Each task times its own recording loop (wall clock, the same
machine); the figure spans the first start to the last end, plus the drain.
Ray's start (``ray.init``) and the actors' start are timed apart.

Run alone with::

    python -m benchmarks.ray_backend [--events 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from summarizer import Recorder, SummarizerSupervisor
from summarizer.otp import Supervisor

from .report import Throughput
from .workloads import drain, make_picks, run_producers

PRODUCERS = (1, 2, 4)
PARTITIONS = 3
BATCH = 1_000


def _record_share(n: int, seed: int, batch: int) -> tuple[float, float]:
    """Record ``n`` seeded picks through a Recorder; return the loop's (start, end) wall times."""
    picks = make_picks(n, seed)
    start = time.time()
    with Recorder(batch=batch) as rec:
        record = rec.record
        for user in picks:
            record(user)
    return start, time.time()


def start_ray() -> tuple[Any, float]:
    """Start Ray here as the tree would (2 CPUs on this machine); return it and the seconds."""
    import ray

    began = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        log_to_driver=False,
        configure_logging=False,
    )
    return ray, time.perf_counter() - began


def ray_run(ray: Any, events: int, producers: int) -> tuple[float, int, float]:
    """Time ``producers`` Ray tasks recording ``events`` in all, to the drain."""
    share = events // producers
    task = ray.remote(num_cpus=2 / max(2, producers))(_record_share)
    sup = SummarizerSupervisor.start_link(
        flush_interval=3600.0, partitions=PARTITIONS, sinks=[], backend="ray"
    )
    try:
        spans = ray.get([task.remote(share, seed, BATCH) for seed in range(producers)])
        drained = drain(PARTITIONS)
        end = time.time()
    finally:
        Supervisor.stop(sup)
    n = share * producers
    assert drained == n, f"drained {drained} of {n} events"
    return end - min(s for s, _ in spans), n, 0.0


def thread_run(events: int, producers: int) -> tuple[float, int, float]:
    """As `ray_run`, on the thread backend: producer threads with a Recorder each."""
    share = events // producers
    chunks = [make_picks(share, seed) for seed in range(producers)]

    def produce(chunk: Sequence[Any]) -> None:
        with Recorder(batch=BATCH) as rec:
            record = rec.record
            for user in chunk:
                record(user)

    sup = SummarizerSupervisor.start_link(flush_interval=3600.0, partitions=PARTITIONS, sinks=[])
    try:
        start, cpu_start = run_producers(chunks, produce)
        drained = drain(PARTITIONS)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        Supervisor.stop(sup)
    assert drained == share * producers
    return elapsed, share * producers, cpu


def measure(events: int, runs: int, say: Any = print) -> dict[str, Any]:
    """Run both backends ``runs`` times at each producer count; return figures by case."""
    ray, init_seconds = start_ray()
    try:
        began = time.perf_counter()
        sup = SummarizerSupervisor.start_link(partitions=PARTITIONS, sinks=[], backend="ray")
        tree_start = time.perf_counter() - began
        Supervisor.stop(sup)
        samples: dict[Any, list[tuple[float, int, float]]] = {}
        for i in range(runs):
            for p in PRODUCERS:
                samples.setdefault(("ray", p), []).append(ray_run(ray, events, p))
                samples.setdefault(("thread", p), []).append(thread_run(events, p))
            say(f"  ray round {i + 1}/{runs} done")
    finally:
        ray.shutdown()
    figures: dict[str, Any] = {
        key: Throughput(runs_[0][1], [s for s, _, _ in runs_]) for key, runs_ in samples.items()
    }
    figures["ray_init_seconds"] = init_seconds
    figures["tree_start_seconds"] = tree_start
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_backend", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    figures = measure(args.events, args.runs, lambda s: print(s, file=sys.stderr))
    print(f"ray.init: {figures.pop('ray_init_seconds'):.1f} s")
    print(f"tree start with {PARTITIONS} actors: {figures.pop('tree_start_seconds'):.1f} s")
    for (backend, p), f in sorted(figures.items()):
        r = f.rate
        print(
            f"{backend:6} {p} producers: {r.median:>12,.0f} events/s ({r.low:,.0f}-{r.high:,.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
