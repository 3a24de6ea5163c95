"""PostgresSink: running totals per user in PostgreSQL, exactly once per flush id.

Needs psycopg 3 (``pip install 'summarizer[postgres]'``)::

    sink = PostgresSink("postgresql://app@db.example.com/metrics")
    sup = SummarizerSupervisor.start_link(sinks=[sink])
    ...
    sink.totals()  # {"1": 40_123, ...}: the sum over every tree that wrote here

One transaction per flush: the flush's id goes into ``flushes`` (its primary
key) and, only if it was not there yet, the per-user counts are upserted into
``totals``. A flush whose commit went through but whose acknowledgement was
lost is retried by its delivery worker and skipped here, so it is counted once;
trees in other processes or on other machines can write to the same database
at once and the totals add up exactly. User ids are stored as ``jsonb``, so the
str ``"1"`` and the int ``1`` stay apart.

The sink keeps one connection and opens a new one after an error, so it
carries on once a restarted server is back or a killed backend is gone; the
error itself is raised, for the delivery worker to retry.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .deadletter import Flush
from .otp.validate import brief

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresSink"]

SCHEMA = """
    SELECT pg_advisory_xact_lock(7291036);  -- trees starting at once create the tables once
    CREATE TABLE IF NOT EXISTS totals (user_id jsonb PRIMARY KEY, count bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS flushes (
        flush_id text PRIMARY KEY, flushed_at double precision NOT NULL,
        partition integer NOT NULL, events bigint NOT NULL);
"""


class PostgresSink:
    """Upsert running totals into PostgreSQL, one transaction per flush, once per flush id."""

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise TypeError(f"dsn must be a non-empty str, got: {brief(dsn)}")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ImportError(
                "PostgresSink needs psycopg 3: pip install 'summarizer[postgres]'"
            ) from None
        self.dsn = dsn
        self.connect_timeout = max(1, round(connect_timeout))
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # one flush at a time on the one connection
        with self._lock:
            self._run(lambda conn: conn.execute(SCHEMA))

    def _run(self, work: Any) -> Any:
        """Run ``work(conn)`` in one transaction; drop the connection after an error."""
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.dsn,
                connect_timeout=self.connect_timeout,
                application_name="summarizer",
                autocommit=True,  # transactions are explicit: one per flush
            )
        conn = self._conn
        try:
            with conn.transaction():
                return work(conn)
        except psycopg.Error:
            self._conn = None  # the server restarted, the backend was killed, or worse:
            conn.close()  # start afresh on the next flush
            raise

    def write(self, partition: int, data: Mapping[Any, int], flushed_at: float) -> None:
        self.store(Flush(f"{uuid.uuid4().hex}:{partition}:1", partition, dict(data), flushed_at))

    def store(self, flush: Flush) -> bool:
        """Add ``flush`` to the totals unless its id is stored; return whether it was added."""
        from psycopg.types.json import Jsonb

        rows = sorted(flush.data.items(), key=lambda kv: (type(kv[0]).__name__, kv[0]))

        def work(conn: psycopg.Connection[Any]) -> bool:
            added = conn.execute(
                "INSERT INTO flushes (flush_id, flushed_at, partition, events) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (flush_id) DO NOTHING",
                (flush.id, flush.flushed_at, flush.partition, sum(flush.data.values())),
            ).rowcount
            if added:
                with conn.cursor() as cur:  # sorted keys: two trees never lock in opposite orders
                    cur.executemany(
                        "INSERT INTO totals (user_id, count) VALUES (%s, %s) ON CONFLICT "
                        "(user_id) DO UPDATE SET count = totals.count + excluded.count",
                        [(Jsonb(user_id), n) for user_id, n in rows],
                    )
            return bool(added)

        with self._lock:
            return bool(self._run(work))

    def totals(self) -> dict[Any, int]:
        """Return the running total per user."""
        with self._lock:
            rows = self._run(
                lambda conn: conn.execute("SELECT user_id, count FROM totals").fetchall()
            )
        return {user_id: int(n) for user_id, n in rows}

    def flushes(self) -> int:
        """Return how many flushes were stored."""
        with self._lock:
            row = self._run(lambda conn: conn.execute("SELECT count(*) FROM flushes").fetchone())
        return int(row[0])

    def close(self) -> None:
        """Close the connection (a later write opens a new one)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return "PostgresSink()"
