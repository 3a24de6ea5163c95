"""EventCollector: buffer events cast from many threads, hand them out on a call.

One collector runs per partition under the PartitionSupervisor `COLLECTORS`; a
user's events always reach the same partition (``phash2(user.id, partitions)``,
as the BEAM routes them)::

    EventCollector.record_event(User("1", "MegaCorp", "enterprise"))  # a cast
    EventCollector.flush_events(0)  # {"1": 1}: partition 0's buffer, now reset

State is a `Buffer`: ``count`` and ``data`` (user id -> events). Unlike the
Livebook's collector it traps exits, so ``terminate`` runs on a supervisor's
shutdown and after a crash, and flushes the buffer to the sinks: a graceful stop
or an exception in a callback loses nothing.

The runtime does the rest (see `summarizer.otp.mailbox`): the collector's child
spec asks its supervisor for a `Mailbox` that counts every event cast to it, and
hands the casts a crashed collector left queued, or that reached it dead, to its
successor. Only a ``kill`` loses events, as on the BEAM, and they are counted.

The message. The Livebook casts ``{:record_event, user}``; ``record_event``
casts the `User` itself, and ``handle_cast`` takes both forms, and the lists of
users ``record_events`` sends. On the BEAM the tag costs nothing; here a tuple
per event is an allocation the garbage collector must track: casting the bare
struct doubles the throughput under load.

Batches. ``record_events(users)`` counts the events per user at the producer
and casts one `Counter` (user id -> events) per partition: a batch of 1,000
costs about what counting it in a dict costs. The producer-side
`summarizer.recorder.Recorder` sends through it. In a Ray worker, where no
tree ever ran, both calls send to a ``backend="ray"`` tree's actors instead
(`elsewhere`, `summarizer.ray_producers`).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from operator import attrgetter
from typing import Any

from .options import COLLECTORS, TreeOptions
from .otp import ChildSpec, From, GenServer, Mailbox, NoReply, Ok, PartitionSupervisor, Process
from .otp.partition_supervisor import Via
from .otp.validate import brief
from .user import User

__all__ = ["Buffer", "EventCollector", "address", "count_ids", "counts_in", "elsewhere"]

log = logging.getLogger("summarizer")


def address(partition: Any) -> Via:
    """Return the via address of collector ``partition``; raise if there is no such one."""
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise TypeError(f"partition must be an int, got: {brief(partition)}")
    n = PartitionSupervisor.partitions(COLLECTORS)
    if not 0 <= partition < n:
        raise ValueError(f"partition must be in 0..{n - 1}, got: {partition}")
    return PartitionSupervisor.via(COLLECTORS, partition)


def counts_in(request: Any) -> Mapping[Any, int]:
    """Return the events a cast carries per user id; raise if it carries none.

    A cast is a `User` (``record_event``), a mapping of user ids to counts
    (``record_events``), or the Livebook's ``("record_event", user)``.
    """
    if isinstance(request, User):
        return {request.id: 1}
    if isinstance(request, Mapping) and all(n.__class__ is int and n > 0 for n in request.values()):
        return request
    if (
        request.__class__ is tuple
        and len(request) == 2
        and request[0] == "record_event"
        and isinstance(request[1], User)
    ):
        return {request[1].id: 1}
    raise ValueError(f"EventCollector got an unknown cast: {brief(request)}")


def count_ids(users: Iterable[User]) -> Counter[Any]:
    """Return the events per user id of ``users``; raise unless each is a User."""
    if isinstance(users, (User, str, bytes)) or not isinstance(users, Iterable):
        raise TypeError(f"users must be an iterable of User, got: {brief(users)}")
    batch = users if isinstance(users, (list, tuple)) else list(users)
    for kind in set(map(type, batch)):  # one check per type, not per event
        if not issubclass(kind, User):
            bad = next(u for u in batch if type(u) is kind)
            raise TypeError(f"users must hold only User, got: {brief(bad)}")
    return Counter(map(_USER_ID, batch))


def elsewhere(key: Any, msg: Any, units: int = 0) -> bool:
    """Send a cast for a tree that never ran here to a Ray tree's actors; return if sent.

    Only a Ray worker of a ``backend="ray"`` tree sends (`summarizer.ray_producers`);
    elsewhere nothing takes the cast and the runtime counts it unrouted.
    """
    if "ray" not in sys.modules:  # no Ray here, so no tree elsewhere either
        return False
    from . import ray_producers

    return ray_producers.elsewhere(msg)


def _weigh(request: Any) -> int:
    """Return how many events a cast carries for the books; a bad cast carries none."""
    try:
        return sum(counts_in(request).values())
    except ValueError:
        return 0


_USER_ID = attrgetter("id")


class Buffer:
    """Hold a collector's events since its last flush (mutated in place)."""

    __slots__ = ("count", "data")

    def __init__(self) -> None:
        self.count = 0
        self.data: dict[Any, int] = {}

    def __repr__(self) -> str:
        return f"%{{count: {self.count}, data: {self.data!r}}}"


class EventCollector(GenServer):
    """Aggregate the events cast by ``record_event`` per user until flushed."""

    @classmethod
    def child_spec(cls, options: TreeOptions) -> ChildSpec:  # type: ignore[override]
        """Return the spec of a collector whose events the runtime counts and hands on."""
        mailbox = Mailbox(True, options.max_mailbox, options.overflow, _weigh, _held)
        return replace(super().child_spec(options), mailbox=mailbox)

    # -- client API --------------------------------------------------------

    @staticmethod
    def record_event(user: User) -> None:
        """Cast one event for ``user`` to its partition's collector; never blocks."""
        if user.__class__ is not User and not isinstance(user, User):
            raise TypeError(f"user must be a User, got: {brief(user)}")
        PartitionSupervisor.cast(COLLECTORS, user.id, user)

    @staticmethod
    def record_events(users: Iterable[User]) -> None:
        """Cast many events at once: their counts per user, one message per partition."""
        counts, parts = count_ids(users), dict[Any, Counter[Any]]()
        if PartitionSupervisor.partition(COLLECTORS, 0) is None and elsewhere(None, counts):
            return  # no tree here: a Ray worker sent them to the tree's actors
        for uid, n in counts.items():
            p = PartitionSupervisor.partition(COLLECTORS, uid)
            parts.setdefault(uid if p is None else p, Counter())[uid] = n
        for key, counts in parts.items():  # an int key routes to that partition
            PartitionSupervisor.cast(COLLECTORS, key, counts, counts.total())

    @staticmethod
    def flush_events(partition: int, timeout: float | None = 5.0) -> dict[Any, int]:
        """Return ``partition``'s buffer and reset it (a call)."""
        data: dict[Any, int] = GenServer.call(address(partition), "flush_events", timeout)
        return data

    # -- server callbacks --------------------------------------------------

    def init(self, options: TreeOptions) -> Ok:
        Process.flag("trap_exit", True)  # so that terminate flushes on a shutdown
        self.partition, self.outlet = options.part, options.outlet
        return Ok(self._fresh())

    def _fresh(self) -> Buffer:
        buffer = Buffer()
        self._noreply = NoReply(buffer)  # returned by every cast: no allocation per event
        return buffer

    def handle_cast(self, request: Any, state: Buffer) -> NoReply:
        data = state.data
        if request.__class__ is User:  # record_event's cast: one event
            uid = request.id
            data[uid] = data.get(uid, 0) + 1
            state.count += 1
        else:  # record_events' counts per user, or the Livebook's ("record_event", user)
            for uid, n in counts_in(request).items():
                data[uid] = data.get(uid, 0) + n
                state.count += n
        return self._noreply

    def handle_call(self, request: Any, from_: From, state: Buffer) -> NoReply:
        if request != "flush_events":
            raise ValueError(f"EventCollector got an unknown call: {brief(request)}")
        if state.count > 0:
            log.info("EventCollector:%r - %d events flushed", Process.self(), state.count)
        self.outlet.count(self.partition, state.count)
        if not GenServer.reply(from_, state.data):  # the caller gave up: flush from here
            self.outlet.deliver(self.partition, state.data)
        return NoReply(self._fresh())

    def terminate(self, reason: Any, state: Buffer) -> None:
        """Flush the buffer to the sinks: a crash or a graceful stop loses nothing."""
        count, data = state.count, state.data
        state.count, state.data = 0, {}  # handed over: a kill from here on destroys nothing
        self.outlet.count(self.partition, count)
        self.outlet.deliver(self.partition, data)


def _held(state: Buffer) -> int:
    return state.count


PartitionSupervisor.elsewhere(COLLECTORS, elsewhere)  # record_event in a Ray worker
