"""Shared fixtures: leak checks, and trees that are always stopped.

A test must leave no thread running and no name registered: modules opt in with
``pytestmark = pytest.mark.usefixtures("no_leaks")`` (tests/reliability has it on
for every test). ``tree`` starts SummarizerSupervisor trees with the defaults of
``tree_defaults`` (a directory's conftest may override it) and stops them after
the test. Constants and helpers are in support.py. ``postgres`` gives a test a
fresh database on a throwaway PostgreSQL server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import TREE_DEFAULTS, WAIT

from summarizer import SummarizerSupervisor
from summarizer.otp import OtpError, Pid, Process, Supervisor


def _join_new_threads(before: set[threading.Thread], deadline: float) -> list[str]:
    """Join every thread not in ``before`` until ``deadline``; return the names still alive."""
    for thread in threading.enumerate():
        if thread not in before:
            thread.join(max(0.0, deadline - time.monotonic()))
    return sorted(t.name for t in threading.enumerate() if t not in before)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if a thread it started outlives it or a name it registered stays taken.

    Threads that are finishing (a killed process's thread waking up, the timer
    thread going idle) are joined, within `WAIT` in all; no sleeping.
    """
    threads_before = set(threading.enumerate())
    names_before = Process.registered()
    yield
    left = _join_new_threads(threads_before, time.monotonic() + WAIT)
    assert left == [], f"threads left behind: {left}"
    assert Process.registered() == names_before, "names left registered"


@pytest.fixture
def tree_defaults() -> dict[str, Any]:
    """Return the options every tree of the ``tree`` fixture starts with."""
    return TREE_DEFAULTS


@pytest.fixture
def tree(tree_defaults: dict[str, Any]) -> Iterator[Callable[..., Pid]]:
    """Start trees (``tree_defaults``, overridable per call); stop them after the test."""
    started: list[Pid] = []

    def start(**options: Any) -> Pid:
        pid = SummarizerSupervisor.start_link(**{**tree_defaults, **options})
        started.append(pid)
        return pid

    yield start
    for pid in started:
        if Process.alive(pid):
            with contextlib.suppress(OtpError):  # it died between the check and the stop
                Supervisor.stop(pid, "shutdown", 60.0)


# --- a throwaway PostgreSQL server, for the PostgresSink tests ------------------

#: Where Debian's postgresql package puts its binaries (one folder per major version).
PG_BINARIES = "/usr/lib/postgresql/*/bin"


class PostgresServer:
    """A PostgreSQL server of our own: a temp data dir, a private socket dir, no TCP.

    Runs as the ``postgres`` system user when we are root (PostgreSQL refuses
    root), as ourselves otherwise.
    """

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = 5432  # no TCP: the port only names the socket in our own dir
        self.user = "postgres" if os.geteuid() == 0 else None
        self.databases = itertools.count(1)

    def run(self, tool: str, *args: str) -> None:
        """Run a server binary as the server's user; fail with its output if it fails."""
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} {args} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        """Create the cluster: trust auth, no fsync (nothing here must survive a host crash)."""
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on this cluster, waiting for it to finish (start, stop, restart)."""
        options = f"-k {self.root} -c listen_addresses='' -p {self.port} -c fsync=off"
        log = str(self.root / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", *args)

    def running(self) -> bool:
        """Return whether the server runs (``pg_ctl status``)."""
        command = [str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0

    def dsn(self, database: str = "postgres") -> str:
        """Return the URL of ``database`` on this server."""
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def admin(self, sql: str) -> list[Any]:
        """Run one statement as the superuser, autocommit; return its rows, if any."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def fresh_database(self) -> str:
        """Create an empty database; return its URL."""
        name = f"test_{next(self.databases)}"
        self.admin(f"CREATE DATABASE {name}")
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server for the session; stop it and delete it at the end.

    Without the binaries or psycopg the tests skip, saying how to install them,
    except in CI (env ``CI`` set), where they fail.
    """
    found = sorted(Path("/").glob(PG_BINARIES.lstrip("/")), key=lambda p: int(p.parent.name))
    missing = [] if found else ["PostgreSQL server binaries (Debian: apt-get install postgresql)"]
    if importlib.util.find_spec("psycopg") is None:
        missing.append("psycopg (pip install -e '.[dev]')")
    if missing:
        message = f"needs {' and '.join(missing)}; `make system-deps venv` installs them"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests cannot run in CI: {message}")
        pytest.skip(message)
    server = PostgresServer(found[-1], Path(tempfile.mkdtemp(prefix="summarizer-pg-")))
    try:
        server.init()
        server.ctl("start")
        yield server
    finally:
        with contextlib.suppress(AssertionError):
            server.ctl("stop", "-m", "immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> str:
    """Return the URL of a fresh, empty database on the session's server (started if down)."""
    if not postgres_server.running():  # a test may have left it stopped
        postgres_server.ctl("start")
    return postgres_server.fresh_database()
