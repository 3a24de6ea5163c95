"""Run the Livebook's "Run" section headless: ``python -m summarizer run``.

::

    python -m summarizer run --events 100000 --max-concurrency 2000 --partitions 3 \\
        --flush-interval 1 --seed 42 --db summary.sqlite

It starts ``SummarizerSupervisor``, records ``--events`` events for the Livebook's
five test users (a seeded random choice each) through ``async_stream``, stops the
tree gracefully and prints the totals per user and the accounting. The exit code is
0 when every recorded event was flushed to its user, 1 otherwise, and 2 (with
``run``'s usage) for a bad option, never a traceback.

::

    python -m summarizer replay dead-letters.jsonl --db postgresql://localhost/metrics

replays a dead-letter file into a database (``--db`` takes a SQLite file or a
``postgresql://`` URL); flushes stored before are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import NoReturn

from . import EventCollector, LogSink, MemorySink, PostgresSink, SQLiteSink, SummarizerSupervisor
from .deadletter import replay
from .otp import NoProcess, Supervisor, async_stream, schedulers_online
from .sinks import Sink
from .user import TEST_USERS

__all__ = ["main"]


def positive_int(text: str) -> int:
    """Parse a positive integer option."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got: {text}")
    return value


def positive_seconds(text: str) -> float:
    """Parse a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got: {text}")
    return value


def integer(text: str) -> int:
    """Parse any integer (a random seed)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got: {text}") from None


def progress(iterable: Iterable[object], total: int) -> Iterator[object]:
    """Show a tqdm bar on stderr while ``iterable`` runs; logs print above it."""
    from tqdm import tqdm  # imported here, so --help and option errors stay quick
    from tqdm.contrib.logging import logging_redirect_tqdm

    class Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0  # no tqdm monitor thread: a run leaves no thread behind

    with logging_redirect_tqdm(loggers=[logging.getLogger("summarizer")]):
        yield from Bar(iterable, total=total, unit="event", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    cli = argparse.ArgumentParser(
        prog="python -m summarizer",
        description="Run the Livebook's Run section headless.",
    )
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="record events through the Livebook's supervision tree and check the totals",
        description="Record events for the Livebook's five test users through "
        "SummarizerSupervisor, stop it gracefully, print the totals; exit 0 when nothing "
        "was lost, else 1.",
    )
    run.set_defaults(usage=run)  # errors found after parsing print `run`'s usage
    options: list[tuple[str, Callable[[str], object], object, str, str]] = [
        ("--events", positive_int, 100_000, "N", "events to record"),
        ("--max-concurrency", positive_int, 2000, "N", "async_stream's max_concurrency"),
        ("--partitions", positive_int, None, "N", "collector and flusher partitions"),
        ("--flush-interval", positive_seconds, 1.0, "SECONDS", "seconds between two flushes"),
        ("--seed", integer, 42, "N", "seed of the random user choice, for exact totals"),
        (
            "--db",
            str,
            None,
            "PATH|URL",
            "also upsert running totals into this SQLite file or postgresql:// URL",
        ),
    ]
    shown = {"--partitions": f"schedulers_online(), {schedulers_online()} here", "--db": "none"}
    for option, parse, default, metavar, text in options:
        run.add_argument(
            option,
            type=parse,
            default=default,
            metavar=metavar,
            help=f"{text} (default: {shown.get(option, default)})",
        )
    again = commands.add_parser(
        "replay",
        help="write a dead-letter file's flushes into a database, each flush once",
        description="Replay the flushes of a dead-letter file (JSON Lines) into a database; "
        "flushes it already stored are skipped, so replaying twice changes nothing.",
    )
    again.set_defaults(usage=again)  # errors found after parsing print `replay`'s usage
    again.add_argument("file", metavar="FILE", help="the dead-letter file")
    again.add_argument(
        "--db", required=True, metavar="PATH|URL", help="a SQLite file or a postgresql:// URL"
    )
    return cli


def is_postgres(target: str) -> bool:
    """Return whether ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


def db_errors() -> tuple[type[BaseException], ...]:
    """Return the exceptions opening or writing a database raises (psycopg's if installed)."""
    errors: tuple[type[BaseException], ...] = (
        sqlite3.Error,
        OSError,
        ImportError,
        TypeError,  # an empty path, say
        ValueError,
    )
    with contextlib.suppress(ImportError):
        import psycopg

        errors += (psycopg.Error,)
    return errors


def open_db(usage: argparse.ArgumentParser, target: str) -> SQLiteSink | PostgresSink:
    """Open ``--db``: a postgresql:// URL or a SQLite path; exit 2 if it cannot be opened."""
    try:
        return PostgresSink(target) if is_postgres(target) else SQLiteSink(target)
    except db_errors() as e:
        usage.error(f"argument --db: cannot open {target}: {e}")


def option_error(usage: argparse.ArgumentParser, error: Exception) -> NoReturn:
    """Exit 2 with ``usage`` and ``error``, naming the option when the message names it."""
    message = str(error)
    option = "--" + message.split(" ", 1)[0].replace("_", "-")
    if f"[{option} " in usage.format_usage():  # an option of this command: name it
        message = f"argument {option}: {message.split(' ', 1)[1]}"
    usage.error(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    cli = parser()
    args = cli.parse_args(argv)
    log = logging.getLogger("summarizer")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return run(args) if args.command == "run" else replay_file(args)
    except KeyboardInterrupt:  # the tree was stopped (and flushed) on the way out
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def run(args: argparse.Namespace) -> int:
    """Perform the Livebook's Run section; return 0 if every event was flushed."""
    import pandas as pd  # imported here, so --help and option errors stay quick

    memory = MemorySink()
    sinks: list[Sink] = [LogSink(), memory]
    db: SQLiteSink | PostgresSink | None = None
    db_before = {}
    if args.db is not None:
        db = open_db(args.usage, args.db)
        db_before = db.totals()
        sinks.append(db)
    if SummarizerSupervisor.running():
        with contextlib.suppress(NoProcess):  # it may stop on its own meanwhile
            Supervisor.stop("SummarizerSupervisor")
    try:  # the package checks what the parser cannot know, such as the partitions' limit
        sup = SummarizerSupervisor.start_link(
            flush_interval=args.flush_interval, partitions=args.partitions, sinks=sinks
        )
    except (TypeError, ValueError) as e:
        option_error(args.usage, e)
    try:
        print("Supervisor.which_children(sup):")
        for child in Supervisor.which_children(sup):
            print(f"  {tuple(child)}")
        print(pd.DataFrame([asdict(u) for u in TEST_USERS]).to_string(index=False))
        rng = random.Random(args.seed)
        picks = [rng.choice(TEST_USERS) for _ in range(args.events)]
        started = time.perf_counter()
        stream = async_stream(
            range(args.events),
            lambda i: EventCollector.record_event(picks[i]),
            max_concurrency=args.max_concurrency,
        )
        for _ in progress(stream, args.events):
            pass
        recorded = time.perf_counter() - started
    finally:
        Supervisor.stop(sup)
    stopped = time.perf_counter() - started
    print(
        f"recorded {args.events} events in {recorded:.2f} s "
        f"({args.events / max(recorded, 1e-9):,.0f} events/s); "
        f"stopped and flushed at {stopped:.2f} s"
    )

    expected = Counter(u.id for u in picks)
    flushed = memory.totals()
    rows = [
        {
            "user_id": u.id,
            "name": u.name,
            "expected": expected[u.id],
            "flushed": flushed.get(u.id, 0),
        }
        for u in TEST_USERS
    ]
    ok = flushed == dict(expected)
    if db is not None:
        db_after = db.totals()
        for row in rows:
            row["db_total"] = db_after.get(row["user_id"], 0)
        added = {k: n - db_before.get(k, 0) for k, n in db_after.items() if n != db_before.get(k)}
        ok = ok and added == dict(expected)
    print(pd.DataFrame(rows).to_string(index=False))
    acc = SummarizerSupervisor.accounting()
    print(acc.frame().to_string())
    print(
        f"accepted {acc.accepted}, flushed {acc.flushed}, pending {acc.pending}, "
        f"lost by reason: {acc.lost}, sink errors: {acc.sink_errors}"
    )
    for name, books in acc.sinks.items():
        print(
            f"{name}: {books.delivered} of {books.handed} flushes delivered, "
            f"{books.retries} retries, {books.dead_lettered} dead-lettered, {books.queued} queued"
        )
    if any(books.dead_lettered for books in acc.sinks.values()):
        letters = SummarizerSupervisor.dead_letters()
        print(f"dead letters in {letters}; replay: python -m summarizer replay {letters} --db ...")
    ok = ok and acc.balanced and not acc.lost and acc.accepted == args.events
    print("OK: every event was flushed" if ok else "FAILED: events were lost or miscounted")
    return 0 if ok else 1


def replay_file(args: argparse.Namespace) -> int:
    """Replay a dead-letter file into ``--db``; return 0, or 1 if the database failed."""
    usage: argparse.ArgumentParser = args.usage
    db = open_db(usage, args.db)
    try:
        stored, skipped = replay(args.file, db)
    except FileNotFoundError as e:
        usage.error(f"argument FILE: cannot read {args.file}: {e}")
    except ValueError as e:
        usage.error(f"argument FILE: {e}")
    except db_errors() as e:  # the database failed midway: what was stored stays, once
        print(f"replay stopped: {args.db} failed: {e}; run it again", file=sys.stderr)
        return 1
    print(
        f"replayed {stored + skipped} flushes from {args.file}: {stored} stored, {skipped} already"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
