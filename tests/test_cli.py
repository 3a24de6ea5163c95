"""``python -m summarizer run``: the Livebook's Run section, headless, with a checked exit code."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from summarizer import SQLiteSink, SummarizerSupervisor
from summarizer.__main__ import main
from summarizer.otp import Supervisor

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ["--events", "--max-concurrency", "--partitions", "--flush-interval", "--seed", "--db"]
SMALL_RUN = ["--events", "2000", "--max-concurrency", "50", "--partitions", "3"]

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


@pytest.fixture(autouse=True)
def _no_tree_left() -> Iterator[None]:
    """Stop a tree that a failed in-process run left behind."""
    yield
    if SummarizerSupervisor.running():
        Supervisor.stop("SummarizerSupervisor")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m summarizer`` from the repository's root; capture its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "summarizer", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def seeded_totals(events: int, seed: int = 42) -> Counter[str]:
    """Return the per-user counts of the run's seeded choice among the seed's five users."""
    rng = random.Random(seed)
    return Counter(rng.choice(["1", "2", "3", "4", "5"]) for _ in range(events))


@pytest.fixture(scope="module")
def two_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[tuple[subprocess.CompletedProcess[str], dict[object, int]]]:
    """Run a small run twice on one database; return each run and the totals after it."""
    db = tmp_path_factory.mktemp("cli") / "summary.sqlite"
    runs = []
    for _ in range(2):
        done = cli("run", *SMALL_RUN, "--flush-interval", "0.2", "--db", str(db))
        runs.append((done, SQLiteSink(db).totals()))
    return runs


def test_a_small_run_exits_0_prints_the_totals_and_fills_the_database(
    two_runs: list[tuple[subprocess.CompletedProcess[str], dict[object, int]]],
) -> None:
    done, totals = two_runs[0]

    assert done.returncode == 0, done.stdout + done.stderr
    expected = seeded_totals(2000)
    assert totals == expected
    lines = done.stdout.splitlines()
    assert "EventFlusherPartitionSupervisor" in done.stdout  # which_children
    assert any(line.split()[:3] == ["3", "CoffeeCentral", "free"] for line in lines)  # users
    for uid, n in expected.items():  # user_id, name, expected, flushed, db_total
        assert any(line.split()[:1] == [uid] and line.split()[2:] == [str(n)] * 3 for line in lines)
    assert "lost by reason: {}" in done.stdout
    assert "Flushed data" in done.stdout  # the flushes, logged as they happen
    assert lines[-1] == "OK: every event was flushed"
    assert "2000/2000" in done.stderr  # the progress bar


def test_a_second_run_doubles_the_database_totals(
    two_runs: list[tuple[subprocess.CompletedProcess[str], dict[object, int]]],
) -> None:
    done, totals = two_runs[1]
    assert done.returncode == 0, done.stdout + done.stderr
    assert totals == seeded_totals(2000) + seeded_totals(2000)


def test_main_runs_in_process_and_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMALL_RUN, "--flush-interval", "0.2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "OK: every event was flushed"


def test_the_seed_option_changes_the_totals_deterministically(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--events", "500", "--seed", "7"]) == 0
    first = capsys.readouterr().out
    assert main(["run", "--events", "500", "--seed", "7"]) == 0
    second = capsys.readouterr().out
    table = [ln for ln in first.splitlines() if ln.split()[:1] in (["1"], ["2"], ["3"])]
    assert table and all(line in second for line in table)
    assert main(["run", "--events", "500", "--seed", "8"]) == 0
    assert not all(line in capsys.readouterr().out for line in table)


def test_run_stops_a_tree_that_is_already_running() -> None:
    SummarizerSupervisor.start_link(flush_interval=60.0, partitions=2, sinks=[])
    assert main(["run", "--events", "100", "--partitions", "3"]) == 0


def test_run_exits_1_when_the_database_did_not_get_the_events(tmp_path: Path) -> None:
    db = tmp_path / "summary.sqlite"
    with sqlite3.connect(db) as conn:  # a database that refuses every total
        conn.executescript(
            "CREATE TABLE totals (user_id PRIMARY KEY, count INTEGER NOT NULL);"
            "CREATE TRIGGER refuse BEFORE INSERT ON totals BEGIN SELECT RAISE(ABORT, 'no'); END;"
        )
    conn.close()
    assert main(["run", "--events", "100", "--db", str(db)]) == 1
    assert SummarizerSupervisor.accounting().sink_errors != {}


def test_a_bad_option_exits_2_with_a_one_line_error() -> None:
    done = cli("run", "--partitions", "0")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    error = done.stderr.splitlines()[-1]
    assert error == (
        "python -m summarizer run: error: argument --partitions: must be a positive integer, got: 0"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "-5"], "argument --events: must be a positive integer, got: -5"),
        (["--events", "1e3"], "argument --events: must be a positive integer, got: 1e3"),
        (["--max-concurrency", "0"], "argument --max-concurrency: must be a positive integer"),
        (["--partitions", "1.5"], "argument --partitions: must be a positive integer, got: 1.5"),
        (["--flush-interval", "abc"], "argument --flush-interval: must be a positive number"),
        (["--flush-interval", "0"], "argument --flush-interval: must be a positive number"),
        (["--flush-interval", "inf"], "argument --flush-interval: must be a positive number"),
        (["--seed", "x"], "argument --seed: must be an integer, got: x"),
        (["--unknown"], "unrecognized arguments: --unknown"),
    ],
)
def test_each_bad_option_gives_an_argparse_error_naming_it(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_no_command_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_help_documents_every_option() -> None:
    done = cli("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps help to the terminal's width
    for option in OPTIONS:
        assert option in text
    for default in ("100000", "2000", "schedulers_online()", "1.0", "42", "none"):
        assert f"(default: {default}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partitions", "5000"], "argument --partitions: must be an integer <= 4096, got: 5000"),
        (["--db", "/nonexistent/dir/x.sqlite"], "argument --db: cannot open /nonexistent/dir/"),
        (["--db", ""], "argument --db: cannot open : path must be a non-empty str"),
    ],
)
def test_an_error_found_after_parsing_shows_runs_usage_and_no_traceback(
    args: list[str], message: str
) -> None:
    done = cli("run", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: python -m summarizer run ")
    assert message in done.stderr.splitlines()[-1]


def test_help_speaks_of_the_livebook() -> None:
    text = " ".join(cli("run", "--help").stdout.split()) + " ".join(cli("--help").stdout.split())
    assert "Livebook" in text
    assert "seed's" not in text
