"""Cases of Elixir's dynamic_supervisor_test.exs ported to pytest.

Each test names its source: lib/elixir/test/elixir/dynamic_supervisor_test.exs, the
``describe`` block and test after the ``__``. ``current_module_worker`` and
``sleepy_worker`` are `Sup1` children; ``assert_kill`` is `assert_kill`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from summarizer.otp import (
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    Ok,
    Pid,
    Process,
    StartError,
    Supervisor,
    SupervisorError,
)

from .helpers import WAIT, Sup1, spec

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def dyn() -> Iterator[list[Pid]]:
    """Collect the dynamic supervisors a test starts; stop those still running after it."""
    started: list[Pid] = []
    yield started
    for pid in started:
        if Process.alive(pid):
            DynamicSupervisor.stop(pid)


def start(dyn: list[Pid], **options: Any) -> Pid:
    pid = DynamicSupervisor.start_link(**options)
    dyn.append(pid)
    return pid


def assert_kill(pid: Any, reason: Any) -> None:
    """Exit ``pid`` with ``reason`` and wait for its DOWN, as the Elixir test's helper."""
    ref = Process.monitor(pid)
    Process.exit(pid, reason)
    assert ref.wait(WAIT) is not None


def counts(sup: Any) -> tuple[int, int]:
    """Return ``(workers, active)`` (a call: exits queued before it are handled)."""
    c = DynamicSupervisor.count_children(sup)
    return c["workers"], c["active"]


# "can be supervised directly"
def test_dynamic_supervisor_test__can_be_supervised_directly() -> None:
    sup = Supervisor.start_link([(DynamicSupervisor, {"name": "dyn_sup_spec_test"})])
    try:
        assert DynamicSupervisor.which_children("dyn_sup_spec_test") == []
        [child] = Supervisor.which_children(sup)
        assert (child.id, child.type) == ("dyn_sup_spec_test", "supervisor")
        assert Supervisor.get_childspec(sup, "dyn_sup_spec_test").shutdown == "infinity"
    finally:
        Supervisor.stop(sup)


# start_link/3 "with non-ok init": bad options
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"strategy": "unknown"}, ValueError),
        ({"max_restarts": -1}, ValueError),
        ({"max_seconds": 0}, ValueError),
        ({"max_children": -1}, ValueError),
        ({"extra_arguments": -1}, TypeError),
    ],
)
def test_dynamic_supervisor_test__start_link_with_non_ok_init(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="got: "):
        DynamicSupervisor.start_link(**options)


# start_link/3 "with registered process"
def test_dynamic_supervisor_test__start_link_with_registered_process() -> None:
    pid = DynamicSupervisor.start_link(name="DynamicSupervisorTest")
    assert Process.whereis("DynamicSupervisorTest") == pid
    DynamicSupervisor.stop("DynamicSupervisorTest")
    assert not Process.alive(pid)


# start_child/2 "supports new child spec" and "with different returns"
def test_dynamic_supervisor_test__start_child_with_different_returns(dyn: list[Pid]) -> None:
    sup = start(dyn)
    assert isinstance(DynamicSupervisor.start_child(sup, (Sup1, None)), Pid)
    assert isinstance(DynamicSupervisor.start_child(sup, spec("Task")), Pid)
    assert DynamicSupervisor.start_child(sup, spec("Task", "ignore")) is None
    with pytest.raises(StartError) as info:
        DynamicSupervisor.start_child(sup, spec("Task", "error"))
    assert isinstance(info.value.reason, RuntimeError)
    assert counts(sup) == (2, 2)


# start_child/2 "supports extra arguments"
def test_dynamic_supervisor_test__start_child_supports_extra_arguments(dyn: list[Pid]) -> None:
    got: list[Any] = []

    class Task(GenServer):
        def init(self, arg: Any) -> Ok:
            return Ok(arg)

        @classmethod
        def start_link(cls, extra: Any = None, arg: Any = None, name: str | None = None) -> Any:
            got.append((extra, arg))
            return super().start_link(arg)

    sup = start(dyn, extra_arguments=["from_sup"])
    DynamicSupervisor.start_child(sup, ChildSpec(id="Task", start=(Task.start_link, ("mine",))))
    assert got == [("from_sup", "mine")]


# start_child/2 "with max_children"
def test_dynamic_supervisor_test__start_child_with_max_children(dyn: list[Pid]) -> None:
    sup = start(dyn, max_children=0)
    with pytest.raises(StartError) as info:
        DynamicSupervisor.start_child(sup, spec("Task"))
    assert info.value.reason == "max_children"


# start_child/2 "temporary child is not restarted regardless of reason"
def test_dynamic_supervisor_test__temporary_child_is_not_restarted(dyn: list[Pid]) -> None:
    sup = start(dyn)
    child = spec("Task", restart="temporary")
    assert_kill(DynamicSupervisor.start_child(sup, child), "shutdown")
    assert counts(sup) == (0, 0)
    assert_kill(DynamicSupervisor.start_child(sup, child), "whatever")
    assert counts(sup) == (0, 0)


# start_child/2 "transient child is restarted unless normal/shutdown/{shutdown, _}"
def test_dynamic_supervisor_test__transient_child_is_restarted_unless_normal(
    dyn: list[Pid],
) -> None:
    sup = start(dyn)
    child = spec("Task", restart="transient")
    assert_kill(DynamicSupervisor.start_child(sup, child), "shutdown")
    assert counts(sup) == (0, 0)
    assert_kill(DynamicSupervisor.start_child(sup, child), ("shutdown", "signal"))
    assert counts(sup) == (0, 0)
    assert_kill(DynamicSupervisor.start_child(sup, child), "whatever")
    assert counts(sup) == (1, 1)


# start_child/2 "permanent child is restarted regardless of reason"
def test_dynamic_supervisor_test__permanent_child_is_restarted(dyn: list[Pid]) -> None:
    sup = start(dyn, max_restarts=100_000)
    child = spec("Task", restart="permanent")
    assert_kill(DynamicSupervisor.start_child(sup, child), "shutdown")
    assert counts(sup) == (1, 1)
    assert_kill(DynamicSupervisor.start_child(sup, child), ("shutdown", "signal"))
    assert counts(sup) == (2, 2)
    assert_kill(DynamicSupervisor.start_child(sup, child), "whatever")
    assert counts(sup) == (3, 3)
    rows = DynamicSupervisor.which_children(sup)
    assert [(r.id, r.type, r.modules) for r in rows] == [(None, "worker", [])] * 3


class Flaky(GenServer):
    """``current_module_worker([:restart, value])``: starts once, then does ``value``."""

    def init(self, arg: tuple[list[bool], Any]) -> Any:
        started, then = arg
        if not started:
            started.append(True)
            return Ok(None)
        return Sup1().init(then)


def flaky(then: Any, **options: Any) -> ChildSpec:
    return ChildSpec(id="Flaky", start=(Flaky.start_link, (([], then),)), **options)


# start_child/2 "child is restarted with different values": ignore drops it,
# an error leaves it "restarting"
def test_dynamic_supervisor_test__child_is_restarted_with_different_values(
    dyn: list[Pid],
) -> None:
    sup = start(dyn, max_restarts=100_000)
    child3 = DynamicSupervisor.start_child(sup, flaky("ignore"))
    assert_kill(child3, "shutdown")
    assert counts(sup) == (0, 0)
    child4 = DynamicSupervisor.start_child(sup, flaky("error"))
    assert_kill(child4, "shutdown")
    workers, active = counts(sup)
    assert (workers, active) == (1, 0)
    assert [r.pid for r in DynamicSupervisor.which_children(sup)] == ["restarting"]
    # terminate_child/2 "terminates restarting child"
    DynamicSupervisor.terminate_child(sup, child4)
    with pytest.raises(SupervisorError) as info:
        DynamicSupervisor.terminate_child(sup, child4)
    assert info.value.reason == "not_found"
    assert counts(sup) == (0, 0)


# start_child/2 "restarting on init children counted in max_children"
def test_dynamic_supervisor_test__restarting_children_counted_in_max_children(
    dyn: list[Pid],
) -> None:
    sup = start(dyn, max_children=1, max_restarts=100_000)
    assert_kill(DynamicSupervisor.start_child(sup, flaky("error")), "shutdown")
    assert counts(sup) == (1, 0)
    with pytest.raises(StartError, match="max_children"):
        DynamicSupervisor.start_child(sup, spec("Task"))
    DynamicSupervisor.stop(sup)


# start_child/2 "child triggers maximum restarts"
def test_dynamic_supervisor_test__child_triggers_maximum_restarts() -> None:
    sup = DynamicSupervisor.start_link(max_restarts=1)
    ref = Process.monitor(sup)
    assert_kill(DynamicSupervisor.start_child(sup, flaky("error")), "shutdown")
    assert ref.wait(WAIT) == ("DOWN", ref, "process", sup, "shutdown")


# terminate/2 "terminates children with brutal kill"
def test_dynamic_supervisor_test__terminates_children_with_brutal_kill() -> None:
    sup = DynamicSupervisor.start_link()
    kids = [DynamicSupervisor.start_child(sup, spec("Task", shutdown="brutal_kill")) for _ in "abc"]
    refs = [Process.monitor(k) for k in kids]
    DynamicSupervisor.stop(sup, "shutdown")
    assert [r.wait(WAIT)[4] for r in refs] == ["killed"] * 3  # type: ignore[index]


# terminate/2 "terminates children with expired integer shutdown"
def test_dynamic_supervisor_test__terminates_children_with_expired_shutdown() -> None:
    sup = DynamicSupervisor.start_link()
    child1 = DynamicSupervisor.start_child(sup, spec("Task", shutdown=1.0))
    child2 = DynamicSupervisor.start_child(sup, spec("Task", "trap", shutdown=0.05))
    child3 = DynamicSupervisor.start_child(sup, spec("Task", shutdown=1.0))
    release = threading.Event()
    Process.send(child2, ("block", release))  # trapping and busy: it misses its shutdown
    refs = [Process.monitor(c) for c in (child1, child2, child3)]
    try:
        DynamicSupervisor.stop(sup, "shutdown")
    finally:
        release.set()
    assert [r.wait(WAIT)[4] for r in refs] == ["shutdown", "killed", "shutdown"]  # type: ignore[index]


def test_children_stop_in_parallel_each_within_its_own_shutdown() -> None:
    """Three children whose terminate waits for the other two: only a parallel stop passes."""
    barrier = threading.Barrier(3, timeout=WAIT / 2)
    passed: list[bool] = []

    class Slow(GenServer):
        def init(self, arg: Any) -> Ok:
            Process.flag("trap_exit", True)
            return Ok(arg)

        def terminate(self, reason: Any, state: Any) -> None:
            try:
                barrier.wait()
                passed.append(True)
            except threading.BrokenBarrierError:
                passed.append(False)

    sup = DynamicSupervisor.start_link()
    for _ in range(3):
        DynamicSupervisor.start_child(sup, ChildSpec(id="Slow", start=(Slow.start_link, (None,))))
    DynamicSupervisor.stop(sup)
    assert passed == [True, True, True]


# terminate_child/2 "terminates child with brutal kill" / "with integer shutdown"
@pytest.mark.parametrize(("shutdown", "reason"), [("brutal_kill", "killed"), (1.0, "shutdown")])
def test_dynamic_supervisor_test__terminate_child(
    dyn: list[Pid], shutdown: Any, reason: str
) -> None:
    sup = start(dyn)
    child = DynamicSupervisor.start_child(sup, spec("Task", shutdown=shutdown))
    ref = Process.monitor(child)
    DynamicSupervisor.terminate_child(sup, child)
    assert ref.wait(WAIT) == ("DOWN", ref, "process", child, reason)
    with pytest.raises(SupervisorError, match="not a child"):
        DynamicSupervisor.terminate_child(sup, child)
    assert counts(sup) == (0, 0)


def test_an_exit_signal_from_a_stranger_is_ignored(dyn: list[Pid]) -> None:
    sup = start(dyn)
    child = DynamicSupervisor.start_child(sup, spec("Task"))
    Process.exit(sup, "boom")  # a plain thread: no sender, not a child
    assert DynamicSupervisor.which_children(sup)[0].pid == child
