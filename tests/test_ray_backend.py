"""The Ray backend: the same tree, each collector's buffer in a named Ray actor.

One local Ray cluster serves the whole session (2 CPUs, no dashboard, a small
object store). Without Ray these tests skip, except in CI (env CI set), where a
missing Ray fails them: the Makefile's dev install pulls ``summarizer[ray]``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import pytest
from reliability.helpers import child_env, poll
from support import COLLECTORS, live_children

from summarizer import EventCollector, MemorySink, Recorder, SummarizerSupervisor, User
from summarizer.otp import ExitError, PartitionSupervisor, Process, Supervisor, async_stream
from summarizer.ray_backend import actor_name
from summarizer.user import TEST_USERS

TREE = "SummarizerSupervisor"
WAIT = 60.0  # seconds: a bound for waits on Ray (an actor's restart is a new process)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("no_leaks")]


def _ray() -> Any:
    if os.environ.get("CI"):
        import ray  # in CI a missing Ray fails the test, never skips it

        return ray
    return pytest.importorskip("ray", reason="`make venv` installs summarizer[ray]")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """Start one local Ray cluster for the session; warm it up so its threads exist."""
    ray = _ray()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 2**20,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        sup = SummarizerSupervisor.start_link(
            flush_interval=60.0, partitions=1, sinks=[], backend="ray"
        )
        ray.get(_produce.remote(list(TEST_USERS), 5))
        Supervisor.stop(sup)
        yield ray
    finally:
        ray.shutdown()


def _produce_impl(users: list[User], batch: int) -> int:
    """Record ``users`` from inside a Ray task, through a Recorder (or one by one)."""
    if batch == 1:
        for user in users:
            EventCollector.record_event(user)
    else:
        with Recorder(batch=batch) as rec:
            for user in users:
                rec.record(user)
    return len(users)


try:
    import ray as _ray_module

    # Ray workers cannot import this test module: ship its functions by value.
    _ray_module.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    _produce = _ray_module.remote(num_cpus=0.5)(_produce_impl)
except ImportError:  # the fixture skips (or fails in CI) before any test uses it
    _produce = None


class _Producer:
    """A producer that is a Ray actor: one process across trees, its router cached."""

    def record(self, users: list[User], batch: int) -> int:
        return _produce_impl(users, batch)


try:
    _ProducerActor = _ray_module.remote(num_cpus=0)(_Producer)
except NameError:  # no Ray
    _ProducerActor = None


def picks(n: int, seed: int = 42) -> list[User]:
    return random.Random(seed).choices(TEST_USERS, k=n)


def totals(users: list[User]) -> dict[Any, int]:
    return dict(Counter(u.id for u in users))


def livebook_run(users: list[User], **options: Any) -> dict[Any, int]:
    """Run the Livebook's Run cell on a tree with ``options``; return the flushed totals."""
    memory = MemorySink()
    sup = SummarizerSupervisor.start_link(
        flush_interval=0.5, partitions=3, sinks=[memory], **options
    )
    try:
        deque(async_stream(users, EventCollector.record_event, max_concurrency=2000), maxlen=0)
    finally:
        Supervisor.stop(sup)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (len(users), len(users), 0, {})
    return memory.totals()


def test_the_livebook_run_gives_the_same_per_user_totals_on_both_backends(ray_cluster):
    users = picks(100_000)
    on_threads = livebook_run(users)
    on_ray = livebook_run(users, backend="ray")
    assert on_ray == on_threads == totals(users)


def test_producers_inside_ray_tasks_reach_the_actor_of_their_partition(ray_cluster, tree):
    ray = ray_cluster
    seen: dict[int, Counter[Any]] = {0: Counter(), 1: Counter(), 2: Counter()}
    memory = MemorySink()
    sup = tree(sinks=[memory], on_flush=lambda p, data: seen[p].update(data), backend="ray")
    chunks = [picks(20_000, seed) for seed in range(4)]
    few = picks(50, seed=99)
    done = ray.get(
        [_produce.remote(c, 1_000) for c in chunks] + [_produce.remote(few, 1)], timeout=WAIT
    )
    assert done == [20_000] * 4 + [50]
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending, acc.balanced) == (80_050, 80_050, True)
    Supervisor.stop(sup)
    everything = [u for c in chunks for u in c] + few
    assert memory.totals() == totals(everything)
    # users "1", "2", "5" on partition 0 of 3, "3" and "4" on partition 1, as on the BEAM
    assert set(seen[0]) == {"1", "2", "5"} and set(seen[1]) == {"3", "4"} and not seen[2]
    acc = SummarizerSupervisor.accounting()
    assert (acc.flushed, acc.pending, acc.lost) == (80_050, 0, {})


def test_a_producer_actor_follows_each_new_tree_whatever_its_partition_count(ray_cluster):
    ray = ray_cluster
    producer = _ProducerActor.remote()
    try:
        for partitions, seed in ((2, 10), (3, 11), (3, 12)):  # its cached actors go stale
            memory = MemorySink()
            sup = SummarizerSupervisor.start_link(
                flush_interval=60.0, partitions=partitions, sinks=[memory], backend="ray"
            )
            users = picks(20_000, seed)
            try:
                assert ray.get(producer.record.remote(users, 1_000), timeout=WAIT) == 20_000
            finally:
                Supervisor.stop(sup)
            assert memory.totals() == totals(users)
            assert SummarizerSupervisor.accounting().lost == {}
    finally:
        ray.kill(producer)


def test_a_graceful_stop_flushes_every_actor_then_kills_them(ray_cluster, tree):
    ray = ray_cluster
    memory = MemorySink()
    sup = tree(sinks=[memory], partitions=2, backend="ray")
    driver = picks(30_000, seed=1)
    EventCollector.record_events(driver)
    remote = picks(10_000, seed=2)
    ray.get(_produce.remote(remote, 1_000), timeout=WAIT)
    with Recorder(batch=1_000_000, linger=3600.0) as rec:
        for user in TEST_USERS:
            rec.record(user)
        Supervisor.stop(sup)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending, acc.lost) == (40_005, 40_005, 0, {})
    assert memory.totals() == totals(driver + remote + list(TEST_USERS))
    for p in range(2):
        poll(lambda p=p: _gone(ray, actor_name(p)), WAIT, f"actor {p} to be killed")


def _gone(ray: Any, name: str) -> bool:
    try:
        ray.get_actor(name)
    except ValueError:
        return True
    return False


def _incarnation(ray: Any, partition: int) -> str:
    actor = ray.get_actor(actor_name(partition))
    incarnation: str = ray.get(actor.ready.remote(), timeout=WAIT)[0]
    return incarnation


def test_killing_a_proxy_kills_its_actor_and_counts_its_buffer_as_killed(ray_cluster, tree):
    ray = ray_cluster
    memory = MemorySink()
    sup = tree(sinks=[memory], partitions=1, backend="ray")
    first = _incarnation(ray, 0)
    users = picks(25_000, seed=3)
    EventCollector.record_events(users)  # shipped at once: 25,000 >= SHIP_AT
    ray.get(_produce.remote(picks(5_000, seed=4), 1_000), timeout=WAIT)
    assert SummarizerSupervisor.accounting().pending == 30_000
    [proxy] = live_children(COLLECTORS)
    Process.exit(proxy, "kill")
    poll(lambda: live_children(COLLECTORS) not in ([], [proxy]), WAIT, "the proxy's restart")
    assert _incarnation(ray, 0) != first  # a new actor, under the same name
    after = picks(1_000, seed=5)
    ray.get(_produce.remote(after, 100), timeout=WAIT)
    Supervisor.stop(sup)
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending, acc.lost) == (31_000, 0, {"killed": 30_000})
    assert acc.balanced
    assert memory.totals() == totals(after)


def test_a_ray_restart_of_the_actor_is_an_exit_of_its_proxy(ray_cluster, tree):
    ray = ray_cluster
    memory = MemorySink()
    sup = tree(partitions=1, sinks=[memory], backend="ray")
    EventCollector.record_events(picks(12_000, seed=6))  # shipped: in the actor
    assert SummarizerSupervisor.accounting().pending == 12_000  # the proxy looked at it
    [proxy] = live_children(COLLECTORS)
    first = _incarnation(ray, 0)
    ray.kill(ray.get_actor(actor_name(0)), no_restart=False)  # Ray restarts it
    poll(lambda: _incarnation(ray, 0) != first, WAIT, "Ray to restart the actor")
    later = picks(3_000, seed=7)
    ray.get(_produce.remote(later, 1_000), timeout=WAIT)  # into the restarted actor
    SummarizerSupervisor.accounting()  # the proxy looks, notices, and exits
    poll(lambda: live_children(COLLECTORS) not in ([], [proxy]), WAIT, "the proxy's restart")
    acc = SummarizerSupervisor.accounting()  # the new proxy took over the restarted actor
    assert (acc.accepted, acc.pending, acc.lost) == (15_000, 3_000, {"killed": 12_000})
    Supervisor.stop(sup)  # the new proxy took over the restarted actor and its events
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.flushed, acc.pending) == (15_000, 3_000, 0)
    assert acc.lost == {"killed": 12_000}
    assert memory.totals() == totals(later)


def test_a_flush_that_finds_the_actor_restarted_exits_the_proxy(ray_cluster, tree):
    ray = ray_cluster
    tree(partitions=1, backend="ray")
    EventCollector.record_events(picks(12_000, seed=8))
    [proxy] = live_children(COLLECTORS)
    first = _incarnation(ray, 0)
    ray.kill(ray.get_actor(actor_name(0)), no_restart=False)
    poll(lambda: _incarnation(ray, 0) != first, WAIT, "Ray to restart the actor")
    with pytest.raises(ExitError, match="ray_actor_lost"):
        EventCollector.flush_events(0)
    poll(lambda: live_children(COLLECTORS) not in ([], [proxy]), WAIT, "the proxy's restart")
    acc = SummarizerSupervisor.accounting()
    assert (acc.accepted, acc.pending, acc.lost, acc.balanced) == (
        12_000,
        0,
        {"killed": 12_000},
        True,
    )


def test_kills_past_the_intensity_escalate_as_on_threads_and_the_tree_comes_back(ray_cluster, tree):
    ray = ray_cluster
    sup = tree(partitions=1, backend="ray", max_restarts=1, max_seconds=600)
    collectors = Process.whereis(COLLECTORS)
    [proxy] = live_children(COLLECTORS)
    Process.exit(proxy, "kill")  # restart 1 of max_restarts=1: the partition's supervisor copes
    poll(lambda: live_children(COLLECTORS) not in ([], [proxy]), WAIT, "the proxy's restart")
    assert Process.whereis(COLLECTORS) == collectors
    [proxy] = live_children(COLLECTORS)
    Process.exit(proxy, "kill")  # restart 2 within 600 s: it gives up, the top restarts it
    poll(
        lambda: Process.whereis(COLLECTORS) not in (None, collectors) and live_children(COLLECTORS),
        WAIT,
        "a new collectors' supervisor with a live proxy",
    )
    # the partition supervisor gave up, and the top restarted it: a new one, new actor
    assert Process.whereis(COLLECTORS) not in (None, collectors)
    assert PartitionSupervisor.partitions(COLLECTORS) == 1
    assert Process.alive(sup)
    EventCollector.record_event(TEST_USERS[0])
    assert EventCollector.flush_events(0) == {"1": 1}
    assert ray.get(ray.get_actor(actor_name(0)).stats.remote(), timeout=WAIT)[0] == 0


AT_EXIT = """
    import sys
    from summarizer import EventCollector, SQLiteSink, SummarizerSupervisor, User

    SummarizerSupervisor.start_link(
        flush_interval=3600.0, partitions=2, sinks=[SQLiteSink(sys.argv[1])], backend="ray"
    )
    EventCollector.record_events([User(str(i % 10), "customer", "free") for i in range(25_000)])
    # no stop: the interpreter exits with events in the actors and the proxies
"""


def test_a_ray_tree_still_running_at_exit_flushes_before_ray_shuts_down(ray_cluster, tmp_path):
    from summarizer import SQLiteSink

    db = tmp_path / "summary.sqlite"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AT_EXIT), str(db)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert sum(SQLiteSink(db).totals().values()) == 25_000


MISSING_CLUSTER = """
    import time
    from summarizer import SummarizerSupervisor

    began = time.monotonic()
    try:
        SummarizerSupervisor.start_link(backend="ray", ray_address="127.0.0.1:9")
    except ConnectionError as e:
        print(round(time.monotonic() - began, 1), e)
"""


def test_a_cluster_that_cannot_be_reached_fails_start_link_clearly_and_soon(ray_cluster):
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MISSING_CLUSTER)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    seconds, message = run.stdout.split(" ", 1)
    assert "cannot reach the Ray cluster at 127.0.0.1:9 within 10 s" in message
    assert float(seconds) < 15
    assert not Process.whereis(TREE)


NO_RAY = """
    import sys
    sys.modules["ray"] = None  # as if Ray were not installed
    from summarizer import SummarizerSupervisor

    try:
        SummarizerSupervisor.start_link(backend="ray")
    except ImportError as e:
        print(e)
"""


def test_without_ray_the_error_says_how_to_install_it():
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NO_RAY)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "pip install 'summarizer[ray]'" in run.stdout


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"backend": "dask"}, ValueError, "backend must be 'thread' or 'ray', got: 'dask'"),
        ({"backend": None}, ValueError, "backend must be 'thread' or 'ray', got: None"),
        ({"ray_address": 6379}, TypeError, "ray_address must be a str or None, got: 6379"),
    ],
)
def test_bad_backend_options_say_what_they_must_be(options, error, text):
    with pytest.raises(error, match=text):
        SummarizerSupervisor.start_link(**options)
    assert not Process.whereis(TREE)


def test_an_actor_refuses_batches_after_the_stops_last_flush() -> None:
    # Ray orders calls per caller only: a producer's batch may reach the actor after
    # the tree's last flush. It must be refused (the producer raises), never taken
    # into a buffer nobody will read. The actor class is plain Python: no cluster.
    from summarizer.ray_backend import CLOSED, CollectorActor

    actor = CollectorActor(0, 3)
    assert actor.add("p", 0, {"1": 2}, True) == actor.incarnation
    data, accepted, _ = actor.close()
    assert (data, accepted) == ({"1": 2}, 2)
    assert actor.add("p", 1, {"1": 5}, True) == CLOSED
    assert actor.stats()[:2] == (0, 2)
