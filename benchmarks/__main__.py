"""Run every benchmark; write results.md and throughput.png; print results.md.

::

    python -m benchmarks [--size small|full] [--runs N] [--out artifacts/bench] [--baseline DIR]

Progress goes to stderr, the Markdown to stdout.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from . import baseline, batching, memory, workloads
from .report import Results, Throughput, plot, render

T = TypeVar("T")


@dataclass(frozen=True)
class Size:
    """How big each benchmark is."""

    seed_events: int
    steady_events: int
    partitions: tuple[int, ...]
    producers: tuple[int, ...]
    pykka_events: int
    pykka_points: tuple[tuple[int, int], ...]
    memory_events: tuple[int, ...]
    memory_bounded_events: int  # with max_mailbox=MAX_MAILBOX
    latency_seconds: float
    latency_load: tuple[tuple[int, float | None], ...]  # (producer threads, events/s or flood)
    runs: int
    ray_events: int = 0  # events per Ray backend run; 0: no Ray section


LATENCY_LOADS = ((0, None), (8, 1_000_000.0), (8, None))
SIZES = {
    "full": Size(
        seed_events=100_000,
        steady_events=1_000_000,
        partitions=(1, 3, 8),
        producers=(1, 2, 8, 64),
        pykka_events=200_000,
        pykka_points=((1, 1), (3, 8)),
        memory_events=(2_000_000, 10_000_000),
        memory_bounded_events=10_000_000,
        latency_seconds=3.0,
        latency_load=LATENCY_LOADS,
        runs=5,
        ray_events=1_000_000,
    ),
    "small": Size(
        seed_events=5_000,
        steady_events=16_000,
        partitions=(1, 3, 8),
        producers=(1, 2, 8, 64),
        pykka_events=4_000,
        pykka_points=((3, 8),),
        memory_events=(200_000, 1_000_000),
        memory_bounded_events=200_000,
        latency_seconds=0.3,
        latency_load=LATENCY_LOADS,
        runs=1,
    ),
}
LATENCY_INTERVAL = 0.1
MAX_MAILBOX = 10_000  # the bounded memory case: producers wait for room


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def repeat(label: str, runs: int, fn: Callable[[], T]) -> list[T]:
    """Run ``fn`` ``runs`` times, collecting garbage before each; report progress."""
    out = []
    for i in range(runs):
        gc.collect()
        out.append(fn())
        say(f"  {label}: run {i + 1}/{runs} -> {out[-1]}")
    return out


def measure(size: Size, runs: int, size_name: str) -> Results:
    """Run every benchmark ``runs`` times."""
    began = time.perf_counter()
    loads = [os.getloadavg()[0]]
    seed_picks = workloads.make_picks(size.seed_events)
    picks = workloads.make_picks(size.steady_events)
    pykka_picks = picks[: size.pykka_events]
    pykka_seed_picks = seed_picks[: min(size.seed_events, size.pykka_events)]

    say("seed Run cell")
    seed = Throughput(
        size.seed_events, repeat("seed", runs, lambda: workloads.seed_run(seed_picks))
    )
    tree_start_stop = repeat("tree start+stop", runs, workloads.tree_start_stop)

    say("floor, steady state, Pykka: each run goes round every case, so load spikes spread")
    cases: dict[Any, Callable[[], tuple[float, int, float]]] = {
        "floor": partial(workloads.floor, picks),
        "nogc": partial(workloads.steady, picks, 3, 8, collect=False),
    }
    for p in size.partitions:
        for t in size.producers:
            cases["steady", p, t] = partial(workloads.steady, picks, p, t)
    for p, t in size.pykka_points:
        cases["pykka", p, t] = partial(workloads.pykka_steady, pykka_picks, p, t)
    cases.update(batching.cases(picks))
    samples: dict[Any, list[tuple[float, int, float]]] = {key: [] for key in cases}
    for i in range(runs):
        for key, fn in cases.items():
            gc.collect()
            samples[key].append(fn())
        loads.append(os.getloadavg()[0])
        say(f"  round {i + 1}/{runs} done, load average {loads[-1]:.2f}")
    done = {
        key: Throughput(runs[0][1], [s for s, _, _ in runs], [c for _, _, c in runs])
        for key, runs in samples.items()
    }
    floor = done.pop("floor")
    steady_nogc = done.pop("nogc")
    steady = {(p, t): f for (kind, p, t), f in done.items() if kind == "steady"}
    pykka = {(p, t): f for (kind, p, t), f in done.items() if kind == "pykka"}
    batched = {key: f for key, f in done.items() if key[0] in ("record_events", "recorder")}
    seed_pykka = Throughput(
        len(pykka_seed_picks),
        repeat("pykka seed", runs, lambda: workloads.pykka_seed_run(pykka_seed_picks)),
    )

    loads.append(os.getloadavg()[0])
    say("memory (fresh interpreter per run)")
    cases_mem: list[tuple[int, int | None]] = [(n, None) for n in size.memory_events]
    cases_mem.append((size.memory_bounded_events, MAX_MAILBOX))
    mem: dict[tuple[int, int | None], list[dict[str, Any]]] = {}
    for n, bound in cases_mem:
        try:
            mem[n, bound] = repeat(
                f"memory {n:,}, max_mailbox={bound}",
                runs,
                partial(memory.run_isolated, n, bound),
            )
        except RuntimeError as e:  # e.g. the tree has no max_mailbox option (any more)
            if bound is None:
                raise
            say(f"  skipped: {e}")

    loads.append(os.getloadavg()[0])
    say("latency")
    latency = {
        (threads, rate): repeat(
            f"latency, load: {threads} threads "
            + (f"at {rate:,.0f} events/s" if rate else "flat out" if threads else ""),
            runs,
            partial(workloads.latency, size.latency_seconds, LATENCY_INTERVAL, 3, threads, rate),
        )
        for threads, rate in size.latency_load
    }

    ray: dict[Any, Any] = {}
    if size.ray_events:
        loads.append(os.getloadavg()[0])
        say("Ray backend against the thread backend")
        if importlib.util.find_spec("ray") is None:  # Ray is an optional extra
            say("  skipped: Ray is not installed; pip install 'summarizer[ray]'")
        else:
            from . import ray_backend

            ray = ray_backend.measure(size.ray_events, min(runs, 3), say)

    loads.append(os.getloadavg()[0])
    return Results(
        size=size_name,
        runs=runs,
        seed=seed,
        seed_pykka=seed_pykka,
        tree_start_stop=tree_start_stop,
        steady=steady,
        steady_nogc=steady_nogc,
        floor=floor,
        pykka=pykka,
        batched=batched,
        ray=ray,
        memory=mem,
        latency_interval=LATENCY_INTERVAL,
        latency_seconds=size.latency_seconds,
        latency=latency,
        wall_seconds=time.perf_counter() - began,
        loads=loads,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (full: 5)")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another checkout to compare, side by side"
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    runs = size.runs if args.runs is None else args.runs
    if runs < 1:
        parser.error(f"--runs must be a positive integer, got: {runs}")

    results = measure(size, runs, args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    text = render(results)
    if args.baseline is not None:
        say(f"against the baseline {args.baseline}")
        comparison = baseline.compare(args.baseline, size.steady_events, runs)
        text += "\n" + "\n".join(baseline.render(comparison))
    (args.out / "results.md").write_text(text)
    plot(results, args.out / "throughput.png")
    print(text)
    say(f"wrote {args.out / 'results.md'} and {args.out / 'throughput.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
