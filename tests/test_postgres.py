"""PostgresSink against a real server: exact totals through restarts, kills, outages, two trees.

The server is the session's throwaway PostgreSQL (conftest ``postgres_server``);
each test gets a fresh database. No sleeps: waits are on the server's own
``pg_ctl -w``, thread joins, and bounded polls whose every turn is a call.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import WAIT

from summarizer import (
    EventCollector,
    PostgresSink,
    RetryPolicy,
    SummarizerSupervisor,
    deadletter,
)
from summarizer.__main__ import main
from summarizer.deadletter import Flush
from summarizer.otp import Pid, Supervisor, async_stream
from summarizer.user import TEST_USERS

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("no_leaks")]

ROOT = Path(__file__).resolve().parents[1]
PG_WAIT = 2 * WAIT  # seconds: a bound that covers a server restart on a loaded machine
SINK = "PostgresSink()"


def record(events: int, seed: int) -> Counter[Any]:
    """Record ``events`` seeded random picks of the seed's users; return the totals drawn."""
    rng = random.Random(seed)
    picks = [rng.choice(TEST_USERS) for _ in range(events)]
    for user in picks:
        EventCollector.record_event(user)
    return Counter(u.id for u in picks)


def delivered_at_least(n: int) -> None:
    """Wait until the sink took ``n`` flushes (each turn asks the collectors: a call)."""
    deadline = time.monotonic() + PG_WAIT
    while SummarizerSupervisor.accounting().sinks[SINK].delivered < n:
        assert time.monotonic() < deadline, f"PostgresSink took fewer than {n} flushes"


def test_the_livebooks_100000_event_run_lands_in_postgres_exactly(
    tree: Callable[..., Pid], postgres: str
) -> None:
    sink = PostgresSink(postgres)
    sup = tree(flush_interval=0.2, sinks=[sink])
    rng = random.Random(42)
    picks = [rng.choice(TEST_USERS) for _ in range(100_000)]
    began = time.monotonic()
    for _ in async_stream(picks, EventCollector.record_event, max_concurrency=2000):
        pass
    Supervisor.stop(sup)
    print(f"\n100,000 events recorded, stopped and stored in {time.monotonic() - began:.2f} s")

    assert sink.totals() == Counter(u.id for u in picks)
    books = SummarizerSupervisor.accounting().sinks[SINK]
    assert books.delivered == books.handed == sink.flushes()
    sink.close()


def test_a_server_restarted_mid_run_counts_every_event_once(
    tree: Callable[..., Pid], postgres: str, postgres_server: Any
) -> None:
    sink = PostgresSink(postgres)
    sup = tree(flush_interval=0.02, sinks=[sink], exit_timeout=PG_WAIT)
    expected = record(5_000, seed=1)
    delivered_at_least(1)  # the sink holds a connection the restart will break

    restart = threading.Thread(
        target=postgres_server.ctl, args=("restart", "-m", "immediate"), name="pg-restart"
    )
    began = time.monotonic()
    restart.start()
    seeds = iter(range(100, 10_000))
    while restart.is_alive():  # record, and flush, while the server goes down and comes back
        expected += record(100, seed=next(seeds))
        assert time.monotonic() - began < PG_WAIT, "the restart did not finish"
    restart.join()
    print(f"\nrestart took {time.monotonic() - began:.2f} s")
    expected += record(5_000, seed=3)
    Supervisor.stop(sup)

    assert sink.totals() == expected
    books = SummarizerSupervisor.accounting().sinks[SINK]
    print(f"after the restart: {sum(expected.values())} events, {books}")
    assert books.retries >= 1, "no write met the restart"
    assert (books.delivered, books.dead_lettered, books.queued) == (books.handed, 0, 0)
    assert sink.flushes() == books.handed  # no flush stored twice
    sink.close()


def test_a_killed_connection_is_reopened_and_loses_nothing(
    tree: Callable[..., Pid], postgres: str, postgres_server: Any
) -> None:
    sink = PostgresSink(postgres)
    sup = tree(flush_interval=0.02, sinks=[sink])
    expected = record(5_000, seed=4)
    delivered_at_least(1)

    killed = postgres_server.admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'summarizer' AND pid <> pg_backend_pid()"
    )
    assert killed == [(True,)]
    expected += record(5_000, seed=5)
    Supervisor.stop(sup)

    assert sink.totals() == expected
    books = SummarizerSupervisor.accounting().sinks[SINK]
    print(f"\nafter the kill: {sum(expected.values())} events, {books}")
    assert books.retries >= 1, "the killed connection was never used"
    assert (books.delivered, books.dead_lettered) == (books.handed, 0)
    sink.close()


def test_an_outage_beyond_the_retry_bound_dead_letters_and_replay_is_exact_and_idempotent(
    tree: Callable[..., Pid], postgres: str, postgres_server: Any, tmp_path: Path
) -> None:
    letters = tmp_path / "dead.jsonl"
    sink = PostgresSink(postgres, connect_timeout=1)
    sup = tree(
        flush_interval=0.02,
        sinks=[sink],
        retry=RetryPolicy(max_attempts=3, max_elapsed=0.5, base_delay=0.05),
        dead_letters=letters,
        exit_timeout=0.5,
    )
    expected = record(2_000, seed=6)
    delivered_at_least(1)
    postgres_server.ctl("stop", "-m", "immediate")
    try:
        expected += record(2_000, seed=7)
        deadline = time.monotonic() + PG_WAIT
        while SummarizerSupervisor.accounting().sinks[SINK].dead_lettered < 1:
            assert time.monotonic() < deadline, "nothing was dead-lettered"
        expected += record(2_000, seed=8)
        Supervisor.stop(sup)  # what is still queued is dead-lettered after 0.5 s
    finally:
        postgres_server.ctl("start")

    books = SummarizerSupervisor.accounting().sinks[SINK]
    assert books.queued == 0
    assert books.delivered + books.dead_lettered == books.handed
    dead = list(deadletter.read(letters))
    print(f"\nafter the outage: {sum(expected.values())} events, {books}")
    assert len(dead) == books.dead_lettered
    assert len({f.id for f in dead}) == len(dead)

    assert main(["replay", str(letters), "--db", postgres]) == 0
    assert sink.totals() == expected
    assert deadletter.replay(letters, sink) == (0, len(dead))  # a second replay skips them all
    assert sink.totals() == expected
    sink.close()


def test_two_trees_in_two_processes_write_to_one_database_and_the_totals_add_up(
    postgres: str,
) -> None:
    script = (
        "import random, sys\n"
        "from summarizer import EventCollector, PostgresSink, SummarizerSupervisor\n"
        "from summarizer.otp import Supervisor\n"
        "from summarizer.user import TEST_USERS\n"
        "sink = PostgresSink(sys.argv[1])\n"
        "sup = SummarizerSupervisor.start_link(flush_interval=0.01, sinks=[sink])\n"
        "rng = random.Random(int(sys.argv[2]))\n"
        "for _ in range(100_000):\n"
        "    EventCollector.record_event(rng.choice(TEST_USERS))\n"
        "Supervisor.stop(sup)\n"
        "acc = SummarizerSupervisor.accounting().sinks['PostgresSink()']\n"
        "sys.exit(0 if acc.delivered == acc.handed else 1)\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, postgres, str(seed)], cwd=ROOT)
        for seed in (10, 11)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]

    expected: Counter[Any] = Counter()
    for seed in (10, 11):
        rng = random.Random(seed)
        expected.update(rng.choice(TEST_USERS).id for _ in range(100_000))
    sink = PostgresSink(postgres)
    assert sink.totals() == expected
    sink.close()


def test_a_flush_stored_twice_counts_once_and_int_and_str_ids_stay_apart(postgres: str) -> None:
    sink = PostgresSink(postgres)
    flush = Flush("run:0:1", 0, {"1": 2, 1: 5, 10**30: 1}, 1.0)
    assert sink.store(flush) is True
    assert sink.store(flush) is False  # a retry after a lost acknowledgement
    sink.write(1, {"1": 1}, 2.0)
    assert sink.totals() == {"1": 3, 1: 5, 10**30: 1}
    assert sink.flushes() == 2
    sink.close()


def test_the_cli_runs_the_livebook_into_postgres(postgres: str) -> None:
    assert main(["run", "--events", "2000", "--partitions", "2", "--db", postgres]) == 0
    sink = PostgresSink(postgres)
    assert sum(sink.totals().values()) == 2000
    sink.close()


@pytest.mark.parametrize("dsn", [None, "", 5])
def test_the_postgres_sink_rejects_a_dsn_that_is_not_a_non_empty_str(dsn: object) -> None:
    with pytest.raises(TypeError, match=r"^dsn must be a non-empty str, got: "):
        PostgresSink(dsn)  # type: ignore[arg-type]
