"""Turn measured runs into results.md (Markdown tables) and throughput.png."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

BEAM_CONTEXT = (
    "> **BEAM context** (measured earlier on this machine with Elixir 1.14 / OTP 25, "
    "quoted for context, not measured by this run): the Livebook's Run cell "
    "(100,000 events, `Task.async_stream(max_concurrency: 2000)`, 3 partitions) takes "
    "4.1-5.3 s (about 20,000 events/s); 1,000,000 events cast from 8 processes into "
    "3 partitions take 9.1 s (110,000 events/s)."
)
BEAM_STEADY_EPS = 110_000

MB = 1 << 20


@dataclass
class Spread:
    """The median, min and max of one figure over its runs."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass
class Throughput:
    """Runs of one throughput figure: seconds per run for ``events`` events."""

    events: int
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per run, if known

    @property
    def time(self) -> Spread:
        return Spread.of(self.seconds)

    @property
    def rate(self) -> Spread:
        return Spread.of([self.events / s for s in self.seconds])

    @property
    def cpu_rate(self) -> Spread | None:
        """Events per CPU second of the whole process: what another load cannot take."""
        return Spread.of([self.events / c for c in self.cpu if c > 0]) if self.cpu else None


@dataclass
class Results:
    """Everything one benchmark run measured, plus how it was run."""

    size: str
    runs: int
    seed: Throughput
    seed_pykka: Throughput
    tree_start_stop: list[float]
    steady: dict[tuple[int, int], Throughput]
    steady_nogc: Throughput  # 3 partitions, 8 producers, cyclic GC off: a diagnostic
    floor: Throughput
    pykka: dict[tuple[int, int], Throughput]
    # ("record_events" | "recorder", partitions, producers) -> batches of 1,000
    batched: dict[tuple[str, int, int], Throughput]
    # ("ray" | "thread", producers) -> Throughput, plus "ray_init_seconds", "tree_start_seconds"
    ray: dict[Any, Any]
    memory: dict[tuple[int, int | None], list[dict[str, Any]]]  # (events, max_mailbox)
    latency_interval: float
    latency_seconds: float
    # (load threads, load events/s or None: flat out) -> (p50, p99, probes, load eps) per run
    latency: dict[tuple[int, float | None], list[tuple[float, float, int, float]]]
    wall_seconds: float = 0.0
    loads: list[float] = field(default_factory=list)  # 1-minute load average along the run


# -- formatting --------------------------------------------------------------


def _int(x: float) -> str:
    return f"{x:,.0f}"


def _rate(s: Spread) -> str:
    return f"{_int(s.median)} ({_int(s.low)} - {_int(s.high)})"


def _secs(s: Spread) -> str:
    return f"{s.median:.3f} ({s.low:.3f} - {s.high:.3f})"


def _ms(s: Spread) -> str:
    return f"{s.median * 1e3:.1f} ({s.low * 1e3:.1f} - {s.high * 1e3:.1f})"


def _mb(s: Spread) -> str:
    return f"{s.median / MB:.0f} ({s.low / MB:.0f} - {s.high / MB:.0f})"


def _partitions(n: int) -> str:
    return f"{n} partition{'s' if n > 1 else ''}"


def _cpu(f: Throughput) -> str:
    r = f.cpu_rate
    return "" if r is None else _int(r.median)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    right = ["---:" if i else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# -- machine -----------------------------------------------------------------


def cpu_model() -> str:
    """Return the CPU model named in /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(results: Results) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return [
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores, {usable} usable",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}; Pykka {version('pykka')}",
        f"- 1-minute load average along the run: {' -> '.join(f'{x:.1f}' for x in results.loads)}"
        f" (on {usable} cores; above {usable} other processes took CPU time from this run, "
        "and wall-clock figures suffer)",
        f"- `--size {results.size} --runs {results.runs}`; every figure is the median of "
        f"{results.runs} run(s), with (min - max); wall time {results.wall_seconds:.0f} s; "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
    ]


# -- targets -----------------------------------------------------------------


def targets(results: Results) -> list[tuple[str, str, str, bool]]:
    """Return (target, measured, goal, met) for each target the brief sets."""
    floor = results.floor.rate.median
    out = []
    key = (3, 8)
    if key in results.steady:
        ours = results.steady[key].rate.median
        per_cpu = _cpu(results.steady[key])
        out.append(
            (
                "steady state, 3 partitions / 8 producers",
                f"{_int(ours)} events/s" + (f" ({per_cpu} per CPU s)" if per_cpu else ""),
                ">= 2,000,000 events/s",
                ours >= 2_000_000,
            )
        )
        out.append(
            (
                "steady state 3p/8t vs the floor",
                f"{floor / ours:.1f}x slower",
                "<= 4x slower",
                floor / ours <= 4,
            )
        )
        if key in results.pykka:
            peer = results.pykka[key].rate.median
            out.append(
                (
                    "steady state 3p/8t vs Pykka 3p/8t",
                    f"{ours / peer:.1f}x faster",
                    ">= 10x faster",
                    ours / peer >= 10,
                )
            )
    batched = results.batched.get(("record_events", 3, 8))
    if batched is not None:
        out.append(
            (
                "record_events, batches of 1,000, 3p/8t vs the floor",
                f"{floor / batched.rate.median:.2f}x slower",
                "<= 1.5x slower",
                floor / batched.rate.median <= 1.5,
            )
        )
    seed = results.seed.time.median
    out.append(("seed Run cell", f"{seed:.3f} s", "<= 0.25 s", seed <= 0.25))
    if (0, None) in results.latency:
        p99 = statistics.median(run[1] for run in results.latency[0, None])
        goal = results.latency_interval + 0.050
        out.append(
            (
                f"latency p99 at flush_interval={results.latency_interval:g} s, no load",
                f"{p99 * 1e3:.1f} ms",
                f"<= {goal * 1e3:.0f} ms",
                p99 <= goal,
            )
        )
    return out


# -- the document ------------------------------------------------------------


def render(results: Results) -> str:
    """Return results.md."""
    floor = results.floor.rate.median

    def slower(rate: float) -> str:
        return f"{floor / rate:.1f}x"

    lines = ["# summarizer benchmarks", "", *machine_lines(results), "", BEAM_CONTEXT, ""]

    lines += ["## Targets", ""]
    lines += _table(
        ["target", "measured (median)", "goal", "result"],
        [(t, m, g, "PASS" if ok else "MISS") for t, m, g, ok in targets(results)],
    )

    seed, peer = results.seed, results.seed_pykka
    lines += [
        "",
        "## Seed Run cell",
        "",
        f"{_int(seed.events)} events for the seed's 5 users (seeded random picks) through "
        "`async_stream(range(N), fn, max_concurrency=2000)` into 3 partitions, timed from the "
        "stream's start until one `flush_events(p)` per partition has drained them all (the "
        "drained counts sum to N). The tree runs with `flush_interval=3600`, `sinks=[]`; "
        "starting and stopping it is timed apart.",
        "",
    ]
    lines += _table(
        ["case", "seconds", "events/s", "x slower than floor"],
        [
            ("summarizer", _secs(seed.time), _rate(seed.rate), slower(seed.rate.median)),
            ("Pykka (1 actor per partition)", _secs(peer.time), _rate(peer.rate),
             slower(peer.rate.median)),
            ("summarizer: start_link + stop of the tree", _secs(Spread.of(results.tree_start_stop)),
             "", ""),
        ],
    )  # fmt: skip

    any_steady = next(iter(results.steady.values()))
    lines += [
        "",
        "## Steady state",
        "",
        f"{_int(any_steady.events)} events split evenly over the producer threads, released "
        "by one barrier; timed from the barrier to the end of the drain (one `flush_events` "
        "per partition after every producer has returned). `flush_interval=3600`, `sinks=[]`.",
        "",
    ]
    lines += _table(
        [
            "partitions",
            "producers",
            "events/s",
            "seconds",
            "events per CPU s",
            "x slower than floor",
        ],
        [
            (str(p), str(t), _rate(f.rate), _secs(f.time), _cpu(f), slower(f.rate.median))
            for (p, t), f in sorted(results.steady.items())
        ],
    )

    f = results.steady_nogc
    lines += [
        "",
        "Diagnostic, not a target: the 3-partition / 8-producer case again with the cyclic "
        "garbage collector off (`gc.disable()` for the timed part). `record_event` casts the "
        '`User` itself, not a `("record_event", user)` tuple, so an event allocates nothing '
        "the collector tracks; this row checks that the GC no longer costs much.",
        "",
    ]
    lines += _table(
        [
            "partitions",
            "producers",
            "events/s",
            "seconds",
            "events per CPU s",
            "x slower than floor",
        ],
        [("3", "8, gc off", _rate(f.rate), _secs(f.time), _cpu(f), slower(f.rate.median))],
    )

    lines += [
        "",
        "## Floor",
        "",
        "The same events counted in one thread with `d[uid] = d.get(uid, 0) + 1` over the "
        "precomputed picks (`uid = user.id`): what the work costs with no threads and no "
        "messages.",
        "",
    ]
    lines += _table(
        ["case", "events", "events/s", "seconds", "events per CPU s"],
        [("dict increments, 1 thread", _int(results.floor.events), _rate(results.floor.rate),
          _secs(results.floor.time), _cpu(results.floor))],
    )  # fmt: skip

    lines += [
        "",
        "## Pykka peer",
        "",
        "The same workload on `pykka.ThreadingActor`: one actor per partition, routed by "
        "`phash2(uid, n)` (computed once per user, as our routing table caches it), "
        "`tell(user)` per event (the message our `record_event` casts), one `ask` per actor "
        "to drain.",
        "",
    ]
    rows: list[Sequence[str]] = []
    for (p, t), f in sorted(results.pykka.items()):
        ours = results.steady.get((p, t))
        ratio = f"{ours.rate.median / f.rate.median:.1f}x" if ours else ""
        rows.append(
            (str(p), str(t), _int(f.events), _rate(f.rate), _cpu(f), slower(f.rate.median), ratio)
        )
    rows.append(
        (
            "3",
            "seed Run cell shape",
            _int(peer.events),
            _rate(peer.rate),
            "",
            slower(peer.rate.median),
            f"{seed.rate.median / peer.rate.median:.1f}x",
        )
    )
    lines += _table(
        ["partitions", "producers", "events", "events/s", "events per CPU s",
         "x slower than floor", "summarizer is faster by"],
        rows,
    )  # fmt: skip

    lines += [
        "",
        "## Batching",
        "",
        "The steady-state events again, as batches of 1,000: `record_events(batch)` on lists "
        "cut before the barrier (it counts each batch per user at the producer and casts one "
        "message per partition), and `Recorder(batch=1000, linger=0.001).record(user)` per "
        "event (the recorder calls `record_events`). Against `record_event`, one cast per "
        "event, at the same partitions and producers.",
        "",
    ]
    rows = []
    for (kind, p, t), f in sorted(results.batched.items()):
        single = results.steady.get((p, t))
        gain = f"{f.rate.median / single.rate.median:.1f}x" if single else ""
        call = "record_events(batch)" if kind == "record_events" else "Recorder.record"
        rows.append((call, str(p), str(t), _rate(f.rate), _cpu(f), slower(f.rate.median), gain))
    lines += _table(
        ["call", "partitions", "producers", "events/s", "events per CPU s",
         "x slower than floor", "faster than record_event by"],
        rows,
    )  # fmt: skip

    lines += ray_lines(results)

    lines += ["", "## Memory", "", *memory_lines(results)]

    lines += [
        "",
        "## Latency",
        "",
        f"For {results.latency_seconds:g} s, one probe event per ms (fewer when the probing "
        "thread waits for the GIL), each for its own user id; `on_flush` stamps its arrival. "
        "Latency = arrival - the time just before `record_event`. "
        f"`flush_interval={results.latency_interval:g}`, 3 partitions. Under load, producer "
        "threads record seed users while the probes are sent, paced to a rate or flat out; "
        "*load* is the rate they reached.",
        "",
    ]
    rows = []
    for (threads, rate), runs in sorted(results.latency.items(), key=_load_order):
        if threads == 0:
            load = "none"
        else:
            offered = "flat out" if rate is None else f"paced to {_int(rate)} events/s"
            load = f"{threads} producers {offered}"
        rows.append(
            (
                load,
                _int(statistics.median(r[3] for r in runs)) if threads else "0",
                _int(statistics.median(r[2] for r in runs)),
                _ms(Spread.of([r[0] for r in runs])),
                _ms(Spread.of([r[1] for r in runs])),
            )
        )
    lines += _table(["load", "load events/s", "probes", "p50 ms", "p99 ms"], rows)
    return "\n".join(lines) + "\n"


def ray_lines(results: Results) -> list[str]:
    """Return the Ray section, or nothing when this run measured no Ray backend."""
    figures = dict(results.ray)
    if not figures:
        return []
    init = figures.pop("ray_init_seconds")
    start = figures.pop("tree_start_seconds")
    any_run = next(iter(figures.values()))
    lines = [
        "",
        "## Ray backend",
        "",
        f'{_int(any_run.events)} events split over producers that are Ray tasks (`backend="ray"`'
        ", 3 partitions, each buffer a Ray actor) or threads (the thread backend), each through "
        "`Recorder(batch=1000)`; timed from the first producer's start to the end of the drain. "
        f"Local Ray cluster, 2 CPUs: `ray.init` took {init:.1f} s, starting the tree with its 3 "
        f"actors {start:.1f} s (both apart from the figures).",
        "",
    ]
    rows = []
    for p in sorted({p for _, p in figures}):
        on_ray, on_threads = figures.get(("ray", p)), figures.get(("thread", p))
        ratio = (
            f"{on_threads.rate.median / on_ray.rate.median:.1f}x" if on_ray and on_threads else ""
        )
        rows.append(
            (
                str(p),
                _rate(on_ray.rate) if on_ray else "",
                _rate(on_threads.rate) if on_threads else "",
                ratio,
            )
        )
    lines += _table(
        ["producers", "Ray tasks, events/s", "threads, events/s", "threads faster by"], rows
    )
    return lines


def _load_order(item: tuple[tuple[int, float | None], Any]) -> tuple[int, float]:
    (threads, rate), _ = item
    return threads, float("inf") if rate is None else rate


def memory_lines(results: Results) -> list[str]:
    lines = [
        "8 producers, 3 partitions, `flush_interval=0.1`, `sinks=[]`; each run in a fresh "
        "interpreter; RSS sampled every 20 ms (psutil), and the messages waiting in the "
        "collectors' mailboxes (backlog) with it. *start*: tree running, before the first "
        "event; *end*: after the tree stopped (every event flushed). *per queued msg*: "
        "(peak - start) / peak backlog. The default mailbox is unbounded, as in OTP; with "
        '`max_mailbox=N` (`overflow="block"`) producers wait for room, which bounds the backlog.',
        "",
        "The collectors take events more slowly than 8 producers send them, so without a "
        "bound the backlog grows for as long as the producers run, and RSS with it.",
        "",
    ]
    rows: list[Sequence[str]] = []
    growth = {}
    for (events, bound), runs in sorted(
        results.memory.items(), key=lambda kv: (kv[0][1] or 0, kv[0][0])
    ):
        start = Spread.of([r["rss_start"] for r in runs])
        peak = Spread.of([r["rss_peak"] for r in runs])
        end = Spread.of([r["rss_end"] for r in runs])
        backlogs = [r["peak_backlog"] for r in runs]
        backlog = Spread.of(backlogs) if None not in backlogs else None
        per_msg = [
            (r["rss_peak"] - r["rss_start"]) / r["peak_backlog"] for r in runs if r["peak_backlog"]
        ]
        rate = Spread.of([r["events"] / r["seconds"] for r in runs])
        if bound is None:
            growth[events] = (peak.median - start.median, backlog.median if backlog else None)
        rows.append(
            (
                _int(events) if bound is None else f"{_int(events)}, max_mailbox={_int(bound)}",
                _mb(start),
                _mb(peak),
                _mb(end),
                f"{_int(backlog.median)} ({_int(backlog.low)} - {_int(backlog.high)})"
                if backlog
                else "n/a",
                f"{statistics.median(per_msg):.0f} B" if per_msg else "n/a",
                _rate(rate),
            )
        )
    lines += _table(
        ["events", "RSS start MB", "RSS peak MB", "RSS end MB", "peak backlog (msgs)",
         "per queued msg", "events/s"],
        rows,
    )  # fmt: skip
    if len(growth) >= 2:
        small, big = min(growth), max(growth)
        (d_small, b_small), (d_big, b_big) = growth[small], growth[big]
        text = (
            f"{big / small:.0f}x the events: peak RSS above start {d_small / MB:.0f} MB -> "
            f"{d_big / MB:.0f} MB ({d_big / max(d_small, 1):.1f}x)"
        )
        if b_small is not None and b_big is not None:
            text += (
                f"; peak backlog {_int(b_small)} -> {_int(b_big)} messages "
                f"({b_big / max(b_small, 1):.1f}x)"
            )
        lines += ["", text + ". What the backlog does not explain is what the tree keeps."]
    return lines


# -- the plot ----------------------------------------------------------------


def plot(results: Results, path: Path) -> None:
    """Draw events/s against producer threads, one line per partition count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for parts in sorted({p for p, _ in results.steady}):
        points = sorted((t, f.rate) for (p, t), f in results.steady.items() if p == parts)
        xs = [t for t, _ in points]
        ys = [r.median for _, r in points]
        err = [[r.median - r.low for _, r in points], [r.high - r.median for _, r in points]]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            marker="o",
            capsize=3,
            label=f"summarizer, {_partitions(parts)}",
        )
    for (parts, t), f in sorted(results.pykka.items()):
        r = f.rate
        ax.errorbar(
            [t],
            [r.median],
            yerr=[[r.median - r.low], [r.high - r.median]],
            marker="s",
            linestyle="none",
            capsize=3,
            label=f"Pykka, {_partitions(parts)}",
        )
    ax.axhline(
        results.floor.rate.median, color="black", linestyle="-", label="floor: dict, 1 thread"
    )
    ax.axhline(2_000_000, color="tab:green", linestyle="--", label="target 3p/8t: 2,000,000")
    ax.axhline(BEAM_STEADY_EPS, color="tab:purple", linestyle=":", label="BEAM 8 procs (context)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted({t for _, t in results.steady})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("producer threads")
    ax.set_ylabel("events/s (median; bars: min-max)")
    ax.set_title(
        f"Steady-state throughput, {_int(next(iter(results.steady.values())).events)} events"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
