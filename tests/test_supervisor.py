"""Supervisor: child forms, start order, strategies, restart values, intensity, shutdown."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import WAIT

from summarizer.otp import (
    Child,
    ChildSpec,
    GenServer,
    NoProcess,
    NoReply,
    Ok,
    Pid,
    Process,
    Reply,
    StartError,
    Stop,
    Supervisor,
)

pytestmark = pytest.mark.usefixtures("no_leaks")


class Worker(GenServer):
    """A child that traps exits and writes its life (init, terminate) into a journal."""

    def init(self, arg: tuple[list[Any], str]) -> Ok:
        self.journal, self.wid = arg
        Process.flag("trap_exit", True)
        self.journal.append(("init", self.wid))
        return Ok(0)

    def handle_call(self, request: Any, from_: Any, n: int) -> Reply:
        if request == "get":
            return Reply(n, n)
        raise ValueError(f"unexpected call {request!r}")

    def handle_cast(self, request: Any, n: int) -> NoReply | Stop:
        if request == "crash":
            raise RuntimeError(f"{self.wid} crashed on purpose")
        if request[0] == "add":
            return NoReply(n + request[1])
        if request[0] == "stop":
            return Stop(request[1], n)
        raise ValueError(f"unexpected cast {request!r}")

    def terminate(self, reason: Any, n: int) -> None:
        logged = "crash" if isinstance(reason, BaseException) else reason
        self.journal.append(("terminate", self.wid, logged))


def worker(journal: list[Any], wid: str, **options: Any) -> ChildSpec:
    """Return the spec of a `Worker` whose id is ``wid``."""
    return ChildSpec(
        id=wid, start=(Worker.start_link, ((journal, wid),)), modules=["Worker"], **options
    )


def pids(sup: Any) -> dict[Any, Any]:
    """Return ``{id: pid}`` of the supervisor's children (a call: it syncs with the supervisor)."""
    return {child.id: child.pid for child in Supervisor.which_children(sup)}


def crash(pid: Pid) -> None:
    """Crash a worker and wait until it is dead, so its supervisor has its exit queued."""
    GenServer.cast(pid, "crash")
    assert Process.monitor_wait(pid, WAIT)


class Parent(GenServer):
    """Start what the test asks, linked to itself, and report their exits on a queue."""

    def init(self, inbox: queue.Queue[Any]) -> Ok:
        Process.flag("trap_exit", True)
        return Ok(inbox)

    def handle_call(self, start: Callable[[], Any], from_: Any, inbox: Any) -> Reply:
        return Reply(start(), inbox)

    def handle_info(self, msg: Any, inbox: queue.Queue[Any]) -> NoReply:
        inbox.put(msg)
        return NoReply(inbox)


def start_under_parent(start: Callable[[], Pid]) -> tuple[Pid, Pid, queue.Queue[Any]]:
    """Start a supervisor from a trapping parent; return (parent, supervisor, parent's inbox)."""
    inbox: queue.Queue[Any] = queue.Queue()
    parent = Parent.start_link(inbox)
    return parent, GenServer.call(parent, start), inbox


# -- children and start order ----------------------------------------------


class Plain(GenServer):
    """Answer every call with the arg it was started with."""

    def handle_call(self, request: Any, from_: Any, arg: Any) -> Reply:
        return Reply(arg, arg)


class Other(Plain):
    """A second class, so that two class-built children get different ids."""


def test_children_can_be_a_class_a_class_and_arg_pair_a_child_spec_or_a_dict() -> None:
    sup = Supervisor.start_link(
        [
            Plain,
            (Other, "pair arg"),
            ChildSpec(id="spec", start=(Plain.start_link, ("spec arg",))),
            {"id": "dict", "start": (Plain.start_link, (), {"arg": "dict arg"})},
        ]
    )
    try:
        children = pids(sup)
        assert list(children) == ["dict", "spec", "Other", "Plain"]
        answers = {cid: GenServer.call(pid, "arg?") for cid, pid in children.items()}
        assert answers == {
            "Plain": None,
            "Other": "pair arg",
            "spec": "spec arg",
            "dict": "dict arg",
        }
    finally:
        Supervisor.stop(sup)


class SlowInit(GenServer):
    """Take a while in init, logging when it begins and ends."""

    def init(self, arg: tuple[list[Any], str]) -> Ok:
        journal, wid = arg
        journal.append(("init begins", wid))
        time.sleep(0.01)  # slow on purpose: a concurrent start would interleave
        journal.append(("init ends", wid))
        return Ok(None)


def test_children_start_one_at_a_time_in_list_order() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link(
        [ChildSpec(id=w, start=(SlowInit.start_link, ((journal, w),))) for w in "abc"]
    )
    try:
        assert journal == [
            ("init begins", "a"),
            ("init ends", "a"),
            ("init begins", "b"),
            ("init ends", "b"),
            ("init begins", "c"),
            ("init ends", "c"),
        ]
    finally:
        Supervisor.stop(sup)


class BadInit(GenServer):
    """Fail to start."""

    def init(self, arg: Any) -> Ok:
        raise ValueError("bad child")


def test_a_child_failing_to_start_stops_the_started_ones_and_start_link_raises() -> None:
    journal: list[Any] = []
    children = [
        worker(journal, "a"),
        worker(journal, "b"),
        ChildSpec(id="bad", start=(BadInit.start_link, (None,))),
        worker(journal, "c"),
    ]
    with pytest.raises(StartError) as info:
        Supervisor.start_link(children, name="doomed")
    _shutdown, (_failed, child_id, reason) = info.value.reason
    assert child_id == "bad"
    assert isinstance(reason, ValueError)
    assert journal == [
        ("init", "a"),
        ("init", "b"),
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]
    assert Process.whereis("doomed") is None


def test_a_child_whose_start_returns_none_is_kept_as_not_running() -> None:
    sup = Supervisor.start_link([ChildSpec(id="ignored", start=(lambda: None, ()))])
    try:
        assert Supervisor.which_children(sup) == [("ignored", None, "worker", [])]
        assert Supervisor.count_children(sup)["active"] == 0
    finally:
        Supervisor.stop(sup)


# -- strategies -------------------------------------------------------------


def start_abc(strategy: str) -> tuple[Pid, list[Any], dict[Any, Any]]:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, w) for w in "abc"], strategy=strategy)
    before = pids(sup)
    journal.clear()
    return sup, journal, before


def test_one_for_one_restarts_only_the_child_that_died() -> None:
    sup, journal, before = start_abc("one_for_one")
    try:
        crash(before["b"])
        after = pids(sup)
        assert journal == [("terminate", "b", "crash"), ("init", "b")]
        assert after["b"] != before["b"]
        assert Process.alive(after["b"])
        assert (after["a"], after["c"]) == (before["a"], before["c"])
    finally:
        Supervisor.stop(sup)


def test_one_for_all_stops_the_others_in_reverse_order_then_restarts_all_in_order() -> None:
    sup, journal, before = start_abc("one_for_all")
    try:
        crash(before["b"])
        after = pids(sup)
        assert journal == [
            ("terminate", "b", "crash"),
            ("terminate", "c", "shutdown"),
            ("terminate", "a", "shutdown"),
            ("init", "a"),
            ("init", "b"),
            ("init", "c"),
        ]
        assert all(after[w] != before[w] for w in "abc")
        assert not any(Process.alive(before[w]) for w in "abc")
    finally:
        Supervisor.stop(sup)


def test_rest_for_one_restarts_the_dead_child_and_those_started_after_it() -> None:
    sup, journal, before = start_abc("rest_for_one")
    try:
        crash(before["b"])
        after = pids(sup)
        assert journal == [
            ("terminate", "b", "crash"),
            ("terminate", "c", "shutdown"),
            ("init", "b"),
            ("init", "c"),
        ]
        assert after["a"] == before["a"]
        assert after["b"] != before["b"] and after["c"] != before["c"]
    finally:
        Supervisor.stop(sup)


def test_a_restarted_child_starts_afresh_from_init() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "a")])
    try:
        old = pids(sup)["a"]
        GenServer.cast(old, ("add", 5))
        assert GenServer.call(old, "get") == 5
        crash(old)
        assert GenServer.call(pids(sup)["a"], "get") == 0
    finally:
        Supervisor.stop(sup)


# -- restart values ---------------------------------------------------------


def test_a_permanent_child_is_restarted_even_after_a_normal_exit() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "p", restart="permanent")])
    try:
        old = pids(sup)["p"]
        GenServer.stop(old)
        new = pids(sup)["p"]
        assert isinstance(new, Pid) and new != old
    finally:
        Supervisor.stop(sup)


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "done")])
def test_a_transient_child_that_exits_normally_is_not_restarted(reason: Any) -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "t", restart="transient"), worker(journal, "x")])
    try:
        old = pids(sup)["t"]
        GenServer.cast(old, ("stop", reason))
        assert Process.monitor_wait(old, WAIT)
        assert pids(sup)["t"] is None
        assert Supervisor.count_children(sup) == {
            "specs": 2,
            "active": 1,
            "supervisors": 0,
            "workers": 2,
        }
    finally:
        Supervisor.stop(sup)


@pytest.mark.parametrize("how", ["crash", "abnormal stop", "kill"])
def test_a_transient_child_that_exits_abnormally_is_restarted(how: str) -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "t", restart="transient")])
    try:
        old = pids(sup)["t"]
        if how == "crash":
            GenServer.cast(old, "crash")
        elif how == "abnormal stop":
            GenServer.cast(old, ("stop", "failed"))
        else:
            Process.exit(old, "kill")
        assert Process.monitor_wait(old, WAIT)
        new = pids(sup)["t"]
        assert isinstance(new, Pid) and new != old
    finally:
        Supervisor.stop(sup)


def test_a_temporary_child_is_never_restarted_and_its_spec_is_removed() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "tmp", restart="temporary"), worker(journal, "x")])
    try:
        crash(pids(sup)["tmp"])
        assert list(pids(sup)) == ["x"]
        assert Supervisor.count_children(sup)["specs"] == 1
        assert ("init", "tmp") not in journal[1:]
    finally:
        Supervisor.stop(sup)


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_a_temporary_sibling_stopped_by_a_restart_is_not_restarted(strategy: str) -> None:
    journal: list[Any] = []
    children = [worker(journal, "a"), worker(journal, "tmp", restart="temporary")]
    sup = Supervisor.start_link(children, strategy=strategy)
    try:
        crash(pids(sup)["a"])
        assert list(pids(sup)) == ["a"]
        assert journal == [
            ("init", "a"),
            ("init", "tmp"),
            ("terminate", "a", "crash"),
            ("terminate", "tmp", "shutdown"),
            ("init", "a"),
        ]
    finally:
        Supervisor.stop(sup)


class Flaky(GenServer):
    """Start the first time; after that, start only once the gate is open."""

    def init(self, arg: tuple[list[int], threading.Event]) -> Ok:
        starts, gate = arg
        starts.append(1)
        if len(starts) > 1 and not gate.is_set():
            raise RuntimeError("not yet")
        return Ok(None)


def test_a_child_that_fails_to_restart_shows_as_restarting_and_is_retried() -> None:
    starts: list[int] = []
    gate = threading.Event()
    spec = ChildSpec(id="flaky", start=(Flaky.start_link, ((starts, gate),)))
    sup = Supervisor.start_link([spec], max_restarts=1_000_000)
    try:
        old = pids(sup)["flaky"]
        Process.exit(old, "kill")
        assert Process.monitor_wait(old, WAIT)
        assert Supervisor.which_children(sup) == [("flaky", "restarting", "worker", [])]
        assert Supervisor.count_children(sup)["active"] == 0
        gate.set()
        # at most one attempt begun before the gate opened can still fail, so a
        # second look, queued after its retry, must see the child running
        seen = [pids(sup)["flaky"], pids(sup)["flaky"]]
        assert isinstance(seen[-1], Pid)
        assert len(starts) > 2
    finally:
        gate.set()
        Supervisor.stop(sup)


# -- intensity --------------------------------------------------------------


def test_with_the_default_intensity_three_restarts_are_fine_and_the_fourth_gives_up() -> None:
    journal: list[Any] = []
    parent, sup, inbox = start_under_parent(
        lambda: Supervisor.start_link([worker(journal, "a"), worker(journal, "b")])
    )
    try:
        for _ in range(3):
            crash(pids(sup)["a"])
        assert Process.alive(sup)
        last = pids(sup)
        crash(last["a"])
        assert inbox.get(timeout=WAIT) == ("EXIT", sup, "shutdown")
        assert not Process.alive(sup)
        assert not Process.alive(last["b"])
        assert journal[-2:] == [("terminate", "a", "crash"), ("terminate", "b", "shutdown")]
    finally:
        GenServer.stop(parent)


def test_max_restarts_zero_makes_the_first_crash_fatal() -> None:
    journal: list[Any] = []
    parent, sup, inbox = start_under_parent(
        lambda: Supervisor.start_link([worker(journal, "a")], max_restarts=0)
    )
    try:
        crash(pids(sup)["a"])
        assert inbox.get(timeout=WAIT) == ("EXIT", sup, "shutdown")
        assert journal.count(("init", "a")) == 1
    finally:
        GenServer.stop(parent)


class Inner(Supervisor):
    """A module-based supervisor that gives up on the second restart."""

    def init(self, journal: list[Any]) -> Any:  # type: ignore[override]
        return Supervisor.init([worker(journal, "w")], max_restarts=1)


def test_an_inner_supervisor_giving_up_is_restarted_by_the_outer_one_with_fresh_children() -> None:
    journal: list[Any] = []
    outer = Supervisor.start_link([(Inner, journal)])
    try:
        inner = pids(outer)["Inner"]
        first = pids(inner)["w"]
        GenServer.cast(first, ("add", 7))
        crash(first)
        second = pids(inner)["w"]
        assert Process.alive(inner)
        crash(second)  # the second restart within max_seconds: Inner gives up
        assert Process.monitor_wait(inner, WAIT)
        new_inner = pids(outer)["Inner"]
        assert isinstance(new_inner, Pid) and new_inner != inner
        fresh = pids(new_inner)["w"]
        assert fresh not in (first, second)
        assert GenServer.call(fresh, "get") == 0
        assert journal == [
            ("init", "w"),
            ("terminate", "w", "crash"),
            ("init", "w"),
            ("terminate", "w", "crash"),
            ("init", "w"),
        ]
    finally:
        Supervisor.stop(outer)


# -- introspection ----------------------------------------------------------


def test_which_children_lists_id_pid_type_and_modules_in_reverse_start_order() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "first"), (Inner, journal), Plain])
    try:
        rows = Supervisor.which_children(sup)
        assert all(isinstance(row, Child) for row in rows)
        assert [(r.id, r.type, r.modules) for r in rows] == [
            ("Plain", "worker", ["Plain"]),
            ("Inner", "supervisor", ["Inner"]),
            ("first", "worker", ["Worker"]),
        ]
        assert all(isinstance(r.pid, Pid) and Process.alive(r.pid) for r in rows)
        assert Supervisor.count_children(sup) == {
            "specs": 3,
            "active": 3,
            "supervisors": 1,
            "workers": 2,
        }
    finally:
        Supervisor.stop(sup)


def test_a_supervisor_is_addressed_by_its_registered_name() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "a")], name="named_sup")
    assert Process.whereis("named_sup") == sup
    assert [row.id for row in Supervisor.which_children("named_sup")] == ["a"]
    assert Supervisor.count_children("named_sup")["workers"] == 1
    Supervisor.stop("named_sup")
    assert not Process.alive(sup)
    with pytest.raises(NoProcess):
        Supervisor.which_children("named_sup")


# -- stopping ---------------------------------------------------------------


def test_stop_stops_the_children_in_reverse_start_order() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, w) for w in "abc"])
    children = pids(sup)
    Supervisor.stop(sup)
    assert journal[3:] == [
        ("terminate", "c", "shutdown"),
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]
    assert not any(Process.alive(pid) for pid in children.values())


class StuckTerminate(Worker):
    """A worker whose terminate blocks until the test lets it go."""

    gate = threading.Event()

    def terminate(self, reason: Any, n: int) -> None:
        super().terminate(reason, n)
        self.gate.wait(WAIT)


def test_a_child_stuck_in_terminate_is_killed_after_its_shutdown_and_stop_returns_soon() -> None:
    journal: list[Any] = []
    StuckTerminate.gate.clear()
    stuck = ChildSpec(
        id="stuck", start=(StuckTerminate.start_link, ((journal, "stuck"),)), shutdown=0.05
    )
    sup = Supervisor.start_link([worker(journal, "a"), stuck, worker(journal, "c")])
    children = pids(sup)
    try:
        began = time.monotonic()
        Supervisor.stop(sup)
        assert time.monotonic() - began < 2.0  # 0.05 s shutdown, not the 5 s terminate
        assert not any(Process.alive(pid) for pid in children.values())
        assert journal[3:] == [
            ("terminate", "c", "shutdown"),
            ("terminate", "stuck", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]
    finally:
        StuckTerminate.gate.set()


def test_a_brutal_kill_child_is_stopped_without_terminate() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link(
        [worker(journal, "a"), worker(journal, "brutal", shutdown="brutal_kill")]
    )
    Supervisor.stop(sup)
    assert journal == [("init", "a"), ("init", "brutal"), ("terminate", "a", "shutdown")]


class Ticking(Worker):
    """A worker with a timer armed at init, like the seed's flusher."""

    def init(self, arg: tuple[list[Any], str]) -> Ok:
        Process.send_after(Process.self(), "tick", 60)
        return super().init(arg)


def test_once_a_supervisor_stopped_no_thread_of_its_tree_is_left() -> None:
    baseline = threading.active_count()
    journal: list[Any] = []
    sup = Supervisor.start_link(
        [
            ChildSpec(id=w, start=(Ticking.start_link, ((journal, w),)), modules=["Ticking"])
            for w in "ab"
        ]
        + [(Inner, journal)]
    )
    assert threading.active_count() == baseline + 6  # 4 processes, 1 inner sup, 1 timer thread
    Supervisor.stop(sup)
    assert threading.active_count() == baseline  # at once: stop joined every thread


def test_killing_a_supervisor_takes_its_children_down_with_it() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "a"), (Inner, journal)], name="victim")
    children = pids(sup)
    grandchild = pids(children["Inner"])["w"]
    Process.exit(sup, "kill")
    for pid in [*children.values(), grandchild]:
        assert Process.monitor_wait(pid, WAIT)
    assert ("terminate", "a", "killed") in journal
    assert Process.whereis("victim") is None


class Gate(Worker):
    """A worker whose restarts wait at a gate, holding its supervisor busy."""

    def init(self, arg: tuple[list[Any], str, dict[str, Any]]) -> Ok:  # type: ignore[override]
        journal, wid, gate = arg
        gate["starts"] += 1
        if gate["starts"] > 1:
            gate["entered"].set()
            gate["release"].wait(WAIT)
        return super().init((journal, wid))


def test_a_child_started_by_a_supervisor_killed_while_restarting_does_not_outlive_it() -> None:
    journal: list[Any] = []
    gate: dict[str, Any] = {"starts": 0, "entered": threading.Event(), "release": threading.Event()}
    gated = ChildSpec(id="gated", start=(Gate.start_link, ((journal, "gated", gate),)))
    sup = Supervisor.start_link([gated, worker(journal, "b")], strategy="one_for_all")
    try:
        crash(pids(sup)["gated"])  # the restart of "gated" now waits at the gate
        assert gate["entered"].wait(WAIT)
        Process.exit(sup, "kill")
    finally:
        gate["release"].set()  # the dead supervisor's thread goes on to start "b"
    [sup_thread] = [t for t in threading.enumerate() if t.name.endswith(f"-{sup!r}")]
    sup_thread.join(WAIT)  # the dead supervisor's thread finished the restart...
    assert journal[-1] == ("init", "b")  # ...so it started "b" after its death
    left = []
    for thread in threading.enumerate():
        if thread.name.startswith(("Gate-", "Worker-")):
            thread.join(WAIT)
            if thread.is_alive():
                left.append(thread.name)
    assert left == []  # yet "b" was taken down with it, as linked to a dead process


# -- a kill while busy ------------------------------------------------------


class Busy(GenServer):
    """A named worker that can be held inside a handler; it reports what a kill loses."""

    def init(self, ctx: dict[str, Any]) -> Ok:
        self.ctx = ctx
        return Ok(0)

    def handle_call(self, request: Any, from_: Any, n: int) -> Reply:
        return Reply(n, n)

    def handle_cast(self, request: Any, n: int) -> NoReply:
        if request == "block":
            self.ctx["entered"].set()
            self.ctx["release"].wait(WAIT)
            return NoReply(n + 100)
        return NoReply(n + request)

    def lost_messages(self, msgs: list[Any], reason: Any) -> None:
        self.ctx["lost"].extend(msgs)

    def lost_state(self, n: int, reason: Any) -> None:
        self.ctx["lost_states"].put((n, reason))


def test_a_child_killed_inside_a_handler_is_restarted_at_once_and_its_old_handler_discarded() -> (
    None
):
    ctx: dict[str, Any] = {
        "entered": threading.Event(),
        "release": threading.Event(),
        "lost": [],
        "lost_states": queue.Queue(),
    }
    spec = ChildSpec(id="busy", start=(Busy.start_link, (ctx,), {"name": "busy"}))
    sup = Supervisor.start_link([spec])
    old = Process.whereis("busy")
    assert old is not None
    [old_thread] = [t for t in threading.enumerate() if t.name == f"busy-{old!r}"]
    try:
        GenServer.cast(old, "block")
        assert ctx["entered"].wait(WAIT)
        GenServer.cast(old, 1)  # queued behind the blocked handler
        Process.exit(old, "kill")
        new = pids(sup)["busy"]
        assert isinstance(new, Pid) and new != old
        assert old_thread.is_alive()  # still blocked in the handler
        assert Process.whereis("busy") == new  # routing by name sees the new pid
        assert GenServer.call("busy", "get") == 0
    finally:
        ctx["release"].set()
    assert ctx["lost_states"].get(timeout=WAIT) == (100, "killed")
    old_thread.join(WAIT)
    assert not old_thread.is_alive()
    assert ctx["lost"] == [1]
    GenServer.cast(old, 2)  # a message to the old pid is not handled by anyone
    assert ctx["lost"] == [1, 2]
    assert GenServer.call("busy", "get") == 0
    Supervisor.stop(sup)


# -- module-based supervisors and bad arguments -----------------------------


class App(Supervisor):
    """A module-based supervisor: init returns Supervisor.init(...)."""

    def init(self, journal: list[Any]) -> Any:  # type: ignore[override]
        return Supervisor.init([worker(journal, "a"), worker(journal, "b")], strategy="one_for_all")


def test_a_module_based_supervisor_takes_its_children_and_flags_from_init() -> None:
    journal: list[Any] = []
    sup = App.start_link(journal, name="App")
    try:
        assert Process.whereis("App") == sup
        before = pids(sup)
        crash(before["b"])  # one_for_all, from App.init
        after = pids(sup)
        assert after["a"] != before["a"] and after["b"] != before["b"]
    finally:
        Supervisor.stop("App")
    other = Supervisor.start_link(App, journal)
    assert list(pids(other)) == ["b", "a"]
    Supervisor.stop(other)


def test_a_module_based_supervisor_whose_init_is_bad_fails_to_start() -> None:
    class Broken(Supervisor):
        def init(self, arg: Any) -> Any:  # type: ignore[override]
            return "not Supervisor.init(...)"

    with pytest.raises(StartError) as info:
        Broken.start_link(None)
    assert isinstance(info.value.reason, TypeError)
    assert "got: 'not Supervisor.init(...)'" in str(info.value.reason)


@pytest.mark.parametrize(
    ("children", "flags", "error", "text"),
    [
        ([], {"strategy": "simple_one_for_one"}, ValueError, "strategy must be one of"),
        ([], {"max_restarts": -1}, ValueError, "max_restarts must be an integer >= 0"),
        ([], {"max_restarts": "3"}, TypeError, "max_restarts must be an integer >= 0"),
        ([], {"max_restarts": 1.5}, TypeError, "max_restarts must be an integer >= 0"),
        ([], {"max_seconds": 0}, ValueError, "max_seconds must be a positive number"),
        ([], {"max_seconds": float("nan")}, ValueError, "max_seconds must be a positive number"),
        ("abc", {}, TypeError, "children must be a list"),
        (None, {}, TypeError, "children must be a list"),
        ([42], {}, TypeError, "child must be a ChildSpec"),
    ],
)
def test_bad_arguments_raise_errors_naming_the_option_and_what_was_given(
    children: Any, flags: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        Supervisor.start_link(children, name="never", **flags)
    assert text in str(info.value)
    assert "got: " in str(info.value)
    assert Process.whereis("never") is None


def test_an_error_message_quotes_a_huge_bad_value_shortened() -> None:
    with pytest.raises(ValueError) as info:
        Supervisor.start_link([], strategy="x" * 10_000)
    assert str(info.value).startswith("strategy must be one of")
    assert "got: 'xxxx" in str(info.value)
    assert len(str(info.value)) < 200


def test_a_shutdown_too_big_for_a_float_means_wait_as_long_as_it_takes() -> None:
    journal: list[Any] = []
    sup = Supervisor.start_link([worker(journal, "a", shutdown=10**400)])
    Supervisor.stop(sup)
    assert journal == [("init", "a"), ("terminate", "a", "shutdown")]


def test_duplicate_child_ids_are_rejected_naming_the_id() -> None:
    journal: list[Any] = []
    with pytest.raises(ValueError, match=r"children must have unique ids, got: 'a' twice"):
        Supervisor.start_link([worker(journal, "a"), worker(journal, "a")])
    assert journal == []


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"restart": "sometimes"}, "restart must be one of permanent, transient, temporary, got: "),
        ({"shutdown": -1}, "shutdown must be seconds >= 0, 'brutal_kill' or 'infinity', got: -1"),
        ({"shutdown": float("nan")}, "shutdown must be seconds >= 0"),
        ({"type": "manager"}, "type must be 'worker' or 'supervisor', got: 'manager'"),
    ],
)
def test_a_child_spec_with_a_bad_option_is_rejected_naming_it(
    options: dict[str, Any], text: str
) -> None:
    with pytest.raises(ValueError) as info:
        ChildSpec(id="x", start=(Plain.start_link, ()), **options)
    assert text in str(info.value)


def test_a_child_spec_start_must_be_a_function_and_its_args() -> None:
    with pytest.raises(TypeError, match=r"start must be \(function, args\).*got: "):
        ChildSpec(id="x", start=("not callable", ()))


def test_an_empty_tuple_sent_to_a_supervisor_does_not_kill_it() -> None:
    sup = Supervisor.start_link([Plain])
    Process.send(sup, ())
    assert Supervisor.count_children(sup)["active"] == 1  # a call after it: still serving
    Supervisor.stop(sup)
