"""Sinks: where flushed summaries go.

A sink is any object with ``write(partition, data, flushed_at)``; the flushers
call every sink of the tree with each non-empty flush, and each collector's
final flush on a graceful stop::

    memory = MemorySink()
    sup = SummarizerSupervisor.start_link(sinks=[LogSink(), memory, SQLiteSink("summary.sqlite")])
    ...
    memory.frame()  # DataFrame: flushed_at, partition, user_id, count
    SQLiteSink("summary.sqlite").totals()  # {"1": 40_123, ...}: running totals, across runs

Each sink gets its flushes from its own delivery worker (`summarizer.delivery`):
a sink that raises is logged, counted (``accounting().sink_errors``) and
retried with backoff, and a flush it never takes goes to the dead-letter file;
the flushers and the other sinks never wait for it. `SQLiteSink` and
`PostgresSink` (`summarizer.postgres`) store each flush's id with its totals in
one transaction (``store(flush)``), so a retried or replayed flush is counted
once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .deadletter import Flush
from .otp.validate import brief, positive_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LogSink", "MemorySink", "SQLiteSink", "Sink"]

log = logging.getLogger("summarizer")


class Sink(Protocol):
    """Receive every non-empty flush."""

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        """Store or forward one flush."""


class LogSink:
    """Log each flush on the ``summarizer`` logger, as the Livebook's flusher does."""

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        log.info("EventFlusher partition %d - Flushed data: %r", partition, dict(data))

    def __repr__(self) -> str:
        return "LogSink()"


class MemorySink:
    """Keep every flush in memory; read it back as a pandas DataFrame."""

    COLUMNS = ("flushed_at", "partition", "user_id", "count")

    def __init__(self) -> None:
        self._rows: list[tuple[float, int, Any, int]] = []
        self._lock = threading.Lock()

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        rows = [(flushed_at, partition, user_id, n) for user_id, n in data.items()]
        with self._lock:
            self._rows.extend(rows)

    def frame(self) -> pd.DataFrame:
        """Return one row per (flush, user): flushed_at, partition, user_id, count."""
        import pandas as pd

        with self._lock:
            rows = list(self._rows)
        frame: pd.DataFrame = pd.DataFrame(rows, columns=list(self.COLUMNS))
        return frame

    def totals(self) -> dict[Any, int]:
        """Return the events flushed per user so far."""
        totals: dict[Any, int] = {}
        with self._lock:
            for _, _, user_id, n in self._rows:
                totals[user_id] = totals.get(user_id, 0) + n
        return totals

    def __repr__(self) -> str:
        return "MemorySink()"


class SQLiteSink:
    """Upsert running totals per user into SQLite, one transaction per flush, once per flush id.

    Tables: ``totals(user_id PRIMARY KEY, count)`` and ``flushes(id, flushed_at,
    partition, events, flush_id UNIQUE)``. Totals add up across runs. A
    connection waits ``timeout`` seconds for a lock another one holds, then the
    write fails (and the delivery worker retries it).
    """

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS totals (user_id PRIMARY KEY, count INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS flushes (
            id INTEGER PRIMARY KEY, flushed_at REAL NOT NULL,
            partition INTEGER NOT NULL, events INTEGER NOT NULL, flush_id TEXT);
    """

    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise TypeError(f"path must be a non-empty str or Path, got: {brief(path)}")
        self.path = Path(path)
        self.timeout = positive_number("timeout", timeout)
        self._lock = threading.Lock()
        db = self._connect()
        try:
            with db:
                db.executescript(self.SCHEMA)
                columns = [row[1] for row in db.execute("PRAGMA table_info(flushes)")]
                if "flush_id" not in columns:  # a file from before flush ids
                    db.execute("ALTER TABLE flushes ADD COLUMN flush_id TEXT")
                db.execute(
                    "CREATE UNIQUE INDEX IF NOT EXISTS flushes_flush_id ON flushes(flush_id)"
                )
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout)

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        self.store(Flush(f"{uuid.uuid4().hex}:{partition}:1", partition, dict(data), flushed_at))

    def store(self, flush: Flush) -> bool:
        """Add ``flush`` to the totals unless its id is stored; return whether it was added."""
        with self._lock:
            db = self._connect()
            try:
                with db:  # one transaction: the flush id and the totals together
                    added = db.execute(
                        "INSERT OR IGNORE INTO flushes (flush_id, flushed_at, partition, events) "
                        "VALUES (?, ?, ?, ?)",
                        (flush.id, flush.flushed_at, flush.partition, sum(flush.data.values())),
                    ).rowcount
                    if added:
                        db.executemany(
                            "INSERT INTO totals (user_id, count) VALUES (?, ?) "
                            "ON CONFLICT(user_id) DO UPDATE SET count = count + excluded.count",
                            [(_to_sql(user_id), n) for user_id, n in flush.data.items()],
                        )
                return bool(added)
            finally:
                db.close()

    def totals(self) -> dict[Any, int]:
        """Return the running total per user."""
        db = self._connect()
        try:
            rows = db.execute("SELECT user_id, count FROM totals ORDER BY user_id")
            return {_from_sql(user_id): n for user_id, n in rows}
        finally:
            db.close()

    def flushes(self) -> int:
        """Return how many flushes were written."""
        db = self._connect()
        try:
            return int(db.execute("SELECT COUNT(*) FROM flushes").fetchone()[0])
        finally:
            db.close()

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"


def _to_sql(user_id: Any) -> Any:
    """Return ``user_id`` as SQLite stores it: an int beyond 64 bits as a BLOB of hex digits.

    User ids are str or int, so a BLOB key never collides with one stored as is.
    """
    if isinstance(user_id, int) and not -(2**63) <= user_id < 2**63:
        return format(user_id, "x").encode()
    return user_id


def _from_sql(user_id: Any) -> Any:
    """Invert `_to_sql`."""
    return int(user_id.decode(), 16) if isinstance(user_id, bytes) else user_id
