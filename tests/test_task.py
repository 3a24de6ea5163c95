"""async_stream must behave as Elixir's Task.async_stream, on a few threads, and clean up."""

from __future__ import annotations

import gc
import itertools
import os
import re
import threading
import time
from collections.abc import Generator, Iterator

import pytest
from support import WAIT

from summarizer.otp.errors import OtpError
from summarizer.otp.task import TaskTimeout, async_stream, schedulers_online

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leaks")]  # see conftest.py

SHORT = 0.5  # seconds: a timeout quick calls meet even on a loaded machine
WORKER_PREFIX = "async_stream-worker-"


def _workers() -> list[threading.Thread]:
    """Return the live worker threads of every stream."""
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)]


def _assert_no_worker_left(baseline: int) -> None:
    """Join leftover workers for at most WAIT seconds, then check the thread count is back."""
    deadline = time.monotonic() + WAIT
    while _workers() and time.monotonic() < deadline:
        for thread in _workers():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert _workers() == []
    assert threading.active_count() <= baseline


class Counted:
    """Wrap an iterator, counting the items taken from it and the most ever in flight.

    The test calls ``got_one`` as it receives each result, so ``pulled - consumed`` at
    the moment of a pull is the number of items in flight, the pulled one included.
    """

    def __init__(self, items: Iterator[int]) -> None:
        self.items = items
        self.lock = threading.Lock()
        self.pulled = 0
        self.consumed = 0
        self.most_in_flight = 0

    def __iter__(self) -> Iterator[int]:
        for item in self.items:
            with self.lock:
                self.pulled += 1
                self.most_in_flight = max(self.most_in_flight, self.pulled - self.consumed)
            yield item

    def got_one(self) -> None:
        with self.lock:
            self.consumed += 1


# --- laziness --------------------------------------------------------------------


def test_nothing_runs_before_the_stream_is_first_advanced() -> None:
    baseline = threading.active_count()
    source = Counted(iter(range(3)))
    calls: list[int] = []

    def fn(x: int) -> int:
        calls.append(x)
        return x * 10

    stream = async_stream(source, fn)

    assert calls == []
    assert source.pulled == 0
    assert _workers() == []
    assert threading.active_count() == baseline
    assert next(stream) == 0
    assert list(stream) == [10, 20]
    _assert_no_worker_left(baseline)


def test_a_stream_that_is_never_advanced_starts_no_thread() -> None:
    baseline = threading.active_count()
    stream = async_stream(range(10), lambda x: x)
    del stream
    gc.collect()
    assert _workers() == []
    assert threading.active_count() == baseline


def test_the_module_docstring_example_gives_what_it_says() -> None:
    assert list(async_stream(["a", "bb", "ccc"], len)) == [1, 2, 3]


# --- ordering --------------------------------------------------------------------


def test_results_come_in_input_order_even_when_later_items_finish_first() -> None:
    last_done = threading.Event()

    def fn(x: int) -> int:
        if x == 0:
            assert last_done.wait(WAIT), "item 3 never ran while item 0 was running"
        if x == 3:
            last_done.set()
        return x * x

    assert list(async_stream(range(4), fn, max_concurrency=4)) == [0, 1, 4, 9]


def test_a_long_stream_keeps_input_order() -> None:
    n = 20_000
    results = list(async_stream(range(n), lambda x: -x, max_concurrency=500))
    assert results == [-x for x in range(n)]


def test_an_unordered_stream_yields_a_result_as_soon_as_it_is_done() -> None:
    released = threading.Event()

    def fn(x: int) -> int:
        if x == 0:
            assert released.wait(WAIT)
        return x

    stream = async_stream(range(2), fn, max_concurrency=2, ordered=False)
    first = next(stream)  # item 0 is still running: item 1's result comes first
    released.set()
    assert [first, *stream] == [1, 0]


def test_an_unordered_stream_yields_every_result_once() -> None:
    n = 20_000
    results = list(async_stream(range(n), lambda x: x * 2, max_concurrency=300, ordered=False))
    assert sorted(results) == [x * 2 for x in range(n)]


# --- concurrency -----------------------------------------------------------------


@pytest.mark.parametrize("timeout", [5.0, None])
@pytest.mark.parametrize("ordered", [True, False])
def test_max_concurrency_is_reached_and_never_exceeded(
    ordered: bool, timeout: float | None
) -> None:
    limit = 3
    source = Counted(iter(range(30)))
    together = threading.Barrier(limit, timeout=WAIT)  # breaks unless 3 calls overlap
    lock = threading.Lock()
    running = 0
    most_running = 0

    def fn(x: int) -> int:
        nonlocal running, most_running
        with lock:
            running += 1
            most_running = max(most_running, running)
        if x < limit:
            together.wait()
        with lock:
            running -= 1
        return x

    results = []
    stream = async_stream(source, fn, max_concurrency=limit, ordered=ordered, timeout=timeout)
    for result in stream:
        source.got_one()
        results.append(result)

    assert sorted(results) == list(range(30))
    assert most_running == limit
    assert source.most_in_flight <= limit


def test_finished_results_waiting_for_their_turn_count_as_in_flight() -> None:
    limit = 4
    source = Counted(iter(range(200)))
    first_blocked = threading.Event()

    def fn(x: int) -> int:
        if x == 0:
            # Hold the head of an ordered stream until the rest of the window is done.
            assert first_blocked.wait(WAIT)
        if x == limit - 1:
            first_blocked.set()
        return x

    for _ in async_stream(source, fn, max_concurrency=limit):
        source.got_one()
    assert source.most_in_flight <= limit


def test_work_runs_on_at_most_max_threads_named_daemon_workers() -> None:
    pair = threading.Barrier(2, timeout=WAIT)  # each call waits for another: needs 2 threads
    lock = threading.Lock()
    names: set[str] = set()
    running = 0
    most_running = 0

    def fn(x: int) -> int:
        nonlocal running, most_running
        thread = threading.current_thread()
        assert thread.daemon
        with lock:
            names.add(thread.name)
            running += 1
            most_running = max(most_running, running)
        pair.wait()
        with lock:
            running -= 1
        return x

    assert list(async_stream(range(8), fn, max_concurrency=8, max_threads=2)) == list(range(8))
    assert names == {f"{WORKER_PREFIX}1", f"{WORKER_PREFIX}2"}
    assert most_running == 2


def test_a_hundred_thousand_items_run_on_a_bounded_set_of_threads() -> None:
    baseline = threading.active_count()
    n = 100_000
    threads: set[int] = set()

    def record(x: int) -> int:
        threads.add(threading.get_ident())
        return x

    started = time.perf_counter()
    for x in range(n):
        record(x)
    plain_loop = time.perf_counter() - started
    threads.clear()

    started = time.perf_counter()
    results = list(async_stream(range(n), record, max_concurrency=2000))
    streamed = time.perf_counter() - started

    assert results == list(range(n))
    assert 1 <= len(threads) <= 32
    assert threading.active_count() == baseline
    # Tens of milliseconds on a 2-core machine; the bound only catches a thread per item.
    assert streamed < plain_loop + 2.0


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize("ordered", [True, False])
def test_an_exception_from_fn_is_raised_in_the_consumer_as_the_same_object(
    ordered: bool,
) -> None:
    baseline = threading.active_count()
    boom = ValueError("item 5 is bad")
    source = Counted(itertools.count())

    def fn(x: int) -> int:
        if x == 5:
            raise boom
        return x

    stream = async_stream(source, fn, max_concurrency=4, ordered=ordered)
    seen = []
    with pytest.raises(ValueError) as caught:
        for x in stream:
            seen.append(x)
    assert caught.value is boom
    if ordered:
        assert seen == [0, 1, 2, 3, 4]
    # The stream stopped pulling from the endless input, and its workers are gone.
    pulled = source.pulled
    assert pulled <= len(seen) + 1 + 4
    assert _workers() == []
    assert threading.active_count() <= baseline
    assert source.pulled == pulled
    assert next(stream, "done") == "done"


def test_an_error_from_the_input_is_raised_after_the_items_before_it() -> None:
    broken = KeyError("input broke")

    def source() -> Iterator[int]:
        yield from range(3)
        raise broken

    stream = async_stream(source(), lambda x: x + 100)
    assert [next(stream), next(stream), next(stream)] == [100, 101, 102]
    with pytest.raises(KeyError) as caught:
        next(stream)
    assert caught.value is broken


def test_a_call_running_past_its_timeout_raises_task_timeout_naming_the_item() -> None:
    baseline = threading.active_count()
    release = threading.Event()

    def fn(x: int) -> int:
        if x == 1:
            release.wait(WAIT)  # the slow item: far longer than the timeout
        return x

    stream = async_stream(range(5), fn, max_concurrency=2, timeout=SHORT)
    try:
        assert next(stream) == 0
        started = time.monotonic()
        with pytest.raises(TaskTimeout) as caught:
            next(stream)
        assert time.monotonic() - started < WAIT / 2  # raised at the deadline, not at the end
    finally:
        release.set()
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, OtpError)
    assert (error.index, error.timeout) == (1, SHORT)
    assert str(error) == "async_stream item 1 did not finish within 0.5 s"
    _assert_no_worker_left(baseline)


def test_an_unordered_stream_yields_what_is_done_then_raises_for_the_stuck_item() -> None:
    baseline = threading.active_count()
    release = threading.Event()

    def fn(x: int) -> int:
        if x == 3:
            release.wait(WAIT)
        return x

    stream = async_stream(range(4), fn, max_concurrency=2, ordered=False, timeout=SHORT)
    seen = []
    try:
        with pytest.raises(TaskTimeout, match=r"item 3 did not finish within 0\.5 s"):
            for x in stream:
                seen.append(x)
    finally:
        release.set()
    assert seen == [0, 1, 2]
    _assert_no_worker_left(baseline)


def test_no_timeout_lets_a_call_take_as_long_as_it_needs() -> None:
    other_done = threading.Event()

    def fn(x: int) -> int:
        if x == 0:
            # Outlives any short timeout: it waits for item 1, which needs a second thread.
            assert other_done.wait(WAIT)
        else:
            other_done.set()
        return x

    assert list(async_stream(range(2), fn, max_concurrency=2, timeout=None)) == [0, 1]


# --- cleanup ---------------------------------------------------------------------


def test_consuming_the_whole_stream_leaves_the_thread_count_where_it_was() -> None:
    baseline = threading.active_count()
    held = threading.Barrier(4, timeout=WAIT)  # forces 4 workers to be started

    def fn(x: int) -> int:
        if x < 4:
            held.wait()
        return x

    assert list(async_stream(range(100), fn, max_concurrency=8)) == list(range(100))
    assert _workers() == []
    assert threading.active_count() == baseline


def test_the_stream_ends_only_after_its_workers_are_joined() -> None:
    baseline = threading.active_count()
    stream = async_stream(range(3), lambda x: x, max_concurrency=3)
    assert [next(stream), next(stream), next(stream)] == [0, 1, 2]
    with pytest.raises(StopIteration):
        next(stream)
    assert _workers() == []
    assert threading.active_count() == baseline


@pytest.mark.parametrize("how", ["break", "close", "garbage collection"])
def test_leaving_the_stream_early_leaves_no_worker_behind(how: str) -> None:
    baseline = threading.active_count()
    held = threading.Barrier(4, timeout=WAIT)
    source = Counted(itertools.count())

    def fn(x: int) -> int:
        if x < 4:
            held.wait()
        return x

    if how == "break":
        for x in async_stream(source, fn, max_concurrency=50):
            if x == 10:
                break  # the loop held the only reference: the stream is closed now
    else:
        stream = async_stream(source, fn, max_concurrency=50)
        assert next(stream) == 0
        if how == "close":
            assert isinstance(stream, Generator)
            stream.close()
        else:
            del stream
            gc.collect()

    _assert_no_worker_left(baseline)
    pulled = source.pulled
    assert source.pulled == pulled  # nothing pulls from the input any more


def test_an_empty_input_gives_an_empty_stream() -> None:
    baseline = threading.active_count()
    assert list(async_stream([], lambda x: x)) == []
    assert threading.active_count() == baseline


# --- arguments -------------------------------------------------------------------


MUST = {
    "max_concurrency": "max_concurrency must be a positive integer",
    "max_threads": "max_threads must be a positive integer",
    "timeout": "timeout must be a positive number or None",
    "fn": "fn must be callable",
    "ordered": "ordered must be a bool",
}


@pytest.mark.parametrize(
    ("name", "value", "error", "shown"),
    [
        ("max_concurrency", 0, ValueError, "0"),
        ("max_concurrency", -2, ValueError, "-2"),
        ("max_concurrency", 2.0, TypeError, "2.0"),
        ("max_concurrency", "2", TypeError, "'2'"),
        ("max_concurrency", True, TypeError, "True"),
        ("max_threads", 0, ValueError, "0"),
        ("timeout", -1, ValueError, "-1"),
        ("timeout", 0, ValueError, "0"),
        ("timeout", float("nan"), ValueError, "nan"),
        ("timeout", "1", TypeError, "'1'"),
        ("timeout", True, TypeError, "True"),
        ("fn", 3, TypeError, "3"),
        ("ordered", "yes", TypeError, "'yes'"),
        ("ordered", 1, TypeError, "1"),
    ],
)
def test_bad_arguments_raise_at_the_call_site(
    name: str, value: object, error: type[Exception], shown: str
) -> None:
    args: dict[str, object] = {"iterable": range(3), "fn": lambda x: x, name: value}
    message = f"{MUST[name]}, got: {shown}"
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        async_stream(**args)  # type: ignore[arg-type]  # no next(): the call itself raises


@pytest.mark.parametrize("bad", [42, None, 1.5])
def test_a_non_iterable_input_raises_at_the_call_site(bad: object) -> None:
    with pytest.raises(
        TypeError, match=f"^iterable must be iterable, got: {re.escape(repr(bad))}$"
    ):
        async_stream(bad, lambda x: x)  # type: ignore[arg-type]


def test_an_error_message_shortens_a_huge_argument() -> None:
    with pytest.raises(
        TypeError, match=r"^ordered must be a bool, got: 'xxx+\.\.\.xxx+'$"
    ) as caught:
        async_stream(range(3), lambda x: x, ordered="x" * 10_000)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("timeout", [1, 0.5, float("inf"), 1e10, 10**100, 10**400])
def test_a_timeout_too_long_for_any_clock_means_no_limit(timeout: float) -> None:
    assert list(async_stream(range(3), lambda x: x, timeout=timeout)) == [0, 1, 2]


def test_schedulers_online_counts_the_cpus_this_process_may_run_on() -> None:
    if hasattr(os, "sched_getaffinity"):
        expected = len(os.sched_getaffinity(0))
    else:
        expected = os.cpu_count() or 1
    assert schedulers_online() == expected
    assert schedulers_online() >= 1
