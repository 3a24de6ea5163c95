"""Processes: pids, the name registry, messages, timers, exit signals and links."""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import Any

import pytest
from support import WAIT

from summarizer.otp import (
    AlreadyStarted,
    GenServer,
    NoReply,
    Ok,
    Pid,
    Process,
    Reply,
    TimerRef,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

TIMERS = "summarizer-timers"


class Echo(GenServer):
    """Put every info message (trapped exits included) on the test's queue."""

    def init(self, inbox: queue.Queue[Any]) -> Ok:
        return Ok(inbox)

    def handle_info(self, msg: Any, inbox: queue.Queue[Any]) -> NoReply:
        inbox.put(msg)
        return NoReply(inbox)

    def handle_call(self, request: Any, from_: Any, inbox: queue.Queue[Any]) -> Reply:
        if request == "ping":
            return Reply("pong", inbox)
        if request == "self":
            return Reply(Process.self(), inbox)
        if request == "trap_exit":
            return Reply(Process.flag("trap_exit", True), inbox)
        if request[0] == "exit":  # send an exit signal from inside this process
            _, dest, reason = request
            Process.exit(dest, reason)
            return Reply("ok", inbox)
        if request[0] == "start_link":  # start a child linked to this process
            return Reply(Echo.start_link(request[1]), inbox)
        raise ValueError(f"unexpected call {request!r}")

    def handle_cast(self, request: Any, inbox: queue.Queue[Any]) -> NoReply:
        if request == "crash":
            raise RuntimeError("crash on purpose")
        raise ValueError(f"unexpected cast {request!r}")


def start_echo(name: str | None = None) -> tuple[Pid, queue.Queue[Any]]:
    inbox: queue.Queue[Any] = queue.Queue()
    return Echo.start_link(inbox, name=name), inbox


def timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == TIMERS]


def thread_of(pid: Pid) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name.endswith(f"-{pid!r}")), None)


def kill_and_wait(pid: Pid) -> None:
    Process.exit(pid, "kill")
    assert Process.monitor_wait(pid, WAIT)


# -- pids and names ---------------------------------------------------------


def test_a_pid_reads_like_an_erlang_pid_and_is_the_process_own_self() -> None:
    pid, _ = start_echo()
    try:
        assert re.fullmatch(r"#PID<0\.\d+\.0>", repr(pid))
        assert GenServer.call(pid, "self") == pid
    finally:
        GenServer.stop(pid)


def test_pids_are_never_reused() -> None:
    first, _ = start_echo()
    GenServer.stop(first)
    second, _ = start_echo()
    try:
        assert second != first
        assert second.n > first.n
        assert repr(second) != repr(first)
    finally:
        GenServer.stop(second)


def test_self_outside_any_process_is_none() -> None:
    assert Process.self() is None


def test_a_second_start_under_a_taken_name_raises_already_started_naming_both() -> None:
    pid, _ = start_echo("taken")
    try:
        with pytest.raises(AlreadyStarted) as info:
            start_echo("taken")
        assert info.value.pid == pid
        assert info.value.name == "taken"
        assert info.value.reason == ("already_started", pid)
        assert "'taken'" in str(info.value)
        assert repr(pid) in str(info.value)
        assert Process.whereis("taken") == pid
        assert GenServer.call("taken", "ping") == "pong"
    finally:
        GenServer.stop(pid)


@pytest.mark.parametrize("how", ["stop", "crash", "kill"])
def test_a_name_is_freed_when_its_process_exits_so_a_new_process_can_take_it(how: str) -> None:
    pid, _ = start_echo("reusable")
    if how == "stop":
        GenServer.stop("reusable")
    elif how == "crash":
        GenServer.cast("reusable", "crash")
    else:
        Process.exit("reusable", "kill")
    assert Process.monitor_wait(pid, WAIT)
    assert Process.whereis("reusable") is None
    assert "reusable" not in Process.registered()
    again, _ = start_echo("reusable")
    try:
        assert again != pid
        assert Process.whereis("reusable") == again
    finally:
        GenServer.stop(again)


def test_whereis_returns_the_pid_of_a_registered_name_or_none() -> None:
    pid, _ = start_echo("findme")
    try:
        assert Process.whereis("findme") == pid
        assert Process.whereis("nobody") is None
        assert "findme" in Process.registered()
    finally:
        GenServer.stop(pid)


def test_alive_is_true_while_a_process_runs_and_false_once_it_exited() -> None:
    pid, _ = start_echo("lively")
    assert Process.alive(pid)
    assert Process.alive("lively")
    GenServer.stop(pid)
    assert not Process.alive(pid)
    assert not Process.alive("lively")
    assert not Process.alive("never-registered")


# -- messages ---------------------------------------------------------------


def test_send_delivers_to_handle_info_by_pid_or_name_and_returns_the_message() -> None:
    pid, inbox = start_echo("postbox")
    try:
        assert Process.send(pid, "by pid") == "by pid"
        assert Process.send("postbox", ("by", "name")) == ("by", "name")
        assert inbox.get(timeout=WAIT) == "by pid"
        assert inbox.get(timeout=WAIT) == ("by", "name")
    finally:
        GenServer.stop(pid)


def test_send_to_nothing_is_dropped_without_an_error() -> None:
    pid, _ = start_echo()
    GenServer.stop(pid)
    assert Process.send("nobody", "lost") == "lost"
    assert Process.send(pid, "lost too") == "lost too"


def test_send_to_something_that_is_no_address_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"dest must be .*got: 42"):
        Process.send(42, "hello")


# -- timers -----------------------------------------------------------------


def test_send_after_delivers_the_message_once_after_at_least_the_delay() -> None:
    pid, inbox = start_echo()
    try:
        armed = time.monotonic()
        ref = Process.send_after(pid, "tick", 0.05)
        assert isinstance(ref, TimerRef)
        assert inbox.get(timeout=WAIT) == "tick"
        assert time.monotonic() - armed >= 0.05
        # a later timer arrives next: "tick" was not delivered a second time
        Process.send_after(pid, "tock", 0.01)
        assert inbox.get(timeout=WAIT) == "tock"
        assert inbox.empty()
    finally:
        GenServer.stop(pid)


def test_send_after_zero_is_not_delivered_at_once_but_by_the_timer_thread() -> None:
    pid, inbox = start_echo()
    entered, release = threading.Event(), threading.Event()

    class GatedAddress:
        """A via address whose lookup, made by the timer thread, waits for the test."""

        def whereis(self) -> Pid:
            entered.set()
            release.wait(WAIT)
            return pid

    try:
        Process.send_after(GatedAddress(), "gated", 0)
        assert entered.wait(WAIT)  # the timer thread is now busy delivering "gated"
        Process.send_after(pid, "zero", 0)
        Process.send(pid, "direct")  # sent after send_after(0) returned, arrives first
        release.set()
        assert [inbox.get(timeout=WAIT) for _ in range(3)] == ["direct", "gated", "zero"]
    finally:
        release.set()
        GenServer.stop(pid)


def test_send_after_rejects_a_negative_or_non_numeric_delay_naming_seconds() -> None:
    for bad, error in [
        (-1, ValueError),
        ("1", TypeError),  # not a number: the wrong kind, as every check of the package says
        (None, TypeError),
        (True, TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
    ]:
        with pytest.raises(error, match=r"seconds must be .*got: "):
            Process.send_after("anyone", "msg", bad)  # type: ignore[arg-type]


def test_send_after_takes_a_huge_delay_that_fits_a_float_and_rejects_one_that_does_not() -> None:
    pid, inbox = start_echo()
    try:
        ref = Process.send_after(pid, "never", 10**100)
        assert Process.cancel_timer(ref) > 1e99
        with pytest.raises(ValueError, match=r"seconds must be .*got: 1000"):
            Process.send_after(pid, "never", 10**400)
        Process.send_after(pid, "still served", 0)  # the timer thread survived both
        assert inbox.get(timeout=WAIT) == "still served"
    finally:
        GenServer.stop(pid)


def test_send_after_rejects_a_destination_that_is_no_address() -> None:
    with pytest.raises(TypeError, match=r"dest must be .*got: 3\.5"):
        Process.send_after(3.5, "msg", 0)
    assert timer_threads() == []


def test_cancel_timer_returns_the_seconds_that_were_left_then_false() -> None:
    pid, inbox = start_echo()
    try:
        ref = Process.send_after(pid, "never", 30)
        left = Process.cancel_timer(ref)
        assert isinstance(left, float)
        assert 29 < left <= 30
        assert Process.cancel_timer(ref) is False
        Process.send_after(pid, "marker", 0)
        assert inbox.get(timeout=WAIT) == "marker"  # "never" was not delivered first
    finally:
        GenServer.stop(pid)


def test_cancel_timer_after_the_timer_fired_returns_false() -> None:
    pid, inbox = start_echo()
    try:
        ref = Process.send_after(pid, "fired", 0)
        assert inbox.get(timeout=WAIT) == "fired"
        assert Process.cancel_timer(ref) is False
    finally:
        GenServer.stop(pid)


def test_cancel_timer_rejects_what_is_not_a_timer_ref() -> None:
    with pytest.raises(TypeError, match=r"ref must be a TimerRef, got: 'ref'"):
        Process.cancel_timer("ref")  # type: ignore[arg-type]


def test_timers_aimed_at_a_process_are_dropped_when_it_exits_and_the_timer_thread_ends() -> None:
    pid, _ = start_echo()
    refs = [Process.send_after(pid, n, 30) for n in range(3)]
    assert len(timer_threads()) == 1
    GenServer.stop(pid)
    assert [Process.cancel_timer(ref) for ref in refs] == [False, False, False]
    assert timer_threads() == []  # joined while the process exited: no wait needed


def test_a_timer_aimed_at_an_already_dead_process_is_dropped_and_timers_keep_working() -> None:
    dead, dead_inbox = start_echo()
    GenServer.stop(dead)
    live, inbox = start_echo()
    try:
        Process.send_after(dead, "to the dead", 0)
        Process.send_after("nobody", "to no name", 0)
        Process.send_after(live, "to the living", 0.01)
        assert inbox.get(timeout=WAIT) == "to the living"
        assert dead_inbox.empty()
    finally:
        GenServer.stop(live)


def test_fifty_timers_share_one_timer_thread() -> None:
    pid, _ = start_echo()
    try:
        for n in range(50):
            Process.send_after(pid, n, 30 + n)
        assert len(timer_threads()) == 1
    finally:
        GenServer.stop(pid)
    assert timer_threads() == []


def test_the_timer_thread_exits_once_it_has_nothing_left_to_send() -> None:
    pid, inbox = start_echo()
    try:
        hold = Process.send_after(pid, "hold", 30)
        [thread] = timer_threads()
        Process.send_after(pid, "last", 0.01)
        assert Process.cancel_timer(hold) is not False
        assert inbox.get(timeout=WAIT) == "last"
        thread.join(WAIT)
        assert not thread.is_alive()
        assert Process.alive(pid)  # idle because nothing is pending, not because pid exited
        Process.send_after(pid, "again", 0)  # a new timer starts a new thread
        assert inbox.get(timeout=WAIT) == "again"
    finally:
        GenServer.stop(pid)


# -- exit signals -----------------------------------------------------------


def test_kill_cannot_be_trapped() -> None:
    pid, inbox = start_echo("trapper")
    assert GenServer.call(pid, "trap_exit") is False  # the old value
    kill_and_wait(pid)
    assert not Process.alive(pid)
    assert Process.whereis("trapper") is None
    assert inbox.empty()


def test_a_trapping_process_receives_other_exit_reasons_as_exit_messages() -> None:
    pid, inbox = start_echo()
    sender, _ = start_echo()
    try:
        GenServer.call(pid, "trap_exit")
        Process.exit(pid, "go away")
        assert inbox.get(timeout=WAIT) == ("EXIT", None, "go away")  # from a plain thread
        GenServer.call(sender, ("exit", pid, {"why": "custom"}))
        assert inbox.get(timeout=WAIT) == ("EXIT", sender, {"why": "custom"})
        Process.exit(pid, "normal")
        assert inbox.get(timeout=WAIT) == ("EXIT", None, "normal")
        assert GenServer.call(pid, "ping") == "pong"
    finally:
        GenServer.stop(pid)
        GenServer.stop(sender)


def test_a_process_that_does_not_trap_exits_dies_from_an_abnormal_exit_signal() -> None:
    pid, _ = start_echo()
    Process.exit(pid, "go away")
    assert Process.monitor_wait(pid, WAIT)
    assert not Process.alive(pid)


def test_a_process_that_does_not_trap_exits_ignores_a_normal_exit_signal() -> None:
    pid, inbox = start_echo()
    try:
        Process.exit(pid, "normal")
        assert GenServer.call(pid, "ping") == "pong"  # handled after the signal
        assert Process.alive(pid)
        assert inbox.empty()
    finally:
        GenServer.stop(pid)


def test_an_exit_signal_to_nothing_is_ignored() -> None:
    Process.exit("nobody", "kill")
    pid, _ = start_echo()
    GenServer.stop(pid)
    Process.exit(pid, "kill")


def test_monitor_wait_times_out_while_the_process_runs() -> None:
    pid, _ = start_echo()
    try:
        assert Process.monitor_wait(pid, 0.01) is False
    finally:
        GenServer.stop(pid)
    assert Process.monitor_wait(pid, 0) is True
    assert Process.monitor_wait("nobody", 0) is True


def test_flag_accepts_only_trap_exit_and_only_inside_a_process() -> None:
    with pytest.raises(ValueError, match=r"flag must be 'trap_exit', got: 'priority'"):
        Process.flag("priority", True)
    with pytest.raises(RuntimeError, match="inside a process"):
        Process.flag("trap_exit", True)


# -- links ------------------------------------------------------------------


def test_a_trapping_process_is_told_when_a_process_it_started_exits() -> None:
    parent, inbox = start_echo()
    try:
        GenServer.call(parent, "trap_exit")
        child = GenServer.call(parent, ("start_link", queue.Queue()))
        GenServer.cast(child, "crash")
        kind, sender, reason = inbox.get(timeout=WAIT)
        assert (kind, sender) == ("EXIT", child)
        assert isinstance(reason, RuntimeError)
        assert str(reason) == "crash on purpose"
    finally:
        GenServer.stop(parent)


def test_a_process_that_does_not_trap_exits_dies_with_a_child_that_crashed() -> None:
    parent, _ = start_echo()
    child = GenServer.call(parent, ("start_link", queue.Queue()))
    GenServer.cast(child, "crash")
    assert Process.monitor_wait(child, WAIT)
    assert Process.monitor_wait(parent, WAIT)


def test_killing_a_process_kills_the_processes_it_started() -> None:
    parent, _ = start_echo()
    child = GenServer.call(parent, ("start_link", queue.Queue()))
    grandchild = GenServer.call(child, ("start_link", queue.Queue()))
    kill_and_wait(parent)
    assert Process.monitor_wait(child, WAIT)
    assert Process.monitor_wait(grandchild, WAIT)


def test_a_trapping_child_stops_when_its_parent_is_killed() -> None:
    parent, _ = start_echo()
    inbox: queue.Queue[Any] = queue.Queue()
    child = GenServer.call(parent, ("start_link", inbox))
    GenServer.call(child, "trap_exit")
    kill_and_wait(parent)
    # a GenServer stops when its parent exits, whatever the reason
    assert Process.monitor_wait(child, WAIT)
    assert inbox.empty()


def test_a_child_that_does_not_trap_exits_outlives_a_parent_that_exits_normally() -> None:
    parent, _ = start_echo()
    child = GenServer.call(parent, ("start_link", queue.Queue()))
    GenServer.stop(parent)
    try:
        assert GenServer.call(child, "ping") == "pong"
    finally:
        GenServer.stop(child)
