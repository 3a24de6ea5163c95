"""Ray backend: each collector's buffer in a named Ray actor, the OTP tree in the driver.

For events that come from many processes or machines. The tree is the same
(supervisors, flushers, intensity, sinks, ``on_flush``); only the buffers move::

    sup = SummarizerSupervisor.start_link(partitions=3, backend="ray")  # ray.init() here
    EventCollector.record_event(User("1", "MegaCorp", "enterprise"))  # from the driver


    @ray.remote
    def produce(users):  # in any Ray task or actor of this job
        with Recorder(batch=1000) as rec:  # one remote call per partition and batch
            for user in users:
                rec.record(user)


    ray.get([produce.remote(chunk) for chunk in chunks])
    Supervisor.stop(sup)  # flushes every actor's buffer, then kills the actors

What runs where
    Collector ``i`` is the Ray actor ``EventCollectorPartitionSupervisor.i`` in the
    job's namespace, owned by a proxy GenServer, `RayCollector`, that takes the
    collector's place under `COLLECTORS`. ``record_event`` in the driver casts
    to the proxy as on threads (the runtime counts the cast, bounds and hands
    off the proxy's mailbox); the proxy counts events per user and ships them
    to its actor every `SHIP_AT` events and at each flush. In a Ray task or
    actor (no tree in that process) ``record_event`` and ``record_events`` send
    ``{user_id: n}`` straight to the actor of ``phash2(user.id, partitions)``
    and wait for its acknowledgement: use a `Recorder` there, so one call
    carries a batch (`summarizer.ray_producers`).

No silent loss
    Every batch carries ``(producer, sequence number)`` and is acknowledged.
    A batch that timed out is sent again under the same number, so the actor
    counts it once; Ray retries calls to an actor it restarts. A batch whose
    actor died goes to the actor that has the name now, under a new number. A
    remote producer retries until the batch is acknowledged or `CALL_TIMEOUT`
    passes, then raises.

Restarts keep their OTP meaning
    Ray restarts a crashed actor (``max_restarts=-1``) with an empty buffer; the
    proxy notices at its next call and exits, so its supervisor counts the
    restart against ``max_restarts``/``max_seconds`` and escalates past them, as
    on threads. ``Process.exit(proxy, "kill")`` is ``ray.kill`` of its actor.
    What a dead actor held is counted lost as ``"killed"``: the proxy knows it
    from its last look at the actor (each flush), plus the ships that
    incarnation acknowledged since. Events that other processes sent to the
    actor after that last look and that died with it are in neither
    ``accepted`` nor ``lost``: the books balance without them.

Accounting
    ``accepted`` counts the driver's casts (the runtime) and the events the
    actor acknowledged to remote producers, learned at each flush
    (`count_accepted`); ``pending`` is the proxy's unshipped events plus what
    its actor held at the last look.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import socket
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from .collector import EventCollector, counts_in
from .options import COLLECTORS, TreeOptions
from .otp import (
    CallTimeout,
    ChildSpec,
    ExitError,
    From,
    GenServer,
    NoReply,
    Ok,
    PartitionSupervisor,
    Process,
    Reply,
    Stop,
)
from .otp.mailbox import count_accepted, count_lost
from .otp.process import is_normal
from .outlet import Outlet
from .user import User

__all__ = [
    "CALL_TIMEOUT",
    "SHIP_AT",
    "CollectorActor",
    "Proxied",
    "RayCollector",
    "actor_name",
    "collector_spec",
    "connect",
    "kill_actors",
    "look",
    "prepare",
    "start_actors",
]

log = logging.getLogger("summarizer")

INSTALL_HINT = "pip install 'summarizer[ray]'"
#: Seconds to reach a cluster (``ray_address``) before giving up with an error.
CONNECT_TIMEOUT = 10.0
#: Seconds an actor gets to start (a new worker process: a few seconds on 2 cores).
READY_TIMEOUT = 120.0
#: Seconds one call to an actor may take, retries included.
CALL_TIMEOUT = 30.0
#: Driver-side events a proxy buffers before it ships them to its actor.
SHIP_AT = 10_000
#: Ships a proxy (or a remote producer's thread) lets run before it waits for the oldest.
MAX_IN_FLIGHT = 8
#: The ``ray.init`` options used when the tree starts Ray on this machine.
LOCAL_INIT: dict[str, Any] = {
    "include_dashboard": False,
    "object_store_memory": 100 * 2**20,
    "log_to_driver": False,
    "configure_logging": False,
}
LOST = "ray_actor_lost"  # the exit reason of a proxy whose actor died or restarted
CLOSED = "closed"  # what an actor answers to a batch once the tree's stop took its buffer


def import_ray() -> Any:
    """Return the ``ray`` module; raise an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"backend='ray' needs Ray, which is not installed: {INSTALL_HINT}") from e
    return ray


def _reachable(address: str, timeout: float) -> None:
    """Raise ConnectionError unless a TCP connection to ``address`` opens within ``timeout``."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"ray_address must be 'host:port' or 'ray://host:port', got: {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address} within {timeout:g} s: {e}; "
            "start one with `ray start --head` there, or pass ray_address=None to start Ray here"
        ) from None


_hooked = False  # whether the tree's exit hook is registered after Ray's


def connect(address: str | None = None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Start Ray on this machine (None) or join the cluster at ``address``; no-op if joined."""
    global _hooked
    ray = import_ray()
    if not ray.is_initialized():
        if address is None:
            ray.init(**LOCAL_INIT)
        else:
            if address != "auto":
                _reachable(address, timeout)
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    if not _hooked:  # again, after Ray's hook: atexit runs it first, while Ray is up
        from .tree import stop_at_exit

        atexit.register(stop_at_exit)
        _hooked = True


def actor_name(partition: int) -> str:
    """Return the Ray name of collector ``partition``'s actor."""
    return f"{COLLECTORS}.{partition}"


def prepare(options: TreeOptions) -> TreeOptions:
    """Start or join Ray for a ``backend="ray"`` tree, so errors surface at ``start_link``."""
    if options.backend == "ray":
        connect(options.ray_address)
    return options


def look(timeout: float | None = 5.0) -> None:
    """Make each running proxy look at its actor: remote producers' events enter the books."""
    for p in range(len(PartitionSupervisor.stats(COLLECTORS).partitions)):
        pid = PartitionSupervisor.route(COLLECTORS, p)
        try:
            if pid is not None:
                GenServer.call(pid, "look", timeout)
        except CallTimeout:  # busy past the bound: the books cannot be read now
            raise
        except ExitError:  # down, or gone meanwhile: its successor looks when it starts
            continue


def collector_spec(options: TreeOptions) -> ChildSpec:
    """Return the collectors' child spec for ``options.backend``; start Ray's actors for Ray."""
    if options.backend == "thread":
        return EventCollector.child_spec(options)
    connect(options.ray_address)
    start_actors(options.partitions)
    return RayCollector.child_spec(options)


# -- the actor ---------------------------------------------------------------------


class CollectorActor:
    """Hold one partition's buffer in a Ray actor: user id -> events since the last flush."""

    def __init__(self, partition: int, partitions: int) -> None:
        self.partition = partition
        self.partitions = partitions
        self.incarnation = uuid.uuid4().hex  # new at each (re)start: a proxy sees restarts
        self.data: dict[Any, int] = {}
        self.held = 0
        self.accepted = 0  # events acknowledged to remote producers, this incarnation
        self.seen: dict[str, int] = {}  # producer -> last sequence number applied
        self.closed = False  # the tree's stop took the buffer: later batches are refused

    def ready(self) -> tuple[str, int]:
        """Return this incarnation and the tree's partition count."""
        return self.incarnation, self.partitions

    def add(self, producer: str, seq: int, counts: dict[Any, int], remote: bool) -> str:
        """Add a batch unless this producer's batch ``seq`` was added already.

        Return the incarnation that holds it, or `CLOSED` once the tree's stop took
        the buffer: the producer then knows the batch was not recorded.
        """
        if self.closed:
            return CLOSED
        if seq <= self.seen.get(producer, -1):
            return self.incarnation  # a retry of a batch counted once already
        self.seen[producer] = seq
        data = self.data
        n = 0
        for uid, k in counts.items():
            data[uid] = data.get(uid, 0) + k
            n += k
        self.held += n
        if remote:
            self.accepted += n
        return self.incarnation

    def stats(self) -> tuple[int, int, str]:
        """Return (events held, events accepted from remote producers, incarnation)."""
        return self.held, self.accepted, self.incarnation

    def flush(self) -> tuple[dict[Any, int], int, str]:
        """Return the buffer and reset it, with the accepted count and incarnation."""
        data, self.data, self.held = self.data, {}, 0
        return data, self.accepted, self.incarnation

    def close(self) -> tuple[dict[Any, int], int, str]:
        """Flush for the last time: batches that come after are refused, not lost unseen.

        Ray orders calls per caller only, so a producer's batch may run after the
        stop's last flush; it gets `CLOSED` back instead of an acknowledgement.
        """
        self.closed = True
        return self.flush()


_remote_class: Any = None
_owned: dict[str, Any] = {}  # actor name -> the driver's handle, which keeps the actor alive


def _actor_class() -> Any:
    """Return `CollectorActor` as a Ray actor class (restarted by Ray, retried calls)."""
    global _remote_class
    if _remote_class is None:
        ray = import_ray()
        _remote_class = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(CollectorActor)
    return _remote_class


def _spawn(partition: int, partitions: int) -> Any:
    """Create collector ``partition``'s actor, waiting for a dead namesake's name to free."""
    ray = import_ray()
    name = actor_name(partition)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            actor = _actor_class().options(name=name).remote(partition, partitions)
        except ValueError:  # the name is still taken by an actor being killed
            if time.monotonic() > deadline:
                raise
            try:
                ray.get_actor(name)
            except ValueError:
                continue
            time.sleep(0.01)  # waiting for Ray's registry, not for one of our threads
        else:
            _owned[name] = actor  # Ray collects an actor nobody holds a handle to, named or not
            return actor


def start_actors(partitions: int) -> None:
    """Create the tree's actors at once and wait until each answers (in parallel)."""
    ray = import_ray()
    actors = [_spawn(p, partitions) for p in range(partitions)]
    ray.get([a.ready.remote() for a in actors], timeout=READY_TIMEOUT)


def kill_actors(partitions: int) -> None:
    """Kill the tree's actors for good, if any are left."""
    ray = import_ray()
    for p in range(partitions):
        name = actor_name(p)
        _owned.pop(name, None)
        with contextlib.suppress(ValueError):  # none by that name: nothing to kill
            ray.kill(ray.get_actor(name), no_restart=True)


# -- the proxy in the tree ---------------------------------------------------------


class Proxied:
    """Hold a proxy's state: its unshipped events, and what it knows its actor holds.

    ``count`` is every event the partition holds as far as the proxy knows: its
    own, what the actor held at the last look (``held_seen``) and the events of
    ships it acknowledged since (``unlooked``). A kill counts them all lost.
    """

    __slots__ = ("data", "held_seen", "local", "unlooked")

    def __init__(self) -> None:
        self.data: dict[Any, int] = {}
        self.local = 0
        self.held_seen = 0
        self.unlooked = 0

    @property
    def count(self) -> int:
        """Return the events this partition holds, as far as the proxy knows."""
        return self.local + self.held_seen + self.unlooked

    def __repr__(self) -> str:
        return f"%{{count: {self.count}, local: {self.local}, data: {self.data!r}}}"


def _held(state: Proxied) -> int:
    return state.count


_handovers: dict[str, threading.Event] = {}  # actor name -> set when its last proxy is done
_handovers_lock = threading.Lock()
#: actor name -> (incarnation, its accepted count already in the books), across proxies
_entered: dict[str, tuple[str, int]] = {}


class RayCollector(GenServer):
    """Stand in for collector ``partition`` in the tree; its buffer lives in a Ray actor."""

    @classmethod
    def child_spec(cls, options: TreeOptions) -> ChildSpec:  # type: ignore[override]
        """Return the spec of a proxy counted and handed on as a collector, held included."""
        mailbox = EventCollector.child_spec(options).mailbox
        assert mailbox is not None
        return replace(super().child_spec(options), mailbox=replace(mailbox, held=_held))

    def init(self, options: TreeOptions) -> Ok:
        Process.flag("trap_exit", True)  # so that terminate flushes on a shutdown
        self.ray = ray = import_ray()
        self.partition, self.outlet = options.part, options.outlet
        self.name = actor_name(self.partition)
        self.done = threading.Event()  # set when this proxy no longer touches the actor
        with _handovers_lock:
            before, _handovers[self.name] = _handovers.get(self.name), self.done
        if before is not None:
            before.wait(CALL_TIMEOUT)  # a killed proxy may still be counting its actor's loss
        try:
            actor = ray.get_actor(self.name)
            self.incarnation, _ = ray.get(actor.ready.remote(), timeout=READY_TIMEOUT)
        except (ValueError, ray.exceptions.RayActorError):  # killed for good: start a new one
            actor = _spawn(self.partition, options.partitions)
            self.incarnation, _ = ray.get(actor.ready.remote(), timeout=READY_TIMEOUT)
        self.actor = actor
        self.producer = f"driver-{uuid.uuid4().hex}"
        self.seq = 0
        entered = _entered.get(self.name)
        self.accepted_seen = entered[1] if entered and entered[0] == self.incarnation else 0
        self.in_flight: list[tuple[Any, int]] = []  # (ship's reference, its events)
        self.closing = False
        state = Proxied()
        self._look(state, *self._call("stats"))
        return Ok(state)

    # -- talking to the actor --------------------------------------------------

    def _call(self, method: str) -> Any:
        """Call ``method`` on the actor and wait; raise Ray's error if it is down."""
        return self._wait(getattr(self.actor, method).remote())

    def _wait(self, ref: Any) -> Any:
        """Wait for a call's result. A slow actor is waited for, only a dead one raises.

        A call that timed out may still run on the actor (a flush would then empty
        a buffer nobody reads), so its result is waited for, never given up on.
        """
        while True:
            try:
                return self.ray.get(ref, timeout=CALL_TIMEOUT)
            except self.ray.exceptions.GetTimeoutError:  # a RayError too: not a death
                log.warning("EventCollector %d: Ray actor %s is slow", self.partition, self.name)

    def _ship(self, state: Proxied) -> None:
        """Send the local buffer to the actor as one batch; keep a few acknowledgements open."""
        if not state.local:
            return
        ref = self.actor.add.remote(self.producer, self.seq, state.data, False)
        self.seq += 1
        self.in_flight.append((ref, state.local))
        state.unlooked += state.local  # in flight: held by the actor unless the ship fails
        state.local, state.data = 0, {}
        if len(self.in_flight) > MAX_IN_FLIGHT:
            self._settle(state, self.in_flight[:1])

    def _settle(self, state: Proxied, ships: list[tuple[Any, int]] | None = None) -> None:
        """Wait for ``ships`` (default: all in flight); a failed one died with its actor."""
        ships = list(self.in_flight) if ships is None else ships
        for ship in ships:
            ref, n = ship
            self.in_flight.remove(ship)
            try:
                incarnation = self._wait(ref)
            except self.ray.exceptions.RayError:  # the actor died with it
                state.unlooked -= n
                count_lost(n, "killed")
                continue
            if incarnation != self.incarnation:  # a restarted actor took it and reports it
                state.unlooked -= n

    def _look(self, state: Proxied, held: int, accepted: int, incarnation: str) -> bool:
        """Bring the books up to the actor's counts; return whether Ray restarted it."""
        self._settle(state)
        restarted: bool = incarnation != self.incarnation
        if restarted:  # the old incarnation's buffer is gone
            count_lost(state.held_seen + state.unlooked, "killed")
            self.incarnation, self.accepted_seen = incarnation, 0
        state.held_seen, state.unlooked = held, 0
        if accepted > self.accepted_seen:  # remote producers' events, new since our last look
            count_accepted(accepted - self.accepted_seen)
            self.accepted_seen = accepted
        _entered[self.name] = (incarnation, accepted)
        return restarted

    def _actor_lost(self, state: Proxied, why: Any) -> tuple[str, str]:
        """Count what the unreachable actor held as killed; return the exit reason."""
        log.warning("EventCollector %d: Ray actor %s lost (%s)", self.partition, self.name, why)
        self._settle(state)
        count_lost(state.held_seen + state.unlooked, "killed")
        state.held_seen = state.unlooked = 0
        return (LOST, self.name)

    def _kill(self) -> None:
        """Kill the actor for good and wait for its name to free; the next proxy starts anew."""
        _owned.pop(self.name, None)
        _entered.pop(self.name, None)
        self.ray.kill(self.actor, no_restart=True)
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.ray.get_actor(self.name)
            except ValueError:
                return
            time.sleep(0.01)  # waiting for Ray's registry, not for one of our threads

    def _flush(self, state: Proxied, final: bool = False) -> tuple[dict[Any, int], bool]:
        """Take the actor's buffer and the local one; return them and whether Ray restarted it.

        ``final``: the tree stops, so the actor refuses later batches (`CollectorActor.close`).
        """
        self._ship(state)
        data, accepted, incarnation = self._call("close" if final else "flush")
        return data, self._look(state, 0, accepted, incarnation)

    # -- callbacks -----------------------------------------------------------------

    def handle_cast(self, request: Any, state: Proxied) -> NoReply:
        data = state.data
        for uid, n in (
            {request.id: 1} if request.__class__ is User else counts_in(request)
        ).items():
            data[uid] = data.get(uid, 0) + n
            state.local += n
        if state.local >= SHIP_AT and not self.closing:
            self._ship(state)
        return NoReply(state)

    def handle_call(self, request: Any, from_: From, state: Proxied) -> Reply | NoReply | Stop:
        if request == "look":
            try:
                restarted = self._look(state, *self._call("stats"))
            except self.ray.exceptions.RayError as e:
                return Stop(self._actor_lost(state, e), state, reply=state.count)
            return Stop((LOST, self.name), state, state.count) if restarted else Reply(None, state)
        if request != "flush_events":
            raise ValueError(f"EventCollector got an unknown call: {request!r}")
        try:
            data, restarted = self._flush(state)
        except self.ray.exceptions.RayError as e:
            return Stop(self._actor_lost(state, e), state)
        count = sum(data.values())
        if count:
            log.info("EventCollector:%r - %d events flushed", self.name, count)
        self.outlet.count(self.partition, count)
        if restarted:  # exit, so the supervisor counts the restart; deliver from here
            self.outlet.deliver(self.partition, data)
            return Stop((LOST, self.name), state)
        if not GenServer.reply(from_, data):  # the caller gave up: flush from here
            self.outlet.deliver(self.partition, data)
        return NoReply(state)

    def terminate(self, reason: Any, state: Proxied) -> None:
        """Take the actor's buffer back, flush everything to the sinks, release the actor."""
        self.closing = True
        try:
            data: dict[Any, int] = {}
            if not (isinstance(reason, tuple) and reason[:1] == (LOST,)):
                try:
                    data, _ = self._flush(state, final=is_normal(reason))
                except self.ray.exceptions.RayError as e:
                    self._actor_lost(state, e)
            for uid, n in state.data.items():  # what was not shipped (the actor is lost)
                data[uid] = data.get(uid, 0) + n
            _deliver(self.outlet, self.partition, data)
            state.data, state.local = {}, 0  # handed over: a kill from here on destroys nothing
            if is_normal(reason):  # the tree (or this partition's supervisor) stops
                self._kill()
        finally:
            self.done.set()

    def lost_state(self, state: Proxied, reason: Any) -> None:
        """On a kill: look at the actor once more, then ``ray.kill`` it; `_held` counts it."""
        try:
            self._look(state, *self._call("stats"))
        except self.ray.exceptions.RayError as e:
            self._actor_lost(state, e)
        finally:
            self._kill()
            self.done.set()


def _deliver(outlet: Outlet, partition: int, data: dict[Any, int]) -> None:
    """Count and hand on a last flush."""
    outlet.count(partition, sum(data.values()))
    outlet.deliver(partition, data)
