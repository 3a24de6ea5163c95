"""Find where the steady state's time goes: CPU per thread kind, per-step costs, cProfile.

::

    python -m benchmarks.profiling                      # 3 partitions, 8 producers, 1M events
    python -m benchmarks.profiling --partitions 1 --producers 1 --top 30

Three views, each with its own bias:

1. CPU split: the real run, unprofiled; the CPU seconds of the producer threads,
   the collector threads and the rest, per event (psutil per-thread times).
2. Step costs: each step of ``record_event`` and of the receive loop timed alone
   in one thread with ``time.thread_time`` (CPU, not wall, so another thread
   holding the GIL does not count). Some steps reach into the runtime's
   internals; a step that no longer exists prints as n/a.
3. cProfile in every thread, on the CPU clock: each thread started during the
   run enables its own profiler on its first traced call. The profiler's cost
   per call (about 0.5 us with this clock) swamps calls this short: read the
   call counts and shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import sys
import threading
import time
import timeit
from typing import Any

import psutil

from summarizer import COLLECTORS, EventCollector, User
from summarizer.otp import GenServer, NoReply, Ok, PartitionSupervisor, Process, Reply
from summarizer.user import TEST_USERS

from .workloads import drain, make_picks, record_all, run_producers, split, tree


def _kind(name: str) -> str:
    if name.startswith("bench-"):
        return "producers"
    if name.startswith("EventCollector-"):
        return "collectors"
    return "other"


def cpu_split(
    events: int, partitions: int, producers: int, collect: bool = True
) -> dict[str, float]:
    """Run the steady state unprofiled; return wall and CPU seconds by thread kind.

    Each thread's CPU time comes from its own CPU clock (``pthread_getcpuclockid``),
    exact where psutil's per-thread times are tick samples. ``collect=False``
    runs it with the cyclic garbage collector off; ``gc_runs`` counts collections.
    """
    runs = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs[info["generation"]] += 1

    chunks = split(make_picks(events), producers)
    n = sum(len(c) for c in chunks)
    cpu = {"producers": 0.0, "collectors": 0.0, "other": 0.0}
    lock = threading.Lock()

    def produce(chunk: list[Any]) -> None:
        began = time.thread_time()
        record_all(chunk)
        spent = time.thread_time() - began
        with lock:
            cpu["producers"] += spent

    me = psutil.Process()

    def thread_times() -> dict[int, float]:
        """Return each live thread's CPU seconds, read from its own CPU clock."""
        times = {}
        for t in threading.enumerate():
            if t.ident is not None:
                with contextlib.suppress(OSError, ProcessLookupError):
                    clock = time.pthread_getcpuclockid(t.ident)
                    times[t.ident] = time.clock_gettime(clock)
        return times

    gc.collect()
    gc.callbacks.append(count)
    if not collect:
        gc.disable()
    try:
        with tree(partitions):
            names = {t.ident: t.name for t in threading.enumerate()}
            before, total_before = thread_times(), me.cpu_times()
            start, _cpu = run_producers(chunks, produce)
            drained = drain(partitions)
            wall = time.perf_counter() - start
            after, total_after = thread_times(), me.cpu_times()
    finally:
        gc.enable()
        gc.callbacks.remove(count)
    assert drained == n, f"drained {drained} of {n} events"
    for ident, spent in after.items():
        kind = _kind(names.get(ident, ""))
        if kind != "producers":
            cpu[kind] += spent - before.get(ident, 0.0)
    total = (total_after.user + total_after.system) - (total_before.user + total_before.system)
    return {"events": n, "wall": wall, "process_cpu": total, "gc_runs": runs, **cpu}


class _Held(GenServer):
    """A server that an info message holds until its event is set; casts cost nothing."""

    def init(self, arg: Any) -> Ok:
        self.count = 0
        self._noreply = NoReply({})  # returned by every cast, as the collector does
        return Ok(self._noreply.state)

    def handle_info(self, msg: Any, state: Any) -> NoReply:
        msg.wait()
        return self._noreply

    def handle_cast(self, request: Any, state: Any) -> NoReply:
        return self._noreply

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(self.count, state)


class _Counting(_Held):
    """Count casts of a User exactly as EventCollector.handle_cast does."""

    def handle_cast(self, user: Any, state: dict[Any, int]) -> NoReply:
        state[user.id] = state.get(user.id, 0) + 1
        self.count += 1
        return self._noreply


def _thread_of(pid: Any) -> threading.Thread:
    """Return the thread that runs ``pid`` (its name ends with the pid)."""
    for t in threading.enumerate():
        if t.name.endswith(repr(pid)):
            return t
    raise LookupError(f"no thread runs {pid!r}")


def receive_loop_cost(server: type[_Held], n: int, batch: int = 1000) -> float:
    """Return the server thread's CPU seconds per cast, ``n`` casts in batches.

    For each batch the server is held by an info message while ``batch`` casts
    are queued, then released; a call waits for the last. The batch stays in
    the CPU caches, as in the steady state, where a collector takes each event
    soon after it was sent. Only the server's own CPU clock is read.
    """
    msg = TEST_USERS[0]
    pid = server.start_link()
    try:
        clock = time.pthread_getcpuclockid(_thread_of(pid).ident or 0)
        cast, call, send = GenServer.cast, GenServer.call, Process.send
        spent = 0.0
        for _ in range(max(1, n // batch)):
            release = threading.Event()
            send(pid, release)
            for _ in range(batch):
                cast(pid, msg)
            began = time.clock_gettime(clock)
            release.set()
            call(pid, "done", None)
            spent += time.clock_gettime(clock) - began
    finally:
        GenServer.stop(pid)
    return spent / (max(1, n // batch) * batch)


STEPS = (
    ("record_event(user), the whole call", "record(u)"),
    ("  the same, gc enabled", "gc.enable(); record(u)"),
    ("  user.__class__ is not User", "u.__class__ is not User"),
    ("  PartitionSupervisor.cast(...)", "cast(COLLECTORS, u.id, u)"),
    ("    PartitionSupervisor.partition(...)", "partition(COLLECTORS, u.id)"),
    ("    SimpleQueue.put(msg) alone", "q.put(u)"),
    ("floor: d[uid] = d.get(uid, 0) + 1", "d[uid] = d.get(uid, 0) + 1"),
)


def step_costs(number: int = 200_000, repeat: int = 5) -> list[tuple[str, float | None]]:
    """Return the CPU seconds of each step of ``record_event``, one thread, tree running."""
    from queue import SimpleQueue

    out: list[tuple[str, float | None]] = []
    with tree(3):
        u = TEST_USERS[0]
        names: dict[str, Any] = {"record": EventCollector.record_event, "u": u, "User": User}
        names.update(cast=PartitionSupervisor.cast, partition=PartitionSupervisor.partition)
        names.update(COLLECTORS=COLLECTORS, q=SimpleQueue(), d={}, uid=u.id, gc=gc)
        timer = timeit.Timer("pass", timer=time.thread_time)
        empty = min(timer.repeat(repeat, number)) / number
        for label, stmt in STEPS:
            timer = timeit.Timer(stmt, globals=names, timer=time.thread_time)
            out.append((label, min(timer.repeat(repeat, number)) / number - empty))
            drain(3)  # keep the mailboxes short
    return out


def profile_steady(
    events: int, partitions: int, producers: int
) -> dict[str, list[cProfile.Profile]]:
    """Run the steady state once under cProfile; return the profilers by thread kind."""
    profiles: dict[str, list[cProfile.Profile]] = {"producers": [], "tree": []}
    lock = threading.Lock()

    def start_profiling(*_args: Any) -> None:
        prof = cProfile.Profile(time.thread_time_ns, 1e-9)
        kind = "producers" if threading.current_thread().name.startswith("bench-") else "tree"
        with lock:
            profiles[kind].append(prof)
        prof.enable()  # replaces this hook for the rest of the thread's life

    chunks = split(make_picks(events), producers)
    n = sum(len(c) for c in chunks)
    threading.setprofile(start_profiling)
    try:
        with tree(partitions):
            began = time.perf_counter()
            run_producers(chunks, record_all)
            drained = drain(partitions)
            elapsed = time.perf_counter() - began
    finally:
        threading.setprofile(None)
    assert drained == n, f"drained {drained} of {n} events"
    print(
        f"{n:,} events, {partitions} partitions, {producers} producers: {elapsed:.3f} s "
        f"under cProfile ({n / elapsed:,.0f} events/s)"
    )
    return profiles


def report(profiles: list[cProfile.Profile], title: str, top: int) -> str:
    """Return the top entries of the merged profiles, by total and by cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(*profiles, stream=out)
    stats.strip_dirs()
    print(f"=== {title}: {len(profiles)} threads, by tottime ===", file=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"=== {title}: by cumtime ===", file=out)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--no-cprofile", action="store_true", help="skip the cProfile view")
    args = parser.parse_args(argv)
    shape = f"{args.events:,} events, {args.partitions} partitions, {args.producers} producers"

    print(f"== 1. CPU split, unprofiled, by thread kind: {shape}")
    for collect in (True, False):
        split_ = cpu_split(args.events, args.partitions, args.producers, collect)
        n = split_["events"]
        print(
            f"-- gc {'on' if collect else 'off'}: wall {split_['wall']:.3f} s "
            f"({n / split_['wall']:,.0f} events/s); process CPU {split_['process_cpu']:.3f} s; "
            f"collections by generation {split_['gc_runs']}"
        )
        for kind in ("producers", "collectors", "other"):
            print(
                f"  {kind:<10} {split_[kind]:7.3f} s CPU = {split_[kind] / n * 1e9:5.0f} ns/event"
            )
        print(
            f"  {'wall':<10} {split_['wall']:7.3f} s     = {split_['wall'] / n * 1e9:5.0f} ns/event"
        )

    print("\n== 2. Step costs, CPU ns per call, one thread")
    for label, cost in step_costs():
        print(f"  {label:<40} {'n/a' if cost is None else f'{cost * 1e9:6.0f}'}")
    for server, label in ((_Held, "receive loop, no-op handle_cast"),
                          (_Counting, "receive loop + collector's handle_cast")):  # fmt: skip
        print(f"  {label:<40} {receive_loop_cost(server, 500_000) * 1e9:6.0f}")

    if not args.no_cprofile:
        print(f"\n== 3. cProfile (CPU clock) in every thread: {shape}")
        for kind, profs in profile_steady(args.events, args.partitions, args.producers).items():
            if profs:
                print(report(profs, kind, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
