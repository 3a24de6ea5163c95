"""Benchmarks of the summarizer: throughput, memory and latency, in one run.

::

    python -m benchmarks                       # full sizes, 5 runs each
    python -m benchmarks --size small --runs 1  # CI smoke: a few seconds
    python -m benchmarks --out artifacts/bench  # where results.md and throughput.png go

Each figure is the median of ``--runs`` runs, with their min and max, measured
on this machine in this run: the seed's Run cell, steady-state throughput from
1-64 producer threads into 1-8 partitions, the floor (the same events counted
as dict increments in one thread), the same workload on Pykka, peak RSS while
millions of events pass, and the latency from ``record_event`` to the flush
that delivers it. ``python -m benchmarks.profiling`` profiles the steady state.
"""
