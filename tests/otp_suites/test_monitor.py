"""Process.monitor / demonitor / link / unlink, and waiting on a process from a plain thread.

Cases follow Elixir's process_test.exs and OTP's documented semantics of
erlang:monitor/2, demonitor/2 and link/1.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest

from summarizer.otp import GenServer, NoProcess, NoReply, Ok, Process, Reply

from .helpers import WAIT, Sup1

pytestmark = pytest.mark.usefixtures("no_leaks")


class Watcher(GenServer):
    """Run what the test asks inside a process (returning what it raised); queue every info."""

    def init(self, inbox: queue.Queue[Any]) -> Ok:
        self.inbox = inbox
        return Ok(None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        fn, *args = request
        try:
            return Reply(fn(*args), state)
        except Exception as e:  # the test asserts on it
            return Reply(e, state)

    def handle_info(self, msg: Any, state: Any) -> NoReply:
        self.inbox.put(msg)
        return NoReply(state)


@pytest.fixture
def watcher() -> Any:
    inbox: queue.Queue[Any] = queue.Queue()
    pid = Watcher.start_link(inbox)
    yield pid, inbox
    if Process.alive(pid):
        GenServer.stop(pid)


def test_monitor_delivers_down_once_to_handle_info(watcher: Any) -> None:
    pid, inbox = watcher
    target = Sup1.start_link()
    ref = GenServer.call(pid, (Process.monitor, target))
    GenServer.stop(target, "bye")
    assert inbox.get(timeout=WAIT) == ("DOWN", ref, "process", target, "bye")
    GenServer.call(pid, (lambda: None,))  # a round trip: nothing else was queued
    assert inbox.empty()


def test_monitor_of_a_dead_or_unknown_process_says_noproc(watcher: Any) -> None:
    pid, inbox = watcher
    ref = GenServer.call(pid, (Process.monitor, "nobody"))
    assert inbox.get(timeout=WAIT) == ("DOWN", ref, "process", "nobody", "noproc")


def test_a_killed_process_is_down_with_killed() -> None:
    target = Sup1.start_link()
    ref = Process.monitor(target)
    Process.exit(target, "kill")
    assert ref.wait(WAIT) == ("DOWN", ref, "process", target, "killed")


def test_demonitor_with_flush_drops_a_down_already_queued(watcher: Any) -> None:
    pid, inbox = watcher
    target = Sup1.start_link()

    def monitor_stop_demonitor_flush() -> Any:
        ref = Process.monitor(target)
        GenServer.stop(target)  # the DOWN is queued while this handler runs
        assert ref.wait(WAIT) is not None
        Process.demonitor(ref, flush=True)
        return ref

    GenServer.call(pid, (monitor_stop_demonitor_flush,))
    GenServer.call(pid, (lambda: None,))  # the queued DOWN came before this call: skipped
    assert inbox.empty()


def test_demonitor_without_flush_keeps_a_down_already_queued(watcher: Any) -> None:
    pid, inbox = watcher
    target = Sup1.start_link()

    def monitor_stop_demonitor() -> Any:
        ref = Process.monitor(target)
        GenServer.stop(target)
        Process.demonitor(ref)
        return ref

    ref = GenServer.call(pid, (monitor_stop_demonitor,))
    assert inbox.get(timeout=WAIT)[1] is ref


def test_demonitor_before_the_exit_means_no_down(watcher: Any) -> None:
    pid, inbox = watcher
    target = Sup1.start_link()
    ref = GenServer.call(pid, (Process.monitor, target))
    Process.demonitor(ref)
    GenServer.stop(target)
    GenServer.call(pid, (lambda: None,))
    assert inbox.empty()
    assert ref.wait(0) is None


def test_a_plain_thread_waits_on_the_ref() -> None:
    target = Sup1.start_link()
    ref = Process.monitor(target)
    assert ref.wait(0.01) is None  # still running
    Process.exit(target, "shutdown")
    assert ref.wait(WAIT) == ("DOWN", ref, "process", target, "shutdown")


def test_link_carries_an_exit_both_ways(watcher: Any) -> None:
    pid, inbox = watcher
    GenServer.call(pid, (Process.flag, "trap_exit", True))
    target = Sup1.start_link()  # linked to no one: started from a plain thread
    GenServer.call(pid, (Process.link, target))
    Process.exit(target, "boom")
    assert inbox.get(timeout=WAIT) == ("EXIT", target, "boom")


def test_a_linked_process_dies_with_an_abnormal_exit() -> None:
    b = Sup1.start_link()
    down = Process.monitor(b)

    class Linker(GenServer):
        def init(self, arg: Any) -> Ok:
            Process.link(b)
            return Ok(None)

    linker = Linker.start_link()
    Process.exit(linker, "boom")
    assert down.wait(WAIT) == ("DOWN", down, "process", b, "boom")


def test_unlink_stops_the_exit_travelling(watcher: Any) -> None:
    pid, inbox = watcher
    GenServer.call(pid, (Process.flag, "trap_exit", True))
    target = Sup1.start_link()
    GenServer.call(pid, (Process.link, target))
    GenServer.call(pid, (Process.unlink, target))
    GenServer.stop(target, "boom")
    GenServer.call(pid, (lambda: None,))
    assert inbox.empty()


def test_link_to_a_dead_process_raises_noproc_or_traps_it(watcher: Any) -> None:
    pid, inbox = watcher
    assert isinstance(GenServer.call(pid, (Process.link, "nobody")), NoProcess)
    GenServer.call(pid, (Process.flag, "trap_exit", True))
    GenServer.call(pid, (Process.link, "nobody"))
    assert inbox.get(timeout=WAIT) == ("EXIT", "nobody", "noproc")


def test_link_from_a_plain_thread_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside a process"):
        Process.link("anything")


def test_a_dead_watcher_leaves_no_monitor_behind() -> None:
    target = Sup1.start_link()
    inbox: queue.Queue[Any] = queue.Queue()
    pid = Watcher.start_link(inbox)
    GenServer.call(pid, (Process.monitor, target))
    assert Process.info(target)["monitored_by"] == [pid]
    GenServer.stop(pid)
    assert Process.info(target)["monitored_by"] == []
    GenServer.stop(target)


def test_demonitor_checks_its_argument() -> None:
    with pytest.raises(TypeError, match="ref must be a monitor reference, got: 'x'"):
        Process.demonitor("x")  # type: ignore[arg-type]
