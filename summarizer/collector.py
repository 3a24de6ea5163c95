"""EventCollector: buffer events cast from many threads, hand them out on a call.

One collector runs per partition under the PartitionSupervisor
``EventCollectorPartitionSupervisor``; a user's events always reach the same
partition (``phash2(user.id, partitions)``, as the BEAM routes them)::

    EventCollector.record_event(User("1", "MegaCorp", "enterprise"))  # a cast
    EventCollector.flush_events(0)  # {"1": 1}: partition 0's buffer, now reset

State is ``count`` and ``data`` (user id -> events). Unlike the Livebook's
collector it traps exits, so ``terminate`` runs on a supervisor's shutdown and
after a crash: it first takes the casts still queued in its mailbox, then hands
the buffer to the flush path (sinks and ``on_flush``). A graceful stop, or an
exception inside a callback, therefore loses nothing; a ``kill`` loses the
buffer, as on the BEAM, and the loss is counted (see `summarizer.accounting`).
Casts that find the collector dead (between a crash or a kill and the restart),
or still queued when it crashed, are adopted by the next collector of the
partition instead of dropped, so only a ``kill`` loses events.
A ``flush_events`` whose caller is gone by the time it is answered (the call
timed out, or the collector was killed meanwhile) hands its events to the flush
path itself instead of dropping them.

The message. The seed casts ``{:record_event, user}``; ``record_event`` casts
the `User` itself, and ``handle_cast`` takes both forms. On the BEAM the tag
costs nothing; here a tuple per event is an allocation the garbage collector
must track, and with a backlog in the mailboxes its collections rescan every
queued tuple: casting the bare struct doubles the throughput under load and
cuts a queued event from about 80 bytes to one queue slot.
"""

from __future__ import annotations

import logging
from typing import Any

from .accounting import Ledger
from .otp import GenServer, NoReply, Ok, PartitionSupervisor, Process, Reply
from .otp.partition_supervisor import _tables
from .otp.validate import brief
from .user import User

__all__ = ["EventCollector"]

log = logging.getLogger("summarizer")

NAME = "EventCollectorPartitionSupervisor"


def _address(partition: Any) -> Any:
    """Return the via address of collector ``partition``; raise if there is no such one."""
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise TypeError(f"partition must be an int, got: {brief(partition)}")
    n = PartitionSupervisor.partitions(NAME)
    if not 0 <= partition < n:
        raise ValueError(f"partition must be in 0..{n - 1}, got: {partition}")
    return PartitionSupervisor.via(NAME, partition)


def _is_tagged_event(request: Any) -> bool:
    """Return whether ``request`` is the seed's ``("record_event", user)`` message."""
    return (
        request.__class__ is tuple
        and len(request) == 2
        and request[0] == "record_event"
        and isinstance(request[1], User)
    )


def _event(request: Any) -> User:
    """Return the user of a ``("record_event", user)`` cast; raise if it is no event."""
    if not _is_tagged_event(request):
        raise ValueError(f"EventCollector got an unknown cast: {brief(request)}")
    user: User = request[1]
    return user


class Buffer:
    """Hold a collector's events since its last flush (mutated in place)."""

    __slots__ = ("count", "data")

    def __init__(self) -> None:
        self.count = 0
        self.data: dict[Any, int] = {}

    def __repr__(self) -> str:
        return f"%{{count: {self.count}, data: {self.data!r}}}"


class _Books:
    """Hold the ledger of the running tree, so the hot path finds it in one step."""

    ledger = Ledger(0)


def ledger() -> Ledger:
    """Return the ledger of the running (or last) tree."""
    return _Books.ledger


class EventCollector(GenServer):
    """Aggregate the events cast by ``record_event`` per user until flushed."""

    # -- client API --------------------------------------------------------

    @staticmethod
    def record_event(user: User) -> None:
        """Cast one event for ``user`` to its partition's collector; never blocks."""
        if user.__class__ is not User and not isinstance(user, User):
            raise TypeError(f"user must be a User, got: {brief(user)}")
        books = _Books.ledger
        t = _tables.get(NAME)  # table(NAME), inlined: this is the hot path
        if t is None or books.closed or not t.proc.alive:  # no tree, or one that is stopping
            books.lose(None, "no_tree", 1)
            return
        p = t.cache.get(user.id)
        if p is None:
            p = t.partition(user.id)
        next(books.accepted[p])
        pid = t.pids[p]
        if pid is None:  # not started yet: its collector will adopt the event
            books.adopt(p, (user.id,), "noproc")
        elif books.max_mailbox is None or books.admit(p, pid):
            pid._proc.put(user)  # the event itself: see "The message" above

    @staticmethod
    def flush_events(partition: int, timeout: float | None = 5.0) -> dict[Any, int]:
        """Return ``partition``'s buffer and reset it (a call)."""
        data: dict[Any, int] = GenServer.call(_address(partition), "flush_events", timeout)
        return data

    @staticmethod
    def pending(partition: int, timeout: float | None = 5.0) -> int:
        """Return how many events ``partition`` holds once its mailbox is read."""
        count: int = GenServer.call(_address(partition), "pending", timeout)
        return count

    # -- server callbacks --------------------------------------------------

    def init(self, options: dict[str, Any]) -> Ok:
        Process.flag("trap_exit", True)
        self.partition: int = options["partition"]
        self.ledger: Ledger = options["ledger"]
        if self.ledger.max_mailbox is not None:
            me = Process.self()
            assert me is not None
            room = self.ledger.open_mailbox(me)
            unbounded = self.handle_cast

            def handle_cast(request: Any, state: Buffer) -> NoReply:
                room.taken()
                return unbounded(request, state)

            self.handle_cast = handle_cast  # type: ignore[method-assign]
        buffer = self._fresh()
        self._adopt_orphans(buffer)
        return Ok(buffer)

    def _adopt_orphans(self, state: Buffer) -> None:
        """Take the events cast while this partition had no live collector."""
        data = state.data
        for uid, n in self.ledger.claim(self.partition).items():
            data[uid] = data.get(uid, 0) + n
            state.count += n

    def _fresh(self) -> Buffer:
        buffer = Buffer()
        self._noreply = NoReply(buffer)  # returned by every cast: no allocation per event
        return buffer

    def handle_cast(self, request: Any, state: Buffer) -> NoReply:
        if request.__class__ is User or isinstance(request, User):
            user = request
        else:  # the seed's ("record_event", user), cast directly: count it as accepted
            user = _event(request)
            next(self.ledger.accepted[self.partition])
        data = state.data
        uid = user.id
        data[uid] = data.get(uid, 0) + 1
        state.count += 1
        return self._noreply

    def handle_call(self, request: Any, from_: Any, state: Buffer) -> Reply | NoReply:
        if request == "flush_events":
            self._adopt_orphans(state)
            data = state.data
            if state.count > 0:
                log.info("EventCollector:%r - %d events flushed", Process.self(), state.count)
                self.ledger.flush(self.partition, state.count)
            GenServer.reply(from_, data)
            if data and from_.value is not data:
                # The caller is gone (it timed out, or we were killed meanwhile) and
                # the reply was dropped: deliver the events from here, not lose them.
                self.ledger.deliver(self.partition, data)
            return NoReply(self._fresh())
        if request == "pending":
            return Reply(state.count, state)
        raise ValueError(f"EventCollector got an unknown call: {request!r}")

    def terminate(self, reason: Any, state: Buffer) -> None:
        """Take the casts still queued, then flush the buffer to the sinks."""
        for msg in self.take_queued_casts(reason):  # later ones go to the next collector
            try:
                self.handle_cast(msg, state)
            except Exception:  # another malformed cast: skip it, keep the buffer
                log.exception("EventCollector:%r - dropped a bad cast: %r", Process.self(), msg)
        self._adopt_orphans(state)
        if state.count:
            count, data = state.count, state.data
            state.count, state.data = 0, {}  # handed over: a kill from here on destroys nothing
            self.ledger.flush(self.partition, count)
            self.ledger.deliver(self.partition, data)

    # -- accounting hooks --------------------------------------------------

    def lost_messages(self, msgs: list[Any], reason: Any) -> None:
        """Count the events a kill destroyed; hand the others to the next collector.

        Casts that reach this collector dead (between its death and its restart) or
        that were still queued when it crashed are adopted by its successor, unless
        the tree is stopping (no successor will come): then they are lost, counted.
        """
        ids = [m.id for m in msgs if isinstance(m, User)]  # what record_event accepted
        tagged = [m[1].id for m in msgs if _is_tagged_event(m)]  # the seed's, cast directly
        for _ in tagged:  # enter the books now, as handle_cast would have entered them
            next(self.ledger.accepted[self.partition])
        ids += tagged  # a stray cast (a bad request) is no event
        if reason == "killed":
            self.ledger.lose(self.partition, "killed", len(ids))
        else:
            self.ledger.adopt(self.partition, ids, "noproc" if reason == "noproc" else "exit")

    def lost_state(self, state: Buffer, reason: Any) -> None:
        self.ledger.lose(self.partition, "killed", state.count)
