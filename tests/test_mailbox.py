"""Tests of summarizer.otp.mailbox: counted, bounded, handed-off casts, and routing by name."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from support import WAIT

from summarizer.otp import (
    CallTimeout,
    ExitError,
    GenServer,
    Mailbox,
    NoProcess,
    NoReply,
    Ok,
    PartitionSupervisor,
    Pid,
    Process,
    Reply,
    Supervisor,
)
from summarizer.otp.mailbox import Tally

pytestmark = pytest.mark.usefixtures("no_leaks")


class Tallier(GenServer):
    """Sum the ints cast to it; an ``("hold", event)`` cast blocks until the event is set.

    ``"boom"`` raises in handle_cast; a list counts as its sum (a batch).
    """

    def init(self, arg: Any) -> Ok:
        return Ok({"sum": 0, "seen": []})

    def handle_cast(self, request: Any, state: dict[str, Any]) -> NoReply:
        if request == "boom":
            raise RuntimeError("boom")
        if isinstance(request, tuple) and request[0] == "hold":
            request[1].set()
            request[2].wait(WAIT)
            return NoReply(state)
        state["seen"].append(request)
        state["sum"] += sum(request) if isinstance(request, list) else weigh(request) and request
        return NoReply(state)

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        return Reply(state[request], state)


def weigh(msg: Any) -> int:
    if isinstance(msg, list):
        return len(msg)
    return 1 if isinstance(msg, int) else 0


def held(state: dict[str, Any]) -> int:
    return len(state["seen"])


def start(name: str = "Talliers", partitions: int = 2, **mailbox: Any) -> Pid:
    spec = replace(Tallier.child_spec(None), mailbox=Mailbox(weigh=weigh, held=held, **mailbox))
    return PartitionSupervisor.start_link(
        child_spec=spec, name=name, partitions=partitions, max_restarts=100
    )


def hold(name: str, partition: int) -> tuple[threading.Event, threading.Event]:
    """Make ``partition`` busy in a handler until the returned release event is set."""
    entered, release = threading.Event(), threading.Event()
    PartitionSupervisor.cast(name, partition, ("hold", entered, release), units=0)
    assert entered.wait(WAIT)
    return entered, release


def wait_restarted(name: str, partition: int, old: Pid) -> Pid:
    """Return the new pid of ``partition`` once its supervisor restarted it (calls only)."""
    for _ in range(1000):
        rows = {c.id: c.pid for c in PartitionSupervisor.which_children(name)}
        pid = rows[partition]
        if isinstance(pid, Pid) and pid != old:
            return pid
        Process.monitor_wait(old, WAIT)  # the exit is on its way to the supervisor
    raise AssertionError(f"partition {partition} was not restarted")


def stats(name: str, partition: int) -> tuple[int, dict[str, int], int]:
    s = PartitionSupervisor.stats(name).partitions[partition]
    return s.accepted, s.lost, s.orphaned


# -- the options -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"handoff": 1}, TypeError, "handoff must be a bool, got: 1"),
        ({"max_mailbox": 0}, ValueError, "max_mailbox must be a positive integer, got: 0"),
        ({"max_mailbox": 2.5}, TypeError, "max_mailbox must be a positive integer, got: 2.5"),
        ({"overflow": "drop_oldest"}, ValueError, "overflow must be 'block' or 'drop_newest'"),
        ({"weigh": 1}, TypeError, "weigh must be callable, got: 1"),
        ({"held": None}, TypeError, "held must be callable, got: None"),
    ],
)
def test_a_bad_mailbox_option_raises_naming_it(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Mailbox(**options)


def test_a_tally_counts_bumps_from_many_threads_and_reading_does_not_count() -> None:
    tally = Tally()
    threads = [
        threading.Thread(target=lambda: [tally.bump() for _ in range(10_000)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert tally.value() == tally.value() == 40_000


# -- counting and routing ------------------------------------------------------


def test_cast_by_key_counts_each_cast_and_routes_as_via_does() -> None:
    start()
    try:
        for n in range(1, 6):
            PartitionSupervisor.cast("Talliers", n, n)  # int keys: abs(key) % 2
        PartitionSupervisor.cast("Talliers", 0, [10, 20], units=2)
        assert PartitionSupervisor.partition("Talliers", 3) == 1
        assert (
            PartitionSupervisor.route("Talliers", 3)
            == PartitionSupervisor.via("Talliers", 3).whereis()
        )
        assert GenServer.call(PartitionSupervisor.via("Talliers", 0), "sum") == 2 + 4 + 30
        assert GenServer.call(PartitionSupervisor.via("Talliers", 1), "sum") == 1 + 3 + 5
        assert [stats("Talliers", p) for p in (0, 1)] == [(4, {}, 0), (3, {}, 0)]
    finally:
        Supervisor.stop("Talliers")


def test_a_cast_to_a_name_no_supervisor_ever_ran_as_is_counted_unrouted_noproc() -> None:
    PartitionSupervisor.cast("NeverStarted", "key", 1)
    PartitionSupervisor.cast("NeverStarted", "key", [1, 2], units=2)
    assert PartitionSupervisor.route("NeverStarted", "key") is None
    assert PartitionSupervisor.partition("NeverStarted", "key") is None
    assert PartitionSupervisor.stats("NeverStarted") == ([], {"noproc": 3})


def test_a_direct_cast_to_a_counted_child_is_weighed_and_counted() -> None:
    start()
    try:
        pid = PartitionSupervisor.route("Talliers", 0)
        GenServer.cast(pid, [1, 1, 1])  # three units, by weigh
        GenServer.cast(pid, "not an event")  # weighs 0: counted as nothing
        assert GenServer.get_state(pid)["seen"] == [[1, 1, 1], "not an event"]
        assert stats("Talliers", 0) == (3, {}, 0)
    finally:
        Supervisor.stop("Talliers")


# -- handoff -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("handoff", "seen", "lost"),
    [
        (True, [1, 2, 3, 4], {}),  # to the successor first, then what came after
        (False, [4], {"exit": 3}),  # OTP: the mailbox died with it, counted
    ],
)
def test_casts_queued_behind_a_crash_go_to_the_successor_only_with_handoff(
    handoff: bool, seen: list[int], lost: dict[str, int]
) -> None:
    start(handoff=handoff)
    try:
        old = PartitionSupervisor.route("Talliers", 0)
        assert old is not None
        _, release = hold("Talliers", 0)
        PartitionSupervisor.cast("Talliers", 0, "boom", units=0)
        for n in (1, 2, 3):
            PartitionSupervisor.cast("Talliers", 0, n)
        release.set()
        new = wait_restarted("Talliers", 0, old)
        PartitionSupervisor.cast("Talliers", 0, 4)  # sent after the restart: comes last
        assert GenServer.get_state(new)["seen"] == seen
        assert stats("Talliers", 0) == (4, lost, 0)
    finally:
        Supervisor.stop("Talliers")


def test_casts_to_a_dead_child_wait_for_its_successor_with_handoff() -> None:
    gate = threading.Event()

    class Slow(Tallier):
        def init(self, arg: Any) -> Ok:
            if arg == "slow":
                gate.wait(WAIT)  # the second start waits here: the child is dead meanwhile
            return super().init(arg)

    starts = iter([None, None, "slow"])
    spec = replace(Slow.child_spec(None), mailbox=Mailbox(handoff=True, weigh=weigh, held=held))
    PartitionSupervisor.start_link(
        child_spec=spec,
        name="Talliers",
        partitions=2,
        with_arguments=lambda args, p: [next(starts)],
        max_restarts=100,
    )
    try:
        old = PartitionSupervisor.route("Talliers", 0)
        assert old is not None
        Process.exit(old, "kill")
        assert Process.monitor_wait(old, WAIT)
        PartitionSupervisor.cast("Talliers", 0, 7)  # finds it dead: kept, not lost
        PartitionSupervisor.cast("Talliers", 0, 8)
        assert stats("Talliers", 0)[1:] == ({}, 2)
        gate.set()
        new = wait_restarted("Talliers", 0, old)
        assert GenServer.get_state(new)["seen"] == [7, 8]
        assert stats("Talliers", 0) == (2, {}, 0)
    finally:
        gate.set()
        Supervisor.stop("Talliers")


def test_a_kill_counts_the_mailbox_and_the_state_lost_killed_even_with_handoff() -> None:
    start(handoff=True)
    try:
        old = PartitionSupervisor.route("Talliers", 1)
        assert old is not None
        PartitionSupervisor.cast("Talliers", 1, 5)  # handled: held by the state
        _, release = hold("Talliers", 1)
        PartitionSupervisor.cast("Talliers", 1, 6)  # queued
        PartitionSupervisor.cast("Talliers", 1, [1, 1], units=2)  # queued, two units
        Process.exit(old, "kill")
        release.set()  # the old thread ends its handler, then accounts for what it drops
        wait_restarted("Talliers", 1, old)
        for _ in range(1000):
            if stats("Talliers", 1)[1].get("killed", 0) == 4:
                break
            Process.monitor_wait(old, WAIT)
        assert stats("Talliers", 1) == (4, {"killed": 4}, 0)
    finally:
        Supervisor.stop("Talliers")


# -- bounds and closing --------------------------------------------------------


def test_a_full_mailbox_with_drop_newest_drops_and_counts_overflow() -> None:
    start(max_mailbox=2, overflow="drop_newest")
    try:
        _, release = hold("Talliers", 0)
        for n in range(10):
            PartitionSupervisor.cast("Talliers", 0, n)
        assert Process.info(PartitionSupervisor.route("Talliers", 0))["message_queue_len"] == 2
        release.set()
        assert GenServer.call(PartitionSupervisor.via("Talliers", 0), "seen") == [0, 1]
        assert stats("Talliers", 0) == (10, {"overflow": 8}, 0)
    finally:
        Supervisor.stop("Talliers")


def test_a_full_mailbox_with_block_makes_the_sender_wait_for_room() -> None:
    start(max_mailbox=2)
    try:
        _, release = hold("Talliers", 0)
        PartitionSupervisor.cast("Talliers", 0, 1)
        PartitionSupervisor.cast("Talliers", 0, 2)
        sent = threading.Event()
        sender = threading.Thread(
            target=lambda: (PartitionSupervisor.cast("Talliers", 0, 3), sent.set())
        )
        sender.start()
        assert not sent.wait(0.2)  # a bounded wait that must time out: the sender blocks
        release.set()
        assert sent.wait(WAIT)
        sender.join(WAIT)
        assert GenServer.call(PartitionSupervisor.via("Talliers", 0), "seen") == [1, 2, 3]
        assert stats("Talliers", 0) == (3, {}, 0)
    finally:
        Supervisor.stop("Talliers")


def test_close_refuses_later_casts_and_counts_them_closed() -> None:
    start(handoff=True)
    PartitionSupervisor.cast("Talliers", 0, 1)
    PartitionSupervisor.close("Talliers")
    PartitionSupervisor.close("Talliers")  # idempotent
    PartitionSupervisor.cast("Talliers", 0, 2)
    assert GenServer.call(PartitionSupervisor.via("Talliers", 0), "seen") == [1]
    Supervisor.stop("Talliers")
    PartitionSupervisor.cast("Talliers", 0, 3)  # the last supervisor's books go on
    # Tallier does not trap exits: the shutdown destroyed its state, which held 1.
    assert stats("Talliers", 0) == (3, {"closed": 2, "exit": 1}, 0)


def test_a_stopped_supervisor_closes_its_places_and_a_new_one_starts_fresh_books() -> None:
    start()
    PartitionSupervisor.cast("Talliers", 0, 1)
    Supervisor.stop("Talliers")
    PartitionSupervisor.cast("Talliers", 0, 2)
    assert stats("Talliers", 0) == (2, {"closed": 1, "exit": 1}, 0)
    start()
    try:
        assert stats("Talliers", 0) == (0, {}, 0)
    finally:
        Supervisor.stop("Talliers")


def test_a_plain_supervisor_hands_off_a_crashed_childs_casts_when_its_spec_asks() -> None:
    spec = replace(Tallier.child_spec(None), mailbox=Mailbox(handoff=True, weigh=weigh))
    sup = Supervisor.start_link([spec])
    try:
        [(_, old, _, _)] = Supervisor.which_children(sup)
        assert isinstance(old, Pid)
        entered, release = threading.Event(), threading.Event()
        GenServer.cast(old, ("hold", entered, release))
        assert entered.wait(WAIT)
        GenServer.cast(old, "boom")
        GenServer.cast(old, 41)
        release.set()
        assert Process.monitor_wait(old, WAIT)
        GenServer.cast(old, 1)  # to the dead pid: handed on too
        for _ in range(1000):
            [(_, new, _, _)] = Supervisor.which_children(sup)
            if isinstance(new, Pid) and new != old:
                break
        assert GenServer.call(new, "sum") == 42
    finally:
        Supervisor.stop(sup)


# -- get_state, reply, info ------------------------------------------------------


class Late(GenServer):
    """Answer a call only when told, and report whether the caller got the answer."""

    def init(self, arg: Any) -> Ok:
        self.answered: list[bool] = arg
        return Ok(None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> NoReply:
        return NoReply(from_)

    def handle_cast(self, request: Any, from_: Any) -> NoReply:
        self.answered.append(GenServer.reply(from_, "late"))
        return NoReply(None)


def test_reply_returns_false_when_the_caller_had_given_up() -> None:
    answered: list[bool] = []
    pid = Late.start_link(answered)
    try:
        with pytest.raises(CallTimeout):
            GenServer.call(pid, "ask", timeout=0.05)
        GenServer.cast(pid, "answer now")
        GenServer.get_state(pid)  # a round-trip: the cast was handled
        assert answered == [False]
    finally:
        GenServer.stop(pid)


def test_get_state_answers_after_the_messages_queued_before_it() -> None:
    pid = Tallier.start_link()
    try:
        for n in range(100):
            GenServer.cast(pid, n)
        assert GenServer.get_state(pid)["sum"] == sum(range(100))
    finally:
        GenServer.stop(pid)


def test_process_info_describes_a_live_process_and_is_none_once_it_exited() -> None:
    pid = Tallier.start_link(name="Info")
    info = Process.info(pid)
    assert info == {
        "registered_name": "Info",
        "message_queue_len": 0,
        "trap_exit": False,
        "monitored_by": [],
    }
    GenServer.stop(pid)
    assert Process.info(pid) is None


# -- found by review: books across supervisor restarts, bounds between processes ---------


def test_a_crashed_partition_supervisor_restarted_by_its_parent_keeps_its_books() -> None:
    spec = replace(Tallier.child_spec(None), mailbox=Mailbox(handoff=True, weigh=weigh))
    options = {"child_spec": spec, "name": "Talliers", "partitions": 2}
    sup = Supervisor.start_link([PartitionSupervisor.child_spec(options)])
    try:
        PartitionSupervisor.cast("Talliers", 0, 1)
        old = Process.whereis("Talliers")
        with pytest.raises(ExitError):  # an unknown request crashes the supervisor itself
            GenServer.call("Talliers", "nonsense")
        assert Process.monitor_wait(old, WAIT)
        Supervisor.which_children(sup)  # a round-trip: the parent has restarted it
        PartitionSupervisor.cast("Talliers", 0, 2)
        assert stats("Talliers", 0)[0] == 2  # the same books, not fresh ones
    finally:
        Supervisor.stop(sup)


def test_orphans_are_counted_lost_when_no_supervisor_is_left_to_start_a_successor() -> None:
    gate = threading.Event()

    class Stuck(Tallier):
        def init(self, arg: Any) -> Ok:
            if arg == "stuck":
                gate.wait(WAIT)
                raise RuntimeError("never starts")
            return super().init(arg)

    starts = iter([None, None, "stuck"])
    spec = replace(Stuck.child_spec(None), mailbox=Mailbox(handoff=True, weigh=weigh))
    PartitionSupervisor.start_link(
        child_spec=spec,
        name="Talliers",
        partitions=2,
        with_arguments=lambda args, p: [next(starts, "stuck")],
        max_restarts=0,
    )
    old = PartitionSupervisor.route("Talliers", 0)
    assert old is not None
    Process.exit(old, "kill")
    assert Process.monitor_wait(old, WAIT)
    PartitionSupervisor.cast("Talliers", 0, 5)  # an orphan: the restart is stuck in init
    assert stats("Talliers", 0) == (1, {}, 1)
    supervisor = Process.whereis("Talliers")
    gate.set()  # the restart fails: max_restarts=0, the supervisor gives up
    assert Process.monitor_wait(supervisor, WAIT)
    PartitionSupervisor.close("Talliers")  # nobody will start a successor now
    assert stats("Talliers", 0) == (1, {"noproc": 1}, 0)


def test_the_bound_holds_for_orphans_while_no_process_holds_the_place() -> None:
    gate = threading.Event()

    class Slow(Tallier):
        def init(self, arg: Any) -> Ok:
            if arg == "slow":
                gate.wait(WAIT)
            return super().init(arg)

    starts = iter([None, None, "slow"])
    mailbox = Mailbox(handoff=True, max_mailbox=2, overflow="drop_newest", weigh=weigh)
    PartitionSupervisor.start_link(
        child_spec=replace(Slow.child_spec(None), mailbox=mailbox),
        name="Talliers",
        partitions=2,
        with_arguments=lambda args, p: [next(starts)],
    )
    try:
        old = PartitionSupervisor.route("Talliers", 0)
        assert old is not None
        Process.exit(old, "kill")
        assert Process.monitor_wait(old, WAIT)
        for n in range(5):
            PartitionSupervisor.cast("Talliers", 0, n)
        assert stats("Talliers", 0) == (5, {"overflow": 3}, 2)
        gate.set()
        new = wait_restarted("Talliers", 0, old)
        assert GenServer.get_state(new)["seen"] == [0, 1]
    finally:
        gate.set()
        Supervisor.stop("Talliers")


def test_a_weigh_that_raises_cannot_stop_a_death_from_finishing() -> None:
    def bad_weigh(msg: Any) -> int:
        raise KeyError(msg)

    spec = replace(Tallier.child_spec(None), mailbox=Mailbox(weigh=bad_weigh))
    PartitionSupervisor.start_link(child_spec=spec, name="Talliers", partitions=1)
    try:
        old = PartitionSupervisor.route("Talliers", 0)
        assert old is not None
        _, release = hold("Talliers", 0)
        PartitionSupervisor.cast("Talliers", 0, "boom", units=0)
        PartitionSupervisor.cast("Talliers", 0, 1)  # queued: weighed when the crash drops it
        release.set()
        assert Process.monitor_wait(old, WAIT), "the death never finished"
        wait_restarted("Talliers", 0, old)
        assert stats("Talliers", 0)[1] == {"exit": 1}  # counted one unit, by default
    finally:
        Supervisor.stop("Talliers")


def test_get_state_of_a_process_that_exited_raises_no_process() -> None:
    pid = Tallier.start_link()
    GenServer.stop(pid)
    with pytest.raises(NoProcess):
        GenServer.get_state(pid)
