"""Producers in Ray tasks and actors: send events to a ``backend="ray"`` tree's actors.

In a Ray worker no tree runs, so ``EventCollector.record_event``,
``record_events`` and a `Recorder` come here instead::

    @ray.remote
    def produce(users):
        with Recorder(batch=1000) as rec:  # -> record_remote(batch, settle=False)
            for user in users:
                rec.record(user)
        # closed: every batch acknowledged by its actor

The router finds the tree's actors by name in the job's namespace (one tree
runs per driver), routes each user id with ``phash2(id, partitions)`` as the
tree does, and sends one ``{user_id: n}`` batch per partition with this
thread's next sequence number. ``record_event`` comes here through
`PartitionSupervisor.elsewhere`, only where no tree ever ran.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .collector import counts_in
from .otp.phash2 import phash2
from .ray_backend import CALL_TIMEOUT, CLOSED, MAX_IN_FLIGHT, actor_name, import_ray

Batch = dict[Any, int]  # one partition's share: user id -> events

__all__ = ["Router", "record_remote", "worker_router"]


class Router:
    """Send a Ray worker's events to the tree's actors, by ``phash2(user.id, partitions)``."""

    def __init__(self) -> None:
        self.ray = import_ray()
        self.producer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
        # One producer id and sequence per thread (a thread's batches stay in order);
        # not the thread's ident, which a later thread may reuse.
        self.local = threading.local()
        self.actors: dict[int, Any] = {}
        self.partitions = 0
        self.refresh()

    def refresh(self) -> None:
        """Look the tree's actors up again (a new tree, or an actor that was replaced)."""
        try:
            first = self.ray.get_actor(actor_name(0))
            _, partitions = self.ray.get(first.ready.remote(), timeout=CALL_TIMEOUT)
        except (ValueError, self.ray.exceptions.RayActorError):
            raise LookupError(
                "no tree runs in this Ray job: start it with "
                "SummarizerSupervisor.start_link(backend='ray') in the driver"
            ) from None
        self.partitions = partitions
        self.actors = {0: first}

    def _actor(self, partition: int) -> Any:
        actor = self.actors.get(partition)
        if actor is None:
            actor = self.actors[partition] = self.ray.get_actor(actor_name(partition))
        return actor

    def _batches(self, counts: Mapping[Any, int]) -> dict[int, tuple[int, Batch]]:
        """Split ``counts`` by partition, each with this thread's next sequence number."""
        local = self.local
        if not hasattr(local, "seqs"):  # a thread's first batch: its own producer id
            local.producer, local.seqs = f"{self.producer}-{uuid.uuid4().hex}", Counter()
            local.in_flight = []  # (partition, seq, batch, reference), oldest first
        n = self.partitions
        batches: dict[int, Batch] = {}
        for uid, k in counts.items():
            p = (
                abs(uid) % n
                if isinstance(uid, int) and not isinstance(uid, bool)
                else phash2(uid, n)
            )
            batches.setdefault(p, {})[uid] = k
        out = {}
        for p, batch in batches.items():
            out[p] = (local.seqs[p], batch)
            local.seqs[p] += 1
        return out

    def send(self, counts: Mapping[Any, int]) -> None:
        """Send events per user id, split by partition; wait only if too many are unacknowledged.

        This thread keeps at most `MAX_IN_FLIGHT` batches unacknowledged; `settle`
        waits for the rest.
        """
        batches = self._batches(counts)
        producer, in_flight = self.local.producer, self.local.in_flight
        for p, (seq, batch) in batches.items():
            in_flight.append((p, seq, batch, self._submit(producer, p, seq, batch)))
        if len(in_flight) > MAX_IN_FLIGHT:
            self.settle(len(in_flight) - MAX_IN_FLIGHT)

    def _submit(self, producer: str, p: int, seq: int, batch: Batch) -> Any:
        """Send one batch; return its reference, or None if no actor has that name now."""
        try:
            return self._actor(p).add.remote(producer, seq, dict(batch), True)
        except ValueError:
            return None

    def settle(self, count: int | None = None) -> None:
        """Wait until this thread's oldest ``count`` batches (default: all) are acknowledged.

        A batch that timed out is sent again with the same sequence number to the
        same actor, which ignores it if the first copy arrived after all. A batch
        whose actor died (killed, or the tree replaced) cannot have been counted by
        the actor that now has the name: it goes there with a new sequence number
        (split anew if the tree's partition count changed), so batches sent since
        with higher numbers do not hide it.
        """
        local = self.local
        if not hasattr(local, "in_flight"):
            return
        todo = local.in_flight[: len(local.in_flight) if count is None else count]
        del local.in_flight[: len(todo)]
        deadline = time.monotonic() + CALL_TIMEOUT
        timeout_error = self.ray.exceptions.GetTimeoutError
        while todo:
            again, died, refused = [], Counter[Any](), 0
            for p, seq, batch, ref in todo:
                try:
                    if ref is None:
                        raise ValueError(p)
                    if self.ray.get(ref, timeout=max(0.1, deadline - time.monotonic())) == CLOSED:
                        refused += sum(batch.values())
                except timeout_error:
                    again.append((p, seq, batch))
                except (ValueError, self.ray.exceptions.RayError):
                    died.update(batch)
            if refused:
                raise RuntimeError(
                    f"{refused} events reached the tree's actors after its stop took their "
                    "buffers: they were not recorded"
                )
            if not again and not died:
                return
            if time.monotonic() > deadline:
                lost = sum(sum(b.values()) for _, _, b in again) + died.total()
                raise TimeoutError(
                    f"{lost} events were not acknowledged by the tree's actors "
                    f"within {CALL_TIMEOUT:g} s"
                )
            if died:
                self.refresh()
                again += [(p, seq, b) for p, (seq, b) in self._batches(died).items()]
            todo = [(p, seq, b, self._submit(local.producer, p, seq, b)) for p, seq, b in again]


_router: Router | None = None
_router_lock = threading.Lock()


def worker_router() -> Router | None:
    """Return this Ray worker's router to the tree's actors, or None outside a Ray worker."""
    global _router
    ray = import_ray()
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    with _router_lock:
        if _router is None:
            _router = Router()
        return _router


def record_remote(counts: Mapping[Any, int], settle: bool = True) -> bool:
    """Send events per user id to the actors if this is a Ray worker; return whether it did.

    With ``settle`` (the default) return once the actors acknowledged them;
    without, leave a few batches in flight for a later settling send.
    """
    router = worker_router()
    if router is None:
        return False
    router.send(counts)
    if settle:
        router.settle()
    return True


def elsewhere(msg: Any) -> bool:
    """Send a collector's cast (a User or counts) to the actors if this is a Ray worker."""
    try:
        counts = counts_in(msg)
    except ValueError:  # not an event: let the runtime count it unrouted
        return False
    return record_remote(counts)
