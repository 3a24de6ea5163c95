"""Sinks: the log line, the in-memory frame, and SQLite running totals that add up across runs."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from summarizer import EventCollector, LogSink, MemorySink, SQLiteSink, SummarizerSupervisor
from summarizer.otp import Supervisor
from summarizer.user import TEST_USERS

pytestmark = pytest.mark.usefixtures("no_leaks")  # conftest: no thread or name left behind


def run_tree(sink: SQLiteSink, events: int) -> Counter[str]:
    """Record ``events`` events through a tree writing to ``sink``; stop it; return the counts."""
    sup = SummarizerSupervisor.start_link(flush_interval=60.0, partitions=3, sinks=[sink])
    recorded = Counter[str]()
    try:
        for i in range(events):
            user = TEST_USERS[i % len(TEST_USERS)]
            EventCollector.record_event(user)
            recorded[user.id] += 1
    finally:
        Supervisor.stop(sup)
    return recorded


def test_the_log_sink_logs_each_flush_at_info_on_the_summarizer_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="summarizer")
    LogSink().write(1, {"3": 2}, 0.0)
    [record] = caplog.records
    assert (record.name, record.levelno) == ("summarizer", logging.INFO)
    assert record.getMessage() == "EventFlusher partition 1 - Flushed data: {'3': 2}"


def test_the_memory_sink_keeps_every_flush_as_rows_and_totals() -> None:
    memory = MemorySink()
    memory.write(0, {"1": 2, "2": 1}, 10.0)
    memory.write(0, {"1": 3}, 11.0)
    assert memory.totals() == {"1": 5, "2": 1}
    frame = memory.frame()
    assert list(frame.columns) == ["flushed_at", "partition", "user_id", "count"]
    assert frame.to_dict("records") == [
        {"flushed_at": 10.0, "partition": 0, "user_id": "1", "count": 2},
        {"flushed_at": 10.0, "partition": 0, "user_id": "2", "count": 1},
        {"flushed_at": 11.0, "partition": 0, "user_id": "1", "count": 3},
    ]


def test_an_empty_memory_sink_gives_an_empty_frame_with_its_columns() -> None:
    frame = MemorySink().frame()
    assert frame.empty and list(frame.columns) == ["flushed_at", "partition", "user_id", "count"]


def test_the_sqlite_sink_upserts_running_totals_and_counts_each_flush(tmp_path: Path) -> None:
    sink = SQLiteSink(tmp_path / "summary.sqlite")
    sink.write(0, {"1": 2, "2": 1}, 10.0)
    sink.write(1, {"1": 3, "3": 4}, 11.0)
    assert sink.totals() == {"1": 5, "2": 1, "3": 4}
    assert sink.flushes() == 2


def test_sqlite_totals_after_two_runs_add_up(tmp_path: Path) -> None:
    path = tmp_path / "summary.sqlite"
    first = run_tree(SQLiteSink(path), 1000)
    assert SQLiteSink(path).totals() == first
    second = run_tree(SQLiteSink(path), 500)
    assert SQLiteSink(path).totals() == first + second
    assert SummarizerSupervisor.accounting().sink_errors == {}


def test_the_sqlite_sink_keeps_int_and_str_user_ids_apart(tmp_path: Path) -> None:
    sink = SQLiteSink(tmp_path / "summary.sqlite")
    sink.write(0, {1: 2, "1": 3}, 10.0)
    assert sink.totals() == {1: 2, "1": 3}


def test_the_sqlite_sink_keeps_ints_beyond_64_bits_exactly(tmp_path: Path) -> None:
    ids = [2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 10**100, -(10**100), "10", 16]
    sink = SQLiteSink(tmp_path / "summary.sqlite")
    sink.write(0, dict.fromkeys(ids, 1), 10.0)
    sink.write(1, dict.fromkeys(ids, 2), 11.0)
    assert sink.totals() == dict.fromkeys(ids, 3)


@pytest.mark.parametrize("path", [None, "", 3])
def test_the_sqlite_sink_rejects_a_path_that_is_not_a_non_empty_str_or_path(path: object) -> None:
    with pytest.raises(TypeError, match=r"^path must be a non-empty str or Path, got: "):
        SQLiteSink(path)  # type: ignore[arg-type]


def test_the_sqlite_sink_raises_when_the_file_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        SQLiteSink(tmp_path / "no such dir" / "summary.sqlite")
