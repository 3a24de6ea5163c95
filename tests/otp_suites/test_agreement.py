"""The six places where this runtime disagreed with OTP (issue 11), each pinned by a test.

Each was checked on a real BEAM (OTP 25, Elixir 1.14); each test failed before its fix.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from summarizer.otp import (
    ChildSpec,
    ExitError,
    GenServer,
    Ok,
    Process,
    StartError,
    Stop,
    Supervisor,
)

from .helpers import WAIT, spec

pytestmark = pytest.mark.usefixtures("no_leaks")


# 1. supervisor.erl: start_link fails with {shutdown, {failed_to_start_child, Id, Reason}}
def test_a_child_failing_to_start_names_its_id_in_the_start_error() -> None:
    children = [spec("a"), spec("b", "error"), spec("c")]
    with pytest.raises(StartError) as info:
        Supervisor.start_link(children, name="sup_test")
    shutdown, (what, child_id, reason) = info.value.reason
    assert (shutdown, what, child_id) == ("shutdown", "failed_to_start_child", "b")
    assert isinstance(reason, RuntimeError)
    assert "'b'" in str(info.value)
    assert Process.whereis("sup_test") is None


def test_a_nested_start_failure_nests_the_reason_as_otp_does() -> None:
    inner = ChildSpec(
        id="inner",
        start=(Supervisor.start_link, ([spec("x", "error")],)),
        type="supervisor",
    )
    with pytest.raises(StartError) as info:
        Supervisor.start_link([inner])
    assert info.value.reason[:1] == ("shutdown",)
    _what, child_id, inner_reason = info.value.reason[1]
    assert child_id == "inner"
    assert inner_reason[0] == "shutdown"
    assert inner_reason[1][:2] == ("failed_to_start_child", "x")


# 2. supervisor.erl: a supervisor child's shutdown defaults to infinity, a worker's to 5000 ms
def test_a_supervisor_child_spec_defaults_to_an_infinite_shutdown() -> None:
    start = (Supervisor.start_link, ([],))
    assert ChildSpec(id="s", start=start, type="supervisor").shutdown == "infinity"
    assert ChildSpec(id="w", start=start).shutdown == 5.0
    assert ChildSpec(id="s", start=start, type="supervisor", shutdown=1).shutdown == 1


class CrashingTerminate(GenServer):
    def terminate(self, reason: Any, state: Any) -> None:
        raise RuntimeError("terminate failed")


# 3. gen_server:stop/1 exits with the reason the server ended with, if not the one asked
def test_stop_raises_exit_error_when_terminate_raises() -> None:
    pid = CrashingTerminate.start_link()
    with pytest.raises(ExitError) as info:
        GenServer.stop(pid)
    assert isinstance(info.value.reason, RuntimeError)
    assert not Process.alive(pid)


# 4. supervisor_SUITE:sup_start_ignore_temporary_child: the spec is not saved
def test_a_temporary_child_whose_start_ignores_is_dropped() -> None:
    ignoring = ChildSpec(id="child1", start=(lambda: None, ()), restart="temporary")
    sup = Supervisor.start_link([ignoring, spec("child2", restart="temporary")])
    try:
        assert [c.id for c in Supervisor.which_children(sup)] == ["child2"]
        assert Supervisor.count_children(sup)["specs"] == 1
    finally:
        Supervisor.stop(sup)


# 5. supervisor_SUITE:sup_flags: {invalid_period, infinity}
def test_an_infinite_max_seconds_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_seconds must be a positive number, got: inf"):
        Supervisor.start_link([], max_seconds=math.inf)


# 6. supervisor.erl acts only on exits from its children (and its parent)
def test_an_exit_signal_from_a_stranger_restarts_nothing() -> None:
    done = threading.Event()

    class Once(GenServer):
        restart = "transient"

        def init(self, arg: Any) -> Ok:
            return Ok(arg)

        def handle_cast(self, request: Any, state: Any) -> Stop:
            return Stop("normal", state)

        def terminate(self, reason: Any, state: Any) -> None:
            done.set()

    sup = Supervisor.start_link([Once])
    try:
        [(_, pid, _, _)] = Supervisor.which_children(sup)
        GenServer.cast(pid, "stop")
        assert done.wait(WAIT)
        assert Process.monitor_wait(pid, WAIT)
        assert Supervisor.which_children(sup)[0].pid is None  # transient, normal: not restarted
        Process.exit(sup, "boom")  # from a plain thread: no sender
        assert Supervisor.which_children(sup)[0].pid is None
        assert Supervisor.count_children(sup)["active"] == 0
    finally:
        Supervisor.stop(sup)
