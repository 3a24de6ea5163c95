"""Map a function over a collection concurrently, as Elixir's ``Task.async_stream``.

``async_stream`` calls a function on every item of an iterable, several items at a
time, and gives back the results as they become available::

    from summarizer.otp.task import async_stream

    lengths = async_stream(["a", "bb", "ccc"], len)
    list(lengths)  # [1, 2, 3], in the order of the input

As in Elixir, the stream is lazy: nothing runs, and nothing is taken from the input,
until the result iterator is first advanced. Iterating it drives the work::

    for page in async_stream(urls, fetch, max_concurrency=8, timeout=10):
        save(page)

The options are Elixir's:

* ``max_concurrency`` bounds the items in flight: taken from the input and not yet
  handed to the consumer (an item counts until the consumer asks for the next one).
  A finished result still waiting for its turn counts, so a slow consumer holds the
  workers back instead of letting results pile up. The default is
  `schedulers_online`, the number of CPUs this process may run on.
* ``ordered=True`` (the default) yields results in input order; with
  ``ordered=False`` each result is yielded as soon as it is done.
* ``timeout`` is the time, in seconds, each call may take, counted from the moment
  that item starts running; ``None`` means no limit. An item that overruns it makes
  the consumer raise `TaskTimeout`, naming the item's index.

An exception raised by the function is raised again in the consumer, as the same
object, when that item's turn comes. Once an error is raised the stream stops taking
items from the input.

Threads. Elixir starts a process per item. BEAM processes are cheap, OS threads are
not, and under the GIL more threads do not make CPU-bound work go faster. So the
``max_concurrency`` items in flight share at most ``max_threads`` worker threads
(default 32), named ``async_stream-worker-N``: at most that many calls run at once,
and the other items in flight wait in a queue (their timeout has not started). The
stream starts one worker, and starts another only while the consumer waits and a
call has made no progress for a millisecond (it waits on I/O, or it is long). Quick
calls therefore run on one thread, with no switching between threads, which is as
fast as Python gets. Workers take items from the input in batches, and the consumer
sleeps only when the result it needs is not ready. For calls that wait on I/O, raise
``max_threads`` to raise the number of calls running at once.

Cleanup. When the stream ends, is closed (``break`` out of a loop, ``close()``, or
garbage collection of a half-read stream), or raises, its workers stop and are
joined, so ``threading.active_count()`` is back where it was. Python cannot stop a
thread: a call in progress runs to its end first, so closing waits for it, at most
until its timeout (with ``timeout=None``, as long as it takes; the same goes for a
worker blocked taking an item from a slow input). A call that overran its timeout is
left to finish on its own in its daemon thread, which then exits; it never keeps the
interpreter from exiting.
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Generic, Literal, TypeVar

from .errors import OtpError
from .system import schedulers_online
from .validate import brief, check_timeout, positive_int

__all__ = ["TaskTimeout", "async_stream"]

T = TypeVar("T")
R = TypeVar("R")

_MAX_BATCH = 64  # most items a worker takes from the input at once
_FAST_BATCH = 0.001  # seconds; a batch taken from the input faster doubles the next one
_SLOW_BATCH = 0.01  # seconds; a batch taken slower halves the next one
_STUCK = 0.001  # seconds; a call still running after the consumer waited this long
_NOBODY = -1  # `_Stream._wants` while the consumer is not waiting
_ANYONE = -2  # `_Stream._wants` while an unordered consumer waits for any result


class _Signal(enum.Enum):
    MISSING = enum.auto()  # no result stored for this index yet
    END = enum.auto()  # every item has been yielded


_MISSING: Final = _Signal.MISSING
_END: Final = _Signal.END


class TaskTimeout(OtpError, TimeoutError):
    """An item's call ran longer than the stream's timeout."""

    def __init__(self, index: int, timeout: float) -> None:
        super().__init__(f"async_stream item {index} did not finish within {timeout} s")
        self.index = index
        self.timeout = timeout


def async_stream(
    iterable: Iterable[T],
    fn: Callable[[T], R],
    max_concurrency: int | None = None,
    ordered: bool = True,
    timeout: float | None = 5.0,
    *,
    max_threads: int = 32,
) -> Iterator[R]:
    """Return a lazy iterator of ``fn(item)`` for each item, computed on worker threads.

    At most ``max_concurrency`` items (default `schedulers_online`) are in flight,
    on at most ``max_threads`` threads. Results come in input order, or in order of
    completion when ``ordered`` is false. A call running longer than ``timeout``
    seconds makes the consumer raise `TaskTimeout`; an exception from ``fn`` is raised
    in the consumer when that item's turn comes.

    Arguments are checked here, at once. The input is only turned into an iterator
    here, as ``map`` does; no item is taken from it before the first ``next()``.
    """
    if not (hasattr(type(iterable), "__iter__") or hasattr(type(iterable), "__getitem__")):
        raise TypeError(f"iterable must be iterable, got: {brief(iterable)}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got: {brief(fn)}")
    limit = schedulers_online() if max_concurrency is None else max_concurrency
    positive_int("max_concurrency", limit)
    _check_bool("ordered", ordered)
    seconds = check_timeout(timeout)
    positive_int("max_threads", max_threads)
    stream = _Stream(iter(iterable), fn, limit, ordered, seconds, min(limit, max_threads))
    return stream.consume_ordered() if ordered else stream.consume_unordered()


def _check_bool(name: str, value: object) -> None:
    """Raise unless value is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got: {brief(value)}")


class _Failure:
    """Carry an exception from a worker to the consumer in place of a result."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Stream(Generic[T, R]):
    """Hold the state one `async_stream` shares between its consumer and workers.

    Items taken from the input wait in one shared queue, as ``(index, item)``, until a
    worker pops one (a deque operation, atomic under the GIL): no item is ever held
    back behind a call that blocks. One worker at a time refills the queue, a batch
    at a time, outside the lock; the batch grows while the input answers quickly and
    shrinks when it does not. Results are stored without a lock too (one dict or deque
    operation); a worker takes the lock only to refill, or to wake the consumer after
    storing the result the consumer waits for (``_wants``, set before the consumer's
    last look, so no wake-up is lost). The lock is re-entrant so that a stream closed
    by garbage collection inside a worker holding it cannot deadlock.
    """

    def __init__(
        self,
        it: Iterator[T],
        fn: Callable[[T], R],
        limit: int,
        ordered: bool,
        timeout: float | None,
        thread_cap: int,
    ) -> None:
        self._it = it
        self._fn = fn
        self._limit = limit
        self._ordered = ordered
        self._timeout = timeout
        self._thread_cap = thread_cap
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)  # the consumer waits here
        self._work = threading.Condition(self._lock)  # free workers wait here
        self._queue: deque[tuple[int, T]] = deque()  # taken from the input, not started
        self._results: dict[int, R | _Failure] = {}  # by input index, when ordered
        self._completed: deque[R | _Failure] = deque()  # in completion order, when not
        self._threads: list[threading.Thread] = []
        # (index, start time) of the call each worker is running, None between calls.
        self._running: list[tuple[int, float] | None] = [None] * thread_cap
        self._pulled = 0  # items taken from the input
        self._yielded = 0  # results the consumer is done with: it asked for the next
        self._refilling = False  # a worker is taking items from the input
        self._exhausted = False  # the input is used up (or raised): take no more
        self._stopped = False  # the consumer is gone: workers exit
        self._input_error: BaseException | None = None
        self._crash: BaseException | None = None  # a bug in a worker's own loop
        self._wants = _NOBODY
        self._free = 0  # workers waiting for work
        # The consumer wakes a free worker once per this many results.
        self._wake_every = max(1, limit // 4)

    # --- the consumer ---------------------------------------------------------

    def consume_ordered(self) -> Iterator[R]:
        """Yield the results in input order."""
        results = self._results
        wake_every = self._wake_every
        next_wake = wake_every
        index = 0
        value: R | _Failure
        found: R | _Failure | Literal[_Signal.MISSING]
        try:
            with self._lock:
                self._spawn()
            while True:
                found = results.pop(index, _MISSING)
                if found is _MISSING:
                    awaited = self._await_index(index)
                    if awaited is _END:
                        return
                    value = awaited
                else:
                    value = found
                index += 1
                if isinstance(value, _Failure):
                    raise value.error
                if self._exhausted and index == self._pulled:
                    self._shutdown()  # the last value: join the workers before yielding it
                yield value
                # Back for the next one: only now is the item out of flight, as in Elixir,
                # where no new task starts while the consumer handles a result.
                self._yielded = index
                if index >= next_wake:
                    next_wake = index + wake_every
                    if self._free:
                        self._wake_worker()
        finally:
            self._shutdown()

    def consume_unordered(self) -> Iterator[R]:
        """Yield the results in the order they complete."""
        completed = self._completed
        popleft = completed.popleft
        wake_every = self._wake_every
        next_wake = wake_every
        count = 0
        try:
            with self._lock:
                self._spawn()
            while True:
                if completed:
                    value = popleft()
                else:
                    awaited = self._await_any()
                    if awaited is _END:
                        return
                    value = awaited
                count += 1
                if isinstance(value, _Failure):
                    raise value.error
                if self._exhausted and count == self._pulled:
                    self._shutdown()  # the last value: join the workers before yielding it
                yield value
                self._yielded = count  # back for the next one: see consume_ordered
                if count >= next_wake:
                    next_wake = count + wake_every
                    if self._free:
                        self._wake_worker()
        finally:
            self._shutdown()

    def _await_index(self, index: int) -> R | _Failure | Literal[_Signal.END]:
        """Block until the result at index is stored; return END when there is none."""
        with self._lock:
            try:
                while True:
                    self._wants = index  # before the last look, so a worker storing it wakes us
                    value = self._results.pop(index, _MISSING)
                    if value is not _MISSING:
                        return value
                    if self._exhausted and index >= self._pulled:
                        return self._end()
                    self._pause()
            finally:
                self._wants = _NOBODY

    def _await_any(self) -> R | _Failure | Literal[_Signal.END]:
        """Block until any result is stored; return END when there is none left."""
        with self._lock:
            try:
                while True:
                    self._wants = _ANYONE
                    if self._completed:
                        return self._completed.popleft()
                    if self._exhausted and self._yielded >= self._pulled:
                        return self._end()
                    self._pause()
            finally:
                self._wants = _NOBODY

    def _end(self) -> Literal[_Signal.END]:
        """Return END, or raise the error the input raised where it stopped."""
        if self._input_error is not None:
            raise self._input_error
        return _END

    def _pause(self) -> None:
        """Wait (lock held) for a worker, a deadline, or a crash; raise on the last two.

        Workers are started here, as needed: when the consumer waits, there is work
        nobody is free to take, and a call made no progress while we slept (it waits on
        I/O, or it is long), start one more worker for each such call, up to the thread
        cap. Quick calls never trigger this, so CPU-bound work stays on one thread,
        which is as fast as it gets under the GIL.
        """
        if self._crash is not None:
            raise self._crash
        if self._free and (self._queue or self._may_refill()):
            self._work.notify(len(self._queue) + 1)
        wait: float | None = None
        timeout = self._timeout
        if timeout is not None:
            # A call starting from now has a full timeout to go; running ones have less.
            wait = timeout
            now = time.monotonic()
            for slot in self._running:
                if slot is not None:
                    left = slot[1] + timeout - now
                    if left <= 0:
                        raise TaskTimeout(slot[0], timeout)
                    wait = min(wait, left)
        if len(self._threads) >= self._thread_cap or not (self._has_work() or self._refilling):
            self._ready.wait(wait)  # no worker could be needed before we yield again
            return
        # A worker may be needed, now or once the refill under way is done: look again
        # after _STUCK.
        before = list(self._running)
        if self._ready.wait(_STUCK if wait is None else min(wait, _STUCK)):
            return
        # The same tuple object as before the wait: that call has not returned since.
        stuck = sum(1 for old, new in zip(before, self._running, strict=True) if old and old is new)
        while (
            stuck
            and len(self._threads) < self._thread_cap
            and not self._free
            and not self._stopped
            and self._has_work()
        ):
            self._spawn()
            stuck -= 1

    def _may_refill(self) -> bool:
        """Tell (lock held) whether a worker could take more items from the input now."""
        return (
            not self._refilling
            and not self._exhausted
            and self._yielded + self._limit > self._pulled
        )

    def _has_work(self) -> bool:
        """Tell (lock held) whether one more worker would find something to do."""
        return bool(self._queue) or self._may_refill()

    def _wake_worker(self) -> None:
        """Wake a free worker: the consumer made room."""
        with self._lock:
            if self._free:
                self._work.notify()

    def _shutdown(self) -> None:
        """Stop the workers and join them; idempotent."""
        with self._lock:
            self._stopped = True
            self._work.notify_all()
            self._ready.notify_all()
            threads = list(self._threads)
        if threading.current_thread() in threads:
            return  # closed by garbage collection in a worker: the others exit alone
        for wid, thread in enumerate(threads):
            self._join(wid, thread)

    def _join(self, wid: int, thread: threading.Thread) -> None:
        """Join a stopping worker; give up on one whose call overran its timeout."""
        timeout = self._timeout
        if timeout is None:
            thread.join()
            return
        while thread.is_alive():
            slot = self._running[wid]
            left = timeout if slot is None else slot[1] + timeout - time.monotonic()
            if left <= 0:
                return  # a daemon, it exits when its call returns
            thread.join(left)

    # --- the workers ----------------------------------------------------------

    def _spawn(self) -> None:
        """Start one more worker thread (lock held)."""
        wid = len(self._threads)
        thread = threading.Thread(
            target=self._work_loop,
            args=(wid,),
            name=f"async_stream-worker-{wid + 1}",
            daemon=True,
        )
        self._threads.append(thread)
        try:
            thread.start()
        except RuntimeError:  # out of threads: carry on with those running, if any
            self._threads.pop()
            self._thread_cap = len(self._threads)
            if not self._threads:
                raise

    def _work_loop(self, wid: int) -> None:
        """Run items until the input is used up or the stream stops."""
        try:
            self._run(wid)
        except BaseException as e:  # a bug here must not leave the consumer waiting
            with self._lock:
                self._crash = e
                self._stopped = True
                self._ready.notify_all()
                self._work.notify_all()

    def _run(self, wid: int) -> None:
        """Pop an item, call fn on it, store the result; refill the queue when empty."""
        fn = self._fn
        timeout = self._timeout
        ordered = self._ordered
        results = self._results
        completed = self._completed
        running = self._running
        popleft = self._queue.popleft
        monotonic = time.monotonic
        batch = 1  # items to take from the input at a time
        while True:
            try:
                index, item = popleft()
            except IndexError:
                batch = self._refill(batch)
                if not batch:
                    return
                continue
            if self._stopped:
                return
            # A new tuple per call: _pause tells a stuck call by its identity.
            start = 0.0 if timeout is None else monotonic()
            running[wid] = (index, start)
            value: R | _Failure
            try:
                value = fn(item)
            except BaseException as e:
                value = _Failure(e)
            running[wid] = None
            if timeout is not None and monotonic() - start > timeout:
                value = _Failure(TaskTimeout(index, timeout))
            if ordered:
                results[index] = value
                if self._wants == index:
                    self._wake_consumer()
            else:
                completed.append(value)
                if self._wants == _ANYONE:
                    self._wake_consumer()

    def _refill(self, batch: int) -> int:
        """Take up to batch items from the input into the queue; return the next batch size.

        Wait while another worker refills or the stream has no room; return 0 when the
        worker should exit: the stream stopped, or the input is used up and the queue
        is empty.
        """
        with self._lock:
            while True:
                if self._stopped:
                    return 0
                if self._queue:
                    return batch
                if self._exhausted:
                    return 0
                if self._may_refill():
                    break
                self._free += 1
                try:
                    self._work.wait()
                finally:
                    self._free -= 1
            want = min(self._yielded + self._limit - self._pulled, batch)
            first = self._pulled
            self._refilling = True
        taken: list[tuple[int, T]] = []
        error: BaseException | None = None
        began = time.monotonic()
        try:
            # On an error, list.extend keeps the items taken before it.
            taken.extend(zip(itertools.count(first), itertools.islice(self._it, want)))
        except BaseException as e:
            error = e
        elapsed = time.monotonic() - began
        self._queue.extend(taken)
        with self._lock:
            self._refilling = False
            self._pulled = first + len(taken)
            if error is not None or len(taken) < want:
                self._input_error = error
                self._exhausted = True
                self._ready.notify()  # the consumer may be waiting for the end
                self._work.notify_all()  # free workers take what is left, or exit
            elif self._free:
                self._work.notify(len(taken) + 1)  # the items, and the next refill
        if elapsed < _FAST_BATCH:
            return min(batch * 2, _MAX_BATCH)
        if elapsed > _SLOW_BATCH:
            return max(1, batch // 2)
        return batch

    def _wake_consumer(self) -> None:
        """Wake the consumer: the result it waits for is stored."""
        with self._lock:
            self._wants = _NOBODY  # once is enough; it sets this again if it waits again
            self._ready.notify()
