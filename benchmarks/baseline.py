"""Measure the steady state against another checkout, side by side, in one run.

::

    python -m benchmarks --baseline ../summarizer-main   # adds a "Against a baseline" table

Each run is a fresh interpreter whose working directory is the checkout, so it
imports that checkout's ``summarizer`` and ``benchmarks``; runs of this tree and
of the baseline alternate, so a load spike on the shared machine hits both.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, summarizer
from benchmarks import workloads
picks = workloads.make_picks({events})
seconds, n, _cpu = workloads.steady(picks, {partitions}, {producers})
print(json.dumps({{"rate": n / seconds, "package": summarizer.__file__}}))
"""


@dataclass(frozen=True)
class Comparison:
    """Steady-state rates (events/s) of this tree and a baseline checkout, run by run."""

    baseline: str
    partitions: int
    producers: int
    ours: list[float]
    theirs: list[float]

    @property
    def ratio(self) -> float:
        """Return our median rate over the baseline's."""
        return statistics.median(self.ours) / statistics.median(self.theirs)


def rate(checkout: Path, events: int, partitions: int, producers: int) -> float:
    """Return the steady-state events/s of ``checkout``, measured in a fresh interpreter."""
    code = SCRIPT.format(events=events, partitions=partitions, producers=producers)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["package"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout} ran the package at {result['package']}")
    return float(result["rate"])


def compare(
    baseline: Path, events: int, runs: int, partitions: int = 3, producers: int = 8
) -> Comparison:
    """Alternate runs of this tree and ``baseline``; return both series."""
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(rate(ROOT, events, partitions, producers))
        theirs.append(rate(baseline, events, partitions, producers))
        print(f"  baseline round: ours {ours[-1]:,.0f}, theirs {theirs[-1]:,.0f}", file=sys.stderr)
    return Comparison(str(baseline), partitions, producers, ours, theirs)


def render(c: Comparison) -> list[str]:
    """Return the Markdown lines of the comparison."""
    return [
        "## Against a baseline checkout",
        "",
        f"Steady state, {c.partitions} partitions, {c.producers} producers, fresh interpreter "
        f"per run, runs alternating. Baseline: `{c.baseline}`.",
        "",
        "| | median events/s | runs |",
        "| --- | ---: | --- |",
        f"| this tree | {statistics.median(c.ours):,.0f} | "
        + ", ".join(f"{r:,.0f}" for r in c.ours)
        + " |",
        f"| baseline | {statistics.median(c.theirs):,.0f} | "
        + ", ".join(f"{r:,.0f}" for r in c.theirs)
        + " |",
        f"| ratio | {c.ratio:.2f}x | |",
        "",
    ]
