"""Cases of OTP's supervisor_SUITE.erl ported to pytest: ignore, child administration, stop.

Each test names its source: lib/stdlib/test/supervisor_SUITE.erl, case after the ``__``.
The suite's ``sup_test`` supervisor is started by the `sup` fixture; ``supervisor_1``
is `Sup1`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from summarizer.otp import (
    Child,
    ChildSpec,
    GenServer,
    NoProcess,
    Pid,
    Process,
    Reply,
    StartError,
    Stop,
    Supervisor,
    SupervisorError,
)

from .helpers import WAIT, Sup1, counts, spec

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def sup() -> Iterator[str]:
    """Start the suite's empty one_for_one ``sup_test`` (2 restarts in 3600 s); stop it after."""
    pid = Supervisor.start_link([], max_restarts=2, max_seconds=3600, name="sup_test")
    yield "sup_test"
    if Process.alive(pid):
        Supervisor.stop(pid)


def exit_child(sup: str, child_id: Any, reason: Any) -> Pid:
    """Make the child exit with ``reason``; wait until its supervisor has handled it."""
    pid = running(sup, child_id)
    ref = Process.monitor(pid)
    Process.send(pid, ("stop", reason))
    assert ref.wait(WAIT) is not None
    Supervisor.which_children(sup)  # a call: the EXIT, queued before it, is handled
    return pid


def running(sup: str, child_id: Any) -> Pid:
    """Return the pid of the running child ``child_id``."""
    pid = next(c.pid for c in Supervisor.which_children(sup) if c.id == child_id)
    assert isinstance(pid, Pid)
    return pid


# supervisor_SUITE.erl, sup_start_ignore_child
def test_supervisor_SUITE__sup_start_ignore_child(sup: str) -> None:
    assert Supervisor.start_child(sup, spec("child1", "ignore")) is None
    cpid2 = Supervisor.start_child(sup, spec("child2"))
    assert Supervisor.which_children(sup) == [
        Child("child2", cpid2, "worker", []),
        Child("child1", None, "worker", []),
    ]
    assert counts(sup) == [2, 1, 0, 2]


# supervisor_SUITE.erl, sup_start_ignore_temporary_child_start_child: the spec is not saved
def test_supervisor_SUITE__sup_start_ignore_temporary_child_start_child(sup: str) -> None:
    assert Supervisor.start_child(sup, spec("child1", "ignore", restart="temporary")) is None
    cpid2 = Supervisor.start_child(sup, spec("child2", restart="temporary"))
    assert Supervisor.which_children(sup) == [Child("child2", cpid2, "worker", [])]
    assert counts(sup) == [1, 1, 0, 1]


# supervisor_SUITE.erl, sup_start_ignore_temporary_child (static children)
def test_supervisor_SUITE__sup_start_ignore_temporary_child() -> None:
    children = [spec("child1", "ignore", restart="temporary"), spec("child2", restart="temporary")]
    pid = Supervisor.start_link(children, name="sup_test")
    try:
        [child] = Supervisor.which_children(pid)
        assert child.id == "child2" and isinstance(child.pid, Pid)
        assert counts(pid) == [1, 1, 0, 1]
    finally:
        Supervisor.stop(pid)


# supervisor_SUITE.erl, sup_start_fail: a child's failure names it
def test_supervisor_SUITE__sup_start_fail() -> None:
    with pytest.raises(StartError) as info:
        Supervisor.start_link([spec("child1", "error")], name="sup_test")
    assert info.value.reason[0] == "shutdown"
    assert info.value.reason[1][:2] == ("failed_to_start_child", "child1")


# supervisor_SUITE.erl, sup_start_map: the defaults a spec gets, read back with get_childspec
def test_supervisor_SUITE__sup_start_map() -> None:
    start = (Sup1.start_link, (None,))
    children = [
        ChildSpec(id="child1", start=start),
        ChildSpec(id="child2", start=start, shutdown="brutal_kill"),
        ChildSpec(id="child3", start=(Supervisor.start_link, ([],)), type="supervisor"),
    ]
    pid = Supervisor.start_link(children)
    try:
        one = Supervisor.get_childspec(pid, "child1")
        assert (one.id, one.restart, one.shutdown, one.type) == (
            "child1",
            "permanent",
            5.0,
            "worker",
        )
        assert Supervisor.get_childspec(pid, "child2").shutdown == "brutal_kill"
        three = Supervisor.get_childspec(pid, "child3")
        assert (three.shutdown, three.type) == ("infinity", "supervisor")
        with pytest.raises(SupervisorError) as info:
            Supervisor.get_childspec(pid, "child4")
        assert info.value.reason == "not_found"
    finally:
        Supervisor.stop(pid)


# supervisor_SUITE.erl, sup_stop_brutal_kill: one child stops, the other is killed
def test_supervisor_SUITE__sup_stop_brutal_kill(sup: str) -> None:
    cpid1 = Supervisor.start_child(sup, spec("child1", shutdown=1.0))
    cpid2 = Supervisor.start_child(sup, spec("child2", shutdown="brutal_kill"))
    ref1, ref2 = Process.monitor(cpid1), Process.monitor(cpid2)
    Supervisor.stop(sup, "shutdown")
    assert ref1.wait(WAIT) == ("DOWN", ref1, "process", cpid1, "shutdown")
    assert ref2.wait(WAIT) == ("DOWN", ref2, "process", cpid2, "killed")


# supervisor_SUITE.erl, sup_stop_timeout: a child busy past its shutdown is killed
def test_supervisor_SUITE__sup_stop_timeout(sup: str) -> None:
    cpid1 = Supervisor.start_child(sup, spec("child1", shutdown=1.0))
    cpid2 = Supervisor.start_child(sup, spec("child2", "trap", shutdown=0.05))
    release = threading.Event()
    Process.send(cpid2, ("block", release))  # busy: it will not take its shutdown in time
    ref1, ref2 = Process.monitor(cpid1), Process.monitor(cpid2)
    try:
        Supervisor.stop(sup, "shutdown")
    finally:
        release.set()
    assert ref1.wait(WAIT) == ("DOWN", ref1, "process", cpid1, "shutdown")
    assert ref2.wait(WAIT) == ("DOWN", ref2, "process", cpid2, "killed")


# supervisor_SUITE.erl, child_adm
def test_supervisor_SUITE__child_adm() -> None:
    child = spec("child1", shutdown=1.0)
    Supervisor.start_link([child], max_restarts=2, max_seconds=3600, name="sup_test")
    try:
        [(_, cpid, _, _)] = Supervisor.which_children("sup_test")
        assert counts("sup_test") == [1, 1, 0, 1]
        with pytest.raises(StartError) as started:
            Supervisor.start_child("sup_test", child)
        assert started.value.reason == ("already_started", cpid)

        with pytest.raises(SupervisorError) as refused:
            Supervisor.terminate_child("sup_test", "hej")
        assert refused.value.reason == "not_found"
        with pytest.raises(NoProcess):
            Supervisor.terminate_child("foo", "child1")
        ref = Process.monitor(cpid)
        Supervisor.terminate_child("sup_test", "child1")
        assert ref.wait(WAIT) == ("DOWN", ref, "process", cpid, "shutdown")
        assert Supervisor.which_children("sup_test") == [Child("child1", None, "worker", [])]
        assert counts("sup_test") == [1, 0, 0, 1]
        Supervisor.terminate_child("sup_test", "child1")  # again: it succeeds

        with pytest.raises(StartError) as present:
            Supervisor.start_child("sup_test", child)
        assert present.value.reason == "already_present"

        cpid2 = Supervisor.restart_child("sup_test", "child1")
        assert Supervisor.which_children("sup_test") == [Child("child1", cpid2, "worker", [])]
        assert counts("sup_test") == [1, 1, 0, 1]
        for child_id, reason in (("child1", "running"), ("child2", "not_found")):
            with pytest.raises(StartError) as restart:
                Supervisor.restart_child("sup_test", child_id)
            assert restart.value.reason == reason

        for child_id, reason in (("child1", "running"), ("hej", "not_found")):
            with pytest.raises(SupervisorError) as delete:
                Supervisor.delete_child("sup_test", child_id)
            assert delete.value.reason == reason
        with pytest.raises(NoProcess):
            Supervisor.delete_child("foo", "child1")
        Supervisor.terminate_child("sup_test", "child1")
        Supervisor.delete_child("sup_test", "child1")
        with pytest.raises(StartError, match="not_found"):
            Supervisor.restart_child("sup_test", "child1")
        assert Supervisor.which_children("sup_test") == []
        assert counts("sup_test") == [0, 0, 0, 0]

        with pytest.raises(NoProcess):
            Supervisor.start_child("foo", child)
        cpid3 = Supervisor.start_child("sup_test", child)
        assert Supervisor.which_children("sup_test") == [Child("child1", cpid3, "worker", [])]
        # terminate with a pid is not allowed when not simple_one_for_one
        with pytest.raises(SupervisorError, match="not_found"):
            Supervisor.terminate_child("sup_test", cpid3)
        assert counts("sup_test") == [1, 1, 0, 1]
    finally:
        Supervisor.stop("sup_test")


# supervisor_SUITE.erl, child_specs: bad specs are refused at the call site
def test_supervisor_SUITE__child_specs(sup: str) -> None:
    with pytest.raises(TypeError, match="child must be"):
        Supervisor.start_child(sup, "hej")
    start = (Sup1.start_link, (None,))
    with pytest.raises(TypeError, match="start must be"):
        Supervisor.start_child(sup, {"id": "child", "start": "mfa"})
    with pytest.raises(ValueError, match="restart must be"):
        Supervisor.start_child(sup, {"id": "child", "start": start, "restart": "prmanent"})
    with pytest.raises(ValueError, match="shutdown must be"):
        Supervisor.start_child(sup, {"id": "child", "start": start, "shutdown": -10})
    with pytest.raises(ValueError, match="type must be"):
        Supervisor.start_child(sup, {"id": "child", "start": start, "type": "wrker"})
    assert Supervisor.which_children(sup) == []


# supervisor_SUITE.erl, sup_flags: an infinite or zero period is refused
@pytest.mark.parametrize("period", [0, float("inf")])
def test_supervisor_SUITE__sup_flags(period: float) -> None:
    with pytest.raises(ValueError, match="max_seconds must be a positive number"):
        Supervisor.start_link([], max_seconds=period)


# supervisor_SUITE.erl, permanent_normal
def test_supervisor_SUITE__permanent_normal(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1"))
    old = exit_child(sup, "child1", "normal")
    assert running(sup, "child1") != old
    assert counts(sup) == [1, 1, 0, 1]


# supervisor_SUITE.erl, transient_normal
def test_supervisor_SUITE__transient_normal(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1", restart="transient"))
    exit_child(sup, "child1", "normal")
    assert Supervisor.which_children(sup) == [Child("child1", None, "worker", [])]
    assert counts(sup) == [1, 0, 0, 1]


# supervisor_SUITE.erl, temporary_normal
def test_supervisor_SUITE__temporary_normal(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1", restart="temporary"))
    exit_child(sup, "child1", "normal")
    assert Supervisor.which_children(sup) == []
    assert counts(sup) == [0, 0, 0, 0]


# supervisor_SUITE.erl, transient_shutdown: not restarted; restart_child starts it again
def test_supervisor_SUITE__transient_shutdown(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1", restart="transient"))
    exit_child(sup, "child1", "shutdown")
    assert counts(sup) == [1, 0, 0, 1]
    assert isinstance(Supervisor.restart_child(sup, "child1"), Pid)
    exit_child(sup, "child1", ("shutdown", "some_info"))
    assert Supervisor.which_children(sup) == [Child("child1", None, "worker", [])]


# supervisor_SUITE.erl, temporary_shutdown
def test_supervisor_SUITE__temporary_shutdown(sup: str) -> None:
    child = spec("child1", restart="temporary")
    Supervisor.start_child(sup, child)
    exit_child(sup, "child1", "shutdown")
    assert counts(sup) == [0, 0, 0, 0]
    Supervisor.start_child(sup, child)
    exit_child(sup, "child1", ("shutdown", "some_info"))
    assert counts(sup) == [0, 0, 0, 0]


# supervisor_SUITE.erl, transient_abnormal
def test_supervisor_SUITE__transient_abnormal(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1", restart="transient"))
    old = exit_child(sup, "child1", "abnormal")
    assert running(sup, "child1") != old
    assert counts(sup) == [1, 1, 0, 1]


# supervisor_SUITE.erl, temporary_abnormal
def test_supervisor_SUITE__temporary_abnormal(sup: str) -> None:
    Supervisor.start_child(sup, spec("child1", restart="temporary"))
    exit_child(sup, "child1", "abnormal")
    assert counts(sup) == [0, 0, 0, 0]


# supervisor_SUITE.erl, temporary_bystander: a temporary sibling stopped by
# one_for_all is not restarted, and its spec is gone
def test_supervisor_SUITE__temporary_bystander() -> None:
    children = [spec("child1", restart="permanent"), spec("child2", restart="temporary")]
    pid = Supervisor.start_link(children, strategy="one_for_all", name="sup_test")
    try:
        exit_child("sup_test", "child1", "abnormal")
        assert [c.id for c in Supervisor.which_children(pid)] == ["child1"]
    finally:
        Supervisor.stop(pid)


# supervisor_SUITE.erl, count_children
def test_supervisor_SUITE__count_children(sup: str) -> None:
    for i in range(10):
        Supervisor.start_child(sup, spec(f"child{i}"))
    Supervisor.start_child(
        sup,
        ChildSpec(id="sup", start=(Supervisor.start_link, ([],)), type="supervisor"),
    )
    assert counts(sup) == [11, 11, 1, 10]
    Supervisor.terminate_child(sup, "child0")
    assert counts(sup) == [11, 10, 1, 10]


def test_a_child_added_to_a_nested_tree_is_stopped_with_it(sup: str) -> None:
    inner = Supervisor.start_child(
        sup, ChildSpec(id="inner", start=(Supervisor.start_link, ([],)), type="supervisor")
    )
    leaf = Supervisor.start_child(inner, spec("leaf"))
    ref = Process.monitor(leaf)
    Supervisor.terminate_child(sup, "inner")
    assert ref.wait(WAIT) == ("DOWN", ref, "process", leaf, "shutdown")


class Stack(GenServer):
    """supervisor_test.exs's Stack."""

    def handle_call(self, request: Any, from_: Any, stack: list[Any]) -> Reply | Stop:
        if request == "pop":
            return Reply(stack[0], stack[1:])
        return Stop("normal", stack, reply="ok")


# lib/elixir/test/elixir/supervisor_test.exs, "child life-cycle"
def test_supervisor_test__child_life_cycle() -> None:
    pid = Supervisor.start_link([])
    try:
        assert Supervisor.which_children(pid) == []
        assert Supervisor.count_children(pid) == {
            "specs": 0,
            "active": 0,
            "supervisors": 0,
            "workers": 0,
        }
        stack = Supervisor.start_child(pid, (Stack, ["hello"]))
        assert GenServer.call(stack, "pop") == "hello"
        assert Supervisor.which_children(pid) == [Child("Stack", stack, "worker", ["Stack"])]
        assert counts(pid) == [1, 1, 0, 1]
        with pytest.raises(SupervisorError, match="running"):
            Supervisor.delete_child(pid, "Stack")
        Supervisor.terminate_child(pid, "Stack")
        stack = Supervisor.restart_child(pid, "Stack")
        assert GenServer.call(stack, "pop") == "hello"
        Supervisor.terminate_child(pid, "Stack")
        Supervisor.delete_child(pid, "Stack")
    finally:
        Supervisor.stop(pid)


# lib/elixir/test/elixir/supervisor_test.exs, "start_child/2" "supports new child spec"
# (and "as tuple": a dict)
def test_supervisor_test__start_child_supports_new_child_spec() -> None:
    pid = Supervisor.start_link([])
    try:
        assert isinstance(Supervisor.start_child(pid, (Stack, [])), Pid)
        as_dict = {"id": "Task", "restart": "temporary", "start": (Stack.start_link, ([],))}
        assert isinstance(Supervisor.start_child(pid, as_dict), Pid)
    finally:
        Supervisor.stop(pid)


# lib/elixir/test/elixir/supervisor_test.exs, "start_link/2": a child that stops
# normally (permanent) is restarted from its spec
def test_supervisor_test__start_link() -> None:
    pid = Supervisor.start_link([(Stack, ["hello"])])
    try:
        [(_, stack, _, _)] = Supervisor.which_children(pid)
        assert GenServer.call(stack, "pop") == "hello"
        ref = Process.monitor(stack)
        assert GenServer.call(stack, "stop") == "ok"
        assert ref.wait(WAIT) is not None
        [(_, again, _, _)] = Supervisor.which_children(pid)
        assert again != stack
        assert GenServer.call(again, "pop") == "hello"
    finally:
        Supervisor.stop(pid)
