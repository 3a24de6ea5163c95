"""Dead letters: flushes a sink never took, kept in a JSON Lines file to replay later.

A flush that exhausts its retries, or is still queued when a stop's time is up,
is appended to the file, one flush per line with its id; nothing is dropped
silently. Replay it into a sink that stores each flush id once, and replaying
twice changes nothing::

    letters = DeadLetters("dead.jsonl")
    letters.append(
        Flush("run:0:1", 0, {"1": 3}, 1700000000.0), sink="PostgresSink", reason="retries"
    )
    replay("dead.jsonl", SQLiteSink("summary.sqlite"))  # (1, 0): one stored, none already there
    replay("dead.jsonl", SQLiteSink("summary.sqlite"))  # (0, 1): skipped, stored before

A line holds ``id``, ``partition``, ``flushed_at``, ``data`` (a list of
``[user_id, count]`` pairs, since user ids may be ints), and why and from which
sink it was dead-lettered. The file is written by the delivery workers of any
thread; each line is written whole under a lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .otp.validate import brief

__all__ = ["DeadLetters", "Flush", "read", "replay"]

log = logging.getLogger("summarizer")


@dataclass(frozen=True)
class Flush:
    """One non-empty flush on its way to the sinks, under an id unique across runs."""

    id: str
    partition: int
    data: dict[Any, int]
    flushed_at: float


class DeadLetters:
    """Append flushes to a JSON Lines file, created on the first one."""

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise TypeError(f"dead_letters must be a non-empty str or Path, got: {brief(path)}")
        self.path = Path(path)
        self._lock = threading.Lock()  # one whole line at a time

    def append(self, flush: Flush, sink: str, reason: str) -> None:
        """Write ``flush`` as one line, saying which ``sink`` gave up on it and why."""
        line = json.dumps(
            {
                "id": flush.id,
                "partition": flush.partition,
                "flushed_at": flush.flushed_at,
                "data": [[user_id, n] for user_id, n in flush.data.items()],
                "sink": sink,
                "reason": reason,
            }
        )
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.error("dead-lettered flush %s for %s (%s) to %s", flush.id, sink, reason, self.path)

    def __repr__(self) -> str:
        return f"DeadLetters({str(self.path)!r})"


def read(path: str | Path) -> Iterator[Flush]:
    """Yield the flushes of a dead-letter file, in order; raise ValueError on a bad line."""
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                data = {_key(user_id): int(n) for user_id, n in row["data"]}
                yield Flush(str(row["id"]), int(row["partition"]), data, float(row["flushed_at"]))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: not a dead-letter line: {e}") from None


def _key(user_id: Any) -> Any:
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        raise ValueError(f"user ids must be str or int, got: {brief(user_id)}")
    return user_id


def replay(path: str | Path, sink: Any) -> tuple[int, int]:
    """Write every flush of ``path`` to ``sink`` once; return (stored, already stored).

    ``sink`` must store flushes by id (``store(flush) -> bool``, as `SQLiteSink`
    and `PostgresSink`), so a flush that reached it before is skipped.
    """
    if not callable(getattr(sink, "store", None)):
        raise TypeError(f"sink must store flushes by id (SQLiteSink, PostgresSink), got: {sink!r}")
    stored = skipped = 0
    for flush in read(path):
        if sink.store(flush):
            stored += 1
        else:
            skipped += 1
    return stored, skipped
