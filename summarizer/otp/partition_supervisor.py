"""PartitionSupervisor: many copies of one child, and routing a key to one of them.

When one process is a bottleneck, start ``partitions`` copies of it and route
each key to one copy, so the copies share the load (by default one partition
per scheduler, here: per core)::

    PartitionSupervisor.start_link(
        child_spec=Counter.child_spec(None),
        name="Counters",
        partitions=3,
    )
    GenServer.cast(PartitionSupervisor.via("Counters", "user-1"), "incr")
    PartitionSupervisor.partitions("Counters")  # 3

Routing is the BEAM's: ``abs(key) % partitions`` for an int key and
``phash2(key, partitions)`` for anything else, so the same key reaches the
same partition here as in Elixir (users "1", "2", "5" on partition 0 of 3).
An int key therefore lets a caller address partition ``i`` directly, which is
how each of the Livebook's flushers reaches "its" collector.

Children ids are ``0..partitions-1``. A child does not learn its partition
unless ``with_arguments(args, partition) -> args`` puts it into its start
arguments. Between a child's death and its restart, routing returns the dead
pid: a call fails with `NoProcess`, and a cast is dropped, as in Elixir, but
counted in `stats` (lost ``"noproc"``), or kept for the successor when the
child spec's `Mailbox` asks for handoff (see `summarizer.otp.mailbox`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from .child_spec import ChildSpec, validate_name
from .errors import NoProcess
from .gen_server import Ok
from .mailbox import Mailbox, MailboxStats, Place
from .phash2 import phash2
from .process import Pid, Proc, current, is_normal
from .supervisor import Child, Strategy, Supervisor, SupervisorServer, start_supervisor, to_spec
from .system import schedulers_online
from .validate import brief, positive_int

__all__ = ["PartitionStats", "PartitionSupervisor"]


class PartitionStats(NamedTuple):
    """The mailbox counters of every partition, and of casts that found no supervisor."""

    partitions: list[MailboxStats]
    unrouted: dict[str, int]


_CACHE_MAX = 65_536
#: Each partition is an OS thread (the BEAM's limit, 262,144 processes, is for green
#: processes): more partitions than this is a mistake, not a load.
MAX_PARTITIONS = 4_096


def check_partitions(partitions: Any) -> int:
    """Return ``partitions`` (None: `schedulers_online`) if it is an int in 1..MAX_PARTITIONS."""
    n = schedulers_online() if partitions is None else positive_int("partitions", partitions)
    if n > MAX_PARTITIONS:
        raise ValueError(f"partitions must be an integer <= {MAX_PARTITIONS}, got: {n}")
    return n


class Table:
    """Map keys to partitions and partitions to their places, read lock-free by routing."""

    __slots__ = ("cache", "n", "places", "proc")

    def __init__(self, proc: Proc, places: list[Place]) -> None:
        self.proc = proc
        self.n = len(places)
        self.places = places
        self.cache: dict[Any, int] = {}

    def partition(self, key: Any) -> int:
        """Return the partition of ``key`` (cached)."""
        p = self.cache.get(key)
        if p is None:
            if isinstance(key, int) and not isinstance(key, bool):
                return abs(key) % self.n
            p = phash2(key, self.n)
            if len(self.cache) >= _CACHE_MAX:
                self.cache.clear()
            self.cache[key] = p
        return p

    def whereis(self, key: Any) -> Pid | None:
        """Return the pid serving ``key`` now (maybe dead, between death and restart)."""
        if not self.proc.alive:
            return None
        proc = self.places[self.partition(key)].proc
        return None if proc is None else proc.pid


_tables: dict[str, Table] = {}
_tables_lock = threading.Lock()
_unrouted: dict[str, Counter[str]] = {}  # casts to a name no PartitionSupervisor ever ran as
#: name -> what takes casts to it while none runs here (see `PartitionSupervisor.elsewhere`)
_elsewhere: dict[str, Callable[[Any, Any, int], bool]] = {}


def table(name: str) -> Table | None:
    """Return the routing table of the live PartitionSupervisor ``name``, or None."""
    t = _tables.get(name)
    return t if t is not None and t.proc.alive else None


class Via:
    """Address the partition of ``key`` under a PartitionSupervisor ``name``."""

    __slots__ = ("key", "name")

    def __init__(self, name: str, key: Any) -> None:
        self.name = name
        self.key = key

    def __repr__(self) -> str:
        return f"via(PartitionSupervisor, ({self.name!r}, {self.key!r}))"

    def whereis(self) -> Pid | None:
        """Return the pid this address names now, or None."""
        t = table(self.name)
        return None if t is None else t.whereis(self.key)


class _PartitionServer(SupervisorServer):
    def init(self, arg: Any) -> Ok:
        name, n, flags = arg
        me = current()
        assert me is not None
        with _tables_lock:
            old = _tables.get(name)
            if old is not None and old.n == n and not old.places[0].closed:
                places = old.places  # restarted by its parent: the books go on
            else:
                for place in [] if old is None else old.places:
                    place.finish()  # a fresh start: what the last one kept is lost, counted
                _unrouted.pop(name, None)
                places = [Place(spec.mailbox or Mailbox()) for spec in flags.children]
            self.table = _tables[name] = Table(me, places)
        return super().init(flags)

    def place_for(self, index: int, spec: ChildSpec) -> Place | None:
        if index < self.table.n:
            return self.table.places[index]
        return super().place_for(index, spec)  # a child added later with start_child

    def keeps_places(self, reason: Any) -> bool:
        """Keep the places when the parent may start a successor: on a give-up or a crash."""
        return self.giving_up or not is_normal(reason)


class PartitionSupervisor:
    """Start partitioned children and route keys to them."""

    @staticmethod
    def start_link(
        *,
        child_spec: Any,
        name: str,
        partitions: int | None = None,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5,
        with_arguments: Callable[[list[Any], int], Any] | None = None,
    ) -> Pid:
        """Start ``partitions`` copies of ``child_spec`` under a supervisor named ``name``."""
        validate_name(name)
        if name is None:
            raise TypeError("name must be a non-empty str, got: None")
        n = check_partitions(partitions)
        if with_arguments is not None and not callable(with_arguments):
            raise TypeError(f"with_arguments must be callable, got: {brief(with_arguments)}")
        spec = to_spec(child_spec)
        children = []
        for i in range(n):
            fn, args, *kwargs = spec.start
            if with_arguments is not None:
                args = with_arguments(list(args), i)
                if not isinstance(args, (list, tuple)):
                    raise TypeError(
                        f"with_arguments must return a list of args, got: {brief(args)}"
                    )
            children.append(replace(spec, id=i, start=(fn, tuple(args), *kwargs)))
        flags = Supervisor.init(
            children, strategy=strategy, max_restarts=max_restarts, max_seconds=max_seconds
        )
        return start_supervisor(_PartitionServer, (name, n, flags), name)

    @staticmethod
    def child_spec(options: dict[str, Any]) -> ChildSpec:
        """Return the spec that starts a PartitionSupervisor under another supervisor."""
        if not isinstance(options, dict) or "name" not in options:
            raise TypeError(f"options must be a dict with a 'name', got: {brief(options)}")
        return ChildSpec(
            id=options["name"],
            start=(PartitionSupervisor.start_link, (), dict(options)),
            shutdown="infinity",
            type="supervisor",
            modules=["PartitionSupervisor"],
        )

    @staticmethod
    def cast(name: str, key: Any, msg: Any, units: int = 1) -> None:
        """Cast ``msg`` to the partition of ``key``: the fast path of a via cast.

        ``GenServer.cast(PartitionSupervisor.via(name, key), msg)`` in one step,
        counted in `stats`: a cast no process can take is counted lost (or kept
        for the partition's next process, when its child spec's `Mailbox` hands
        off), never silently dropped. ``units`` says how many units the message
        carries for the counters (a batch of ``units`` events). Never fails.
        """
        t = _tables.get(name)
        if t is None:
            other = _elsewhere.get(name)
            if other is not None and other(key, msg, units):
                return
            with _tables_lock:
                _unrouted.setdefault(name, Counter())["noproc"] += units
            return
        p = t.cache.get(key)
        if p is None:
            p = t.partition(key)
        place = t.places[p]
        proc = place.fast
        if proc is not None and units == 1:  # Place.cast inlined: open, unbounded
            place.accepted.bump()
            proc.put(msg)
        else:  # closed, bounded, not started, or a batch: the general path
            place.cast(msg, units)

    @staticmethod
    def elsewhere(name: str, handler: Callable[[Any, Any, int], bool] | None) -> None:
        """Let ``handler(key, msg, units)`` take casts to ``name`` while none ever ran here.

        It returns whether it took the cast (sent it to another process or host);
        one it did not take is counted unrouted. None removes it. The running
        supervisor's fast path never looks here.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got: {brief(name)}")
        if handler is None:
            _elsewhere.pop(name, None)
        elif not callable(handler):
            raise TypeError(f"handler must be callable or None, got: {brief(handler)}")
        else:
            _elsewhere[name] = handler

    @staticmethod
    def partition(name: str, key: Any) -> int | None:
        """Return the partition ``key`` routes to under ``name``, or None if none runs."""
        t = table(name)
        return None if t is None else t.partition(key)

    @staticmethod
    def route(name: str, key: Any) -> Pid | None:
        """Return the pid serving ``key`` under ``name`` now, or None if none runs."""
        t = table(name)
        return None if t is None else t.whereis(key)

    @staticmethod
    def stats(name: str) -> PartitionStats:
        """Return the counters of ``name``'s partitions: of the running or the last one."""
        t = _tables.get(name)
        unrouted = dict(_unrouted.get(name, {}))
        return PartitionStats([] if t is None else [p.stats() for p in t.places], unrouted)

    @staticmethod
    def close(name: str) -> None:
        """Refuse casts to ``name`` from now on (counted ``"closed"``), ahead of a stop.

        Without it, producers keep filling the mailboxes while a stop drains them,
        and a stop under full load chases the backlog. Idempotent.
        """
        t = _tables.get(name)
        if t is not None:
            gone = not t.proc.alive  # no supervisor runs to start a successor: finish
            for place in t.places:
                place.finish() if gone else place.close()

    @staticmethod
    def via(name: str, key: Any) -> Via:
        """Return an address that routes ``key`` to its partition at send time."""
        return Via(name, key)

    @staticmethod
    def partitions(name: str) -> int:
        """Return how many partitions ``name`` runs."""
        t = table(name)
        if t is None:
            raise NoProcess(name)
        return t.n

    @staticmethod
    def which_children(name: str) -> list[Child]:
        """Return the partitions as ``(id, pid, type, modules)``, ids in reverse order."""
        return Supervisor.which_children(name)

    @staticmethod
    def count_children(name: str) -> dict[str, int]:
        """Return the counts ``specs``, ``active``, ``supervisors`` and ``workers``."""
        return Supervisor.count_children(name)
