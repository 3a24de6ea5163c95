"""Delivery: one worker per sink, with a bounded queue, retries and dead letters.

The flush path hands each non-empty flush to `Deliveries.submit`, which returns
at once; a `SinkDelivery` worker per sink writes it, off the flushers' and the
producers' backs::

    deliveries = Deliveries([SQLiteSink("summary.sqlite")], retry=RetryPolicy(max_attempts=5))
    sup = Supervisor.start_link([deliveries.child_spec()])
    deliveries.submit(0, {"1": 3})  # queued; the worker writes it
    deliveries.stats()  # {"SQLiteSink('summary.sqlite')": SinkAccount(handed=1, delivered=1, ...)}
    Supervisor.stop(sup)  # drains the queues within drain_timeout, dead-letters the rest

Every flush gets an id, ``"<run uuid>:<partition>:<sequence>"``. A sink with
``store(flush) -> bool`` (`SQLiteSink`, `PostgresSink`) records it under a
unique key in the transaction that adds the totals, so a retry of a flush
that committed (only the acknowledgement was lost) is skipped, not counted
twice; other sinks get ``write(partition, data, flushed_at)``.

Retries. A failed write is retried after an exponential backoff with jitter
(`RetryPolicy`), timed by ``Process.send_after``: the worker waits in its
mailbox, not in a sleep. A flush is given up, and appended to the dead-letter
file (`summarizer.deadletter`), after ``max_attempts`` failures or once
``max_elapsed`` seconds passed since it was handed over. A sink's flushes are
written in order: while the oldest waits for its retry, the others queue
behind it, up to ``max_queue``; a flush that finds the queue full is
dead-lettered at once, so a dead sink never grows memory or blocks anyone.

The queues and counters live in `Deliveries`, not in the workers, so a worker
the supervisor restarts resumes where the last one stopped. On a graceful stop
a worker keeps writing until ``drain_timeout`` seconds after the stop began
(`Deliveries.begin_stop`, called by the tree's ``prep_stop``), then
dead-letters what is left. For each sink, ``handed == delivered +
dead_lettered + queued`` at any quiet moment, and ``queued == 0`` after a
graceful stop.
"""

from __future__ import annotations

import itertools
import logging
import random
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .deadletter import DeadLetters, Flush
from .otp import GenServer, NoReply, Ok, Process, Supervisor
from .otp.child_spec import ChildSpec
from .otp.process import is_normal
from .otp.supervisor import SupervisorFlags
from .otp.validate import brief, positive_int, positive_number

__all__ = ["Deliveries", "DeliverySupervisor", "RetryPolicy", "SinkAccount", "SinkDelivery"]

log = logging.getLogger("summarizer")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a failed write is retried: exponential backoff with jitter.

    The n-th retry waits ``d/2 + uniform(0, d/2)`` with ``d = min(max_delay,
    base_delay * 2**(n-1))``. A flush is dead-lettered after ``max_attempts``
    failed writes or ``max_elapsed`` seconds after it was handed over. The
    defaults ride out a database restart of about 15 s.
    """

    max_attempts: int = 8
    max_elapsed: float = 30.0
    base_delay: float = 0.2
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        positive_int("max_attempts", self.max_attempts)
        for name in ("max_elapsed", "base_delay", "max_delay"):
            positive_number(name, getattr(self, name))

    def delay(self, failures: int) -> float:
        """Return the seconds to wait after the ``failures``-th failed write."""
        d: float = min(self.max_delay, self.base_delay * 2.0 ** min(failures - 1, 60))
        return d / 2 + random.uniform(0, d / 2)


@dataclass(frozen=True)
class SinkAccount:
    """The delivery books of one sink: flushes handed, delivered, retried, dead-lettered, queued."""

    handed: int
    delivered: int
    retries: int
    dead_lettered: int
    queued: int

    @property
    def settled(self) -> bool:
        """Return whether ``handed == delivered + dead_lettered + queued``."""
        return self.handed == self.delivered + self.dead_lettered + self.queued


class Outbox:
    """One sink's queue and counters, shared by its successive workers."""

    def __init__(self, name: str, sink: Any) -> None:
        self.name = name
        self.sink = sink
        self.queue: deque[tuple[Flush, float]] = deque()  # (flush, when it was handed)
        self.failures = 0  # of the flush at the head
        self.errors = 0  # failed writes, all flushes together
        self.handed = self.delivered = self.retries = self.dead_lettered = 0
        self.worker: Any = None  # the Pid of the live worker, for wake-ups
        self.closed = False  # the tree stopped: write at once, or dead-letter
        self.lock = threading.Lock()  # guards all of the above


class Deliveries:
    """Queue the tree's flushes for its sinks; count what each sink got.

    ``submit`` is the one entry point of the flush path; ``stats`` feeds
    ``accounting()``; ``child_spec`` starts the workers under the tree.
    """

    def __init__(
        self,
        sinks: Iterable[Any],
        *,
        retry: RetryPolicy | None = None,
        dead_letters: str | Path | None = None,
        max_queue: int = 1000,
        drain_timeout: float = 1.0,
    ) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got: {brief(retry)}")
        self.retry = retry or RetryPolicy()
        self.max_queue = positive_int("max_queue", max_queue)
        self.drain_timeout = positive_number("drain_timeout", drain_timeout)
        self.run = uuid.uuid4().hex
        if dead_letters is None:
            dead_letters = Path(tempfile.gettempdir()) / f"summarizer-dead-letters-{self.run}.jsonl"
        self.dead_letters = DeadLetters(dead_letters)
        self.outboxes: list[Outbox] = []
        names: set[str] = set()
        for sink in sinks:
            name = repr(sink)
            for k in itertools.count(2):
                if name not in names:
                    break
                name = f"{sink!r}#{k}"
            names.add(name)
            self.outboxes.append(Outbox(name, sink))
        self.stopping = False  # the workers are being stopped: none will be restarted
        self.deadline: float | None = None  # when a graceful stop stops waiting for the sinks
        self._seq: dict[int, itertools.count[int]] = {}
        self._lock = threading.Lock()  # guards _seq

    def flush_id(self, partition: int) -> str:
        """Return the next flush id of ``partition``: run uuid, partition, sequence number."""
        with self._lock:
            seq = self._seq.setdefault(partition, itertools.count(1))
            return f"{self.run}:{partition}:{next(seq)}"

    def submit(self, partition: int, data: Mapping[Any, int]) -> None:
        """Queue one non-empty flush for every sink; return at once."""
        if not data or not self.outboxes:
            return
        flush = Flush(self.flush_id(partition), partition, dict(data), time.time())
        now = time.monotonic()
        for box in self.outboxes:
            worker = None
            with box.lock:
                box.handed += 1
                late, full = box.closed, len(box.queue) >= self.max_queue
                if not (late or full):
                    box.queue.append((flush, now))
                    worker = box.worker
            if late:  # no worker will come: one attempt here, then the file
                if self.write(box, flush):
                    with box.lock:
                        box.delivered += 1
                else:
                    self.dead_letter(box, flush, "stopped")
            elif full:
                self.dead_letter(box, flush, "queue_full")
            elif worker is not None:
                Process.send(worker, "deliver")

    def write(self, box: Outbox, flush: Flush) -> bool:
        """Write ``flush`` to ``box``'s sink once; return whether it took it."""
        sink = box.sink
        try:
            if callable(getattr(sink, "store", None)):
                sink.store(flush)
            else:
                sink.write(flush.partition, flush.data, flush.flushed_at)
        except Exception as e:
            log.warning("sink %s failed on flush %s: %r", box.name, flush.id, e)
            with box.lock:
                box.errors += 1
            return False
        return True

    def dead_letter(self, box: Outbox, flush: Flush, reason: str) -> None:
        """Append ``flush`` to the dead-letter file for ``box``'s sink; count it."""
        with box.lock:
            box.dead_lettered += 1
        try:
            self.dead_letters.append(flush, box.name, reason)
        except OSError:
            log.exception("could not dead-letter flush %s: %r", flush.id, flush)

    def stats(self) -> dict[str, SinkAccount]:
        """Return each sink's delivery books, by the sink's name (its repr at start)."""
        books = {}
        for box in self.outboxes:
            with box.lock:
                books[box.name] = SinkAccount(
                    box.handed, box.delivered, box.retries, box.dead_lettered, len(box.queue)
                )
        return books

    def begin_stop(self) -> None:
        """Start the stop's clock: the workers drain until ``drain_timeout`` from now."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.drain_timeout

    def abandon(self) -> None:
        """Dead-letter every queued flush now (a stop that ran out of time, at exit)."""
        for box in self.outboxes:
            self.close(box)

    def errors(self) -> dict[str, int]:
        """Return the failed writes per sink, for the sinks that failed any."""
        return {box.name: box.errors for box in self.outboxes if box.errors}

    def close(self, box: Outbox) -> None:
        """Take ``box``'s queue out of service: dead-letter it; later flushes get one attempt."""
        with box.lock:
            box.closed = True
            box.worker = None
            left_over = [flush for flush, _ in box.queue]
            box.queue.clear()
        for flush in left_over:
            self.dead_letter(box, flush, "stopped")

    def child_spec(self) -> ChildSpec:
        """Return the spec of the supervisor of this tree's delivery workers."""
        return DeliverySupervisor.child_spec(self)


class DeliverySupervisor(Supervisor):
    """Supervise one `SinkDelivery` worker per sink, one_for_one."""

    def init(self, deliveries: Deliveries) -> SupervisorFlags:  # type: ignore[override]
        self.deliveries = deliveries
        deliveries.stopping = False
        deliveries.deadline = None
        shutdown = deliveries.drain_timeout + 5.0  # time to drain before a kill
        children = [
            ChildSpec(
                id=i,
                start=(SinkDelivery.start_link, ((deliveries, i),)),
                shutdown=shutdown,
                modules=["SinkDelivery"],
            )
            for i in range(len(deliveries.outboxes))
        ]
        return Supervisor.init(children, strategy="one_for_one")

    def prep_stop(self, reason: Any) -> None:
        """Mark the workers as stopping, so a worker killed now leaves no queue behind."""
        self.deliveries.stopping = True


class SinkDelivery(GenServer):
    """Write one sink's queued flushes in order, retrying with backoff; drain on stop."""

    def init(self, arg: tuple[Deliveries, int]) -> Ok:
        Process.flag("trap_exit", True)
        self.deliveries, index = arg
        self.box = self.deliveries.outboxes[index]
        me = Process.self()
        with self.box.lock:
            self.box.worker = me
            self.box.closed = False
        Process.send(me, "deliver")  # resume what a previous worker left queued
        return Ok({"waiting": False})

    def handle_info(self, msg: Any, state: dict[str, Any]) -> NoReply:
        if msg == "retry":
            state["waiting"] = False
        elif msg != "deliver":
            return super().handle_info(msg, state)  # type: ignore[return-value]
        if not state["waiting"]:
            delay = self.deliver_head()
            if delay is not None:
                Process.send_after(Process.self(), "retry", delay)
                state["waiting"] = True
        return NoReply(state)

    def deliver_head(self, wake: bool = True) -> float | None:
        """Write the oldest queued flush; return the seconds to wait before a retry, if any."""
        box, policy = self.box, self.deliveries.retry
        with box.lock:
            if not box.queue:
                return None
            flush, handed_at = box.queue[0]
        if self.deliveries.write(box, flush):
            self._pop(flush, wake, delivered=True)
            return None
        with box.lock:
            box.failures += 1
            failures = box.failures
        expired = time.monotonic() - handed_at >= policy.max_elapsed
        if failures >= policy.max_attempts or expired:
            if self._pop(flush, wake, delivered=False):
                self.deliveries.dead_letter(box, flush, "retries")
            return None
        with box.lock:
            box.retries += 1
        return policy.delay(failures)

    def _pop(self, flush: Flush, wake: bool, *, delivered: bool) -> bool:
        """Take ``flush`` off the head of the queue, counted once; wake this worker if more wait.

        Return False if it was no longer there: a worker killed inside a write
        finishes it while its successor writes the same flush; one of them counts it.
        """
        box = self.box
        with box.lock:
            popped = bool(box.queue) and box.queue[0][0] is flush
            if popped:
                box.queue.popleft()
                box.failures = 0
                box.delivered += delivered
            more = bool(box.queue)
        if more and wake:
            Process.send(Process.self(), "deliver")
        return popped

    def terminate(self, reason: Any, state: dict[str, Any]) -> None:
        """On a graceful stop, drain the queue by the stop's deadline; dead-letter the rest."""
        if not is_normal(reason):
            return  # a crash: the next worker takes over the queue
        box = self.box
        deadline = self.deliveries.deadline or time.monotonic() + self.deliveries.drain_timeout
        pause = threading.Event()  # never set: a backoff that ends by the deadline
        while (left := deadline - time.monotonic()) > 0:
            with box.lock:
                if not box.queue:
                    break
            delay = self.deliver_head(wake=False)
            if delay is not None:
                pause.wait(min(left, delay))
        self.deliveries.close(box)

    def lost_state(self, state: Any, reason: Any) -> None:
        """After a kill during a stop (a sink blocked past the shutdown time), dead-letter."""
        if self.deliveries.stopping:
            self.deliveries.close(self.box)
