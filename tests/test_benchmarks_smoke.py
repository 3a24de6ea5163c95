"""Smoke test of the benchmark runner: it runs, writes its files, and reports every section.

No timing is asserted here; the figures depend on the machine. See ``python -m benchmarks``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "Targets",
    "Seed Run cell",
    "Steady state",
    "Floor",
    "Pykka peer",
    "Batching",
    "Memory",
    "Latency",
)


def test_small_run_writes_results_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--size", "small", "--runs", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = out / "results.md"
    plot = out / "throughput.png"
    assert results.is_file()
    assert plot.is_file()
    assert plot.read_bytes().startswith(b"\x89PNG")
    text = results.read_text()
    for section in SECTIONS:
        assert f"\n## {section}\n" in text, f"results.md lacks the section {section!r}"
    assert "BEAM context" in text
    assert "model name" not in text  # the CPU model, not the raw /proc/cpuinfo line
    for target in ("PASS", "MISS"):
        if target in text:
            break
    else:
        raise AssertionError("results.md has no PASS/MISS verdicts")
    assert text.strip() in done.stdout  # the table is printed too
