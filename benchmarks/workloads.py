"""The measured workloads; each returns seconds (or samples) for one run.

Every workload records events for the seed's five users, picked in advance with
a seeded generator, so picking costs nothing inside the timed part and every
run sends the same events.
"""

from __future__ import annotations

import gc
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import pykka

from summarizer import EventCollector, SummarizerSupervisor, User
from summarizer.otp import Supervisor, async_stream, phash2
from summarizer.user import TEST_USERS

SEED = 20_240_601
LATENCY_PROBE_BASE = 1_000_000_000  # int ids from here are latency probes
MIN_PROBES = 20


def make_picks(n: int, seed: int = SEED) -> list[User]:
    """Return ``n`` seeded random choices among the seed's users."""
    rng = random.Random(seed)
    return rng.choices(TEST_USERS, k=n)


def split(picks: Sequence[User], parts: int) -> list[list[User]]:
    """Cut ``picks`` into ``parts`` lists of ``len(picks) // parts`` events each."""
    per = len(picks) // parts
    return [list(picks[i * per : (i + 1) * per]) for i in range(parts)]


@contextmanager
def tree(partitions: int, flush_interval: float = 3600.0, **options: Any) -> Iterator[Any]:
    """Run a SummarizerSupervisor with no sinks for the block; stop it after."""
    sup = SummarizerSupervisor.start_link(
        flush_interval=flush_interval, partitions=partitions, sinks=[], **options
    )
    try:
        yield sup
    finally:
        Supervisor.stop(sup)


DRAIN_TIMEOUT = 120.0  # a long backlog on a busy machine takes more than the default 5 s


def drain(partitions: int) -> int:
    """Flush every partition once; return how many events they held."""
    return sum(
        sum(EventCollector.flush_events(p, DRAIN_TIMEOUT).values()) for p in range(partitions)
    )


def run_producers(
    chunks: list[list[Any]], produce: Callable[[list[Any]], None]
) -> tuple[float, float]:
    """Run ``produce(chunk)`` on one thread per chunk, all released by one barrier.

    Return once every producer has finished, with the ``perf_counter`` and the
    ``process_time`` (CPU of every thread) at which the last one reached the barrier.
    """
    started: list[tuple[float, float]] = []
    barrier = threading.Barrier(
        len(chunks), action=lambda: started.append((time.perf_counter(), time.process_time()))
    )

    def producer(chunk: list[Any]) -> None:
        barrier.wait()
        produce(chunk)

    threads = [
        threading.Thread(target=producer, args=(c,), name=f"bench-producer-{i}")
        for i, c in enumerate(chunks)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started[0]


def record_all(chunk: list[User]) -> None:
    """Record every event of ``chunk`` (a producer's work)."""
    record = EventCollector.record_event
    for user in chunk:
        record(user)


# -- the seed's Run cell -----------------------------------------------------


def seed_run(picks: Sequence[User], partitions: int = 3) -> float:
    """Time the Run cell: ``async_stream`` of ``record_event`` calls, then one drain."""
    n = len(picks)
    record = EventCollector.record_event

    def fn(i: int) -> None:
        record(picks[i])

    with tree(partitions):
        start = time.perf_counter()
        deque(async_stream(range(n), fn, max_concurrency=2000), maxlen=0)
        drained = drain(partitions)
        elapsed = time.perf_counter() - start
    assert drained == n, f"drained {drained} of {n} events"
    return elapsed


def tree_start_stop(partitions: int = 3) -> float:
    """Time starting the seed's tree and stopping it again."""
    start = time.perf_counter()
    with tree(partitions):
        pass
    return time.perf_counter() - start


# -- steady state and the floor ----------------------------------------------


def steady(
    picks: Sequence[User], partitions: int, threads: int, collect: bool = True
) -> tuple[float, int, float]:
    """Time ``threads`` producers recording ``picks`` into ``partitions``, to the drain.

    ``collect=False`` turns the cyclic garbage collector off for the timed part
    (a diagnostic). Return (seconds from the barrier to the end of the drain,
    events sent, CPU seconds the whole process spent meanwhile).
    """
    chunks = split(picks, threads)
    n = sum(len(c) for c in chunks)
    with tree(partitions):
        if not collect:
            gc.disable()
        try:
            start, cpu_start = run_producers(chunks, record_all)
            drained = drain(partitions)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
        finally:
            gc.enable()
    assert drained == n, f"drained {drained} of {n} events"
    return elapsed, n, cpu


def floor(picks: Sequence[User]) -> tuple[float, int, float]:
    """Time counting ``picks`` as dict increments in one thread: the floor.

    Return (seconds, events, CPU seconds), as `steady` does.
    """
    d: dict[Any, int] = {}
    cpu_start = time.process_time()
    start = time.perf_counter()
    for user in picks:
        uid = user.id
        d[uid] = d.get(uid, 0) + 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    assert sum(d.values()) == len(picks)
    return elapsed, len(picks), cpu


# -- the peer: Pykka ---------------------------------------------------------


class PykkaCollector(pykka.ThreadingActor):
    """The seed's collector as a Pykka actor: count the `User` it is told, as ours casts."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[Any, int] = {}

    def on_receive(self, message: Any) -> Any:
        if message.__class__ is User:
            uid = message.id
            self.data[uid] = self.data.get(uid, 0) + 1
            return None
        if message == "flush_events":
            data, self.data = self.data, {}
            return data
        raise ValueError(f"PykkaCollector got an unknown message: {message!r}")


@contextmanager
def pykka_actors(partitions: int) -> Iterator[list[pykka.ActorRef[Any]]]:
    """Run one PykkaCollector per partition for the block; stop them after."""
    refs = [PykkaCollector.start() for _ in range(partitions)]
    try:
        yield refs
    finally:
        for ref in refs:
            ref.stop()


def _pykka_router(refs: list[pykka.ActorRef[Any]]) -> dict[Any, Any]:
    """Map each seed user's id to its actor's ``tell``, routed by ``phash2(id, n)``.

    Computed once, as our routing table caches each key's partition.
    """
    return {u.id: refs[phash2(u.id, len(refs))].tell for u in TEST_USERS}


def _pykka_drain(refs: list[pykka.ActorRef[Any]]) -> int:
    drained = [cast(dict[Any, int], ref.ask("flush_events", timeout=DRAIN_TIMEOUT)) for ref in refs]
    return sum(sum(data.values()) for data in drained)


def pykka_steady(picks: Sequence[User], partitions: int, threads: int) -> tuple[float, int, float]:
    """As `steady`, on Pykka: ``tell`` per event, ``ask`` per actor to drain."""
    chunks = split(picks, threads)
    n = sum(len(c) for c in chunks)
    with pykka_actors(partitions) as refs:
        tell = _pykka_router(refs)

        def produce(chunk: list[User]) -> None:
            for user in chunk:
                tell[user.id](user)

        start, cpu_start = run_producers(chunks, produce)
        drained = _pykka_drain(refs)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    assert drained == n, f"drained {drained} of {n} events"
    return elapsed, n, cpu


def pykka_seed_run(picks: Sequence[User], partitions: int = 3) -> float:
    """As `seed_run`, on Pykka."""
    n = len(picks)
    with pykka_actors(partitions) as refs:
        tell = _pykka_router(refs)

        def fn(i: int) -> None:
            user = picks[i]
            tell[user.id](user)

        start = time.perf_counter()
        deque(async_stream(range(n), fn, max_concurrency=2000), maxlen=0)
        drained = _pykka_drain(refs)
        elapsed = time.perf_counter() - start
    assert drained == n, f"drained {drained} of {n} events"
    return elapsed


# -- latency -----------------------------------------------------------------


def _load(stop: threading.Event, rate: float | None, sent: list[int], slot: int) -> None:
    """Record seed users until ``stop``: as fast as possible, or ``rate`` events/s.

    Store how many events it recorded in ``sent[slot]``.
    """
    record = EventCollector.record_event
    users = make_picks(10_000)
    if rate is None:
        while not stop.is_set():
            for user in users:
                record(user)
            sent[slot] += len(users)
        return
    tick = 0.005
    batch = users[: max(1, round(rate * tick))]
    next_at = time.perf_counter()
    while not stop.is_set():
        for user in batch:
            record(user)
        sent[slot] += len(batch)
        next_at += tick
        wait = next_at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


def latency(
    duration: float,
    flush_interval: float = 0.1,
    partitions: int = 3,
    load_threads: int = 0,
    load_rate: float | None = None,
    period: float = 0.001,
) -> tuple[float, float, int, float]:
    """Measure the time from ``record_event`` to the flush that delivers it.

    For ``duration`` seconds, one probe event every ``period`` (fewer if the
    thread falls behind), each for its own user id ``LATENCY_PROBE_BASE + i``;
    ``on_flush`` stamps the arrival of each. With ``load_threads``, that many
    producers record seed users all along, as fast as they can or
    ``load_rate`` events/s in all. Return (p50 s, p99 s, probes, load events/s).
    """
    size = max(MIN_PROBES, round(duration / period))
    probes = [User(id=LATENCY_PROBE_BASE + i, name="probe", plan="free") for i in range(size)]
    sent = [0.0] * size
    arrived = [0.0] * size
    seen = [0]
    expected = [size + 1]  # known once the probes are sent
    all_in = threading.Event()
    lock = threading.Lock()  # one flusher thread per partition calls on_flush

    def on_flush(_partition: int, data: dict[Any, int]) -> None:
        now = time.perf_counter()
        with lock:
            for key in data:
                if key.__class__ is int and key >= LATENCY_PROBE_BASE:
                    arrived[key - LATENCY_PROBE_BASE] = now
                    seen[0] += 1
            if seen[0] >= expected[0]:
                all_in.set()

    stop = threading.Event()
    per_thread = None if load_rate is None else load_rate / max(1, load_threads)
    load_sent = [0] * load_threads
    with tree(partitions, flush_interval, on_flush=on_flush):
        loaders = [
            threading.Thread(
                target=_load, args=(stop, per_thread, load_sent, i), name=f"bench-load-{i}"
            )
            for i in range(load_threads)
        ]
        record = EventCollector.record_event
        perf_counter, sleep = time.perf_counter, time.sleep
        n = 0
        load_begin = perf_counter()
        for t in loaders:
            t.start()
        begin = perf_counter()
        try:
            while n < size:
                wait = begin + n * period - perf_counter()
                if wait > 0:
                    sleep(wait)
                now = perf_counter()
                if now - begin >= duration and n >= MIN_PROBES:
                    break
                sent[n] = now
                record(probes[n])
                n += 1
        finally:
            stop.set()  # the load lasts as long as the probes
            for t in loaders:
                t.join()
            load_seconds = perf_counter() - load_begin
        with lock:
            expected[0] = n
            if seen[0] >= n:
                all_in.set()
        delivered = all_in.wait(duration + 10 * flush_interval + 10.0)
    assert delivered, f"only {seen[0]} of {n} probes were flushed"
    latencies = [arrived[i] - sent[i] for i in range(n)]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98], n, sum(load_sent) / load_seconds
