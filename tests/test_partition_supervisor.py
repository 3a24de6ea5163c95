"""PartitionSupervisor: N copies of one child, and keys routed to them as on the BEAM."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from support import WAIT

from summarizer.otp import (
    ChildSpec,
    GenServer,
    NoProcess,
    NoReply,
    Ok,
    PartitionSupervisor,
    Pid,
    Process,
    Reply,
    Supervisor,
    phash2,
    schedulers_online,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

USERS = ["1", "2", "3", "4", "5"]  # the seed's user ids


class Part(GenServer):
    """A partition that answers with the arg it was started with, and keeps what it got."""

    def init(self, arg: Any) -> Ok:
        return Ok((arg, []))

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        arg, got = state
        return Reply(arg if request == "arg" else list(got), state)

    def handle_cast(self, request: Any, state: Any) -> NoReply:
        state[1].append(("cast", request))
        return NoReply(state)

    def handle_info(self, msg: Any, state: Any) -> NoReply:
        state[1].append(("info", msg))
        return NoReply(state)


def own_partition(args: list[Any], partition: int) -> list[Any]:
    """``with_arguments`` that starts each child with its partition as its arg."""
    return [partition]


def start_parts(name: str = "Parts", **options: Any) -> Pid:
    options.setdefault("with_arguments", own_partition)
    return PartitionSupervisor.start_link(child_spec=Part.child_spec(None), name=name, **options)


def partition_pids(name: str) -> dict[Any, Any]:
    return {row.id: row.pid for row in PartitionSupervisor.which_children(name)}


# -- children ---------------------------------------------------------------


def test_children_ids_are_0_to_n_minus_1_listed_in_reverse_order() -> None:
    sup = start_parts(partitions=3)
    try:
        rows = PartitionSupervisor.which_children("Parts")
        assert [(r.id, r.type, r.modules) for r in rows] == [
            (2, "worker", ["Part"]),
            (1, "worker", ["Part"]),
            (0, "worker", ["Part"]),
        ]
        assert rows == Supervisor.which_children(sup)
        assert len({r.pid for r in rows}) == 3
        assert PartitionSupervisor.count_children("Parts") == {
            "specs": 3,
            "active": 3,
            "supervisors": 0,
            "workers": 3,
        }
    finally:
        Supervisor.stop("Parts")


def test_partitions_tells_how_many_partitions_a_name_runs() -> None:
    start_parts(partitions=5)
    try:
        assert PartitionSupervisor.partitions("Parts") == 5
    finally:
        Supervisor.stop("Parts")
    with pytest.raises(NoProcess):
        PartitionSupervisor.partitions("Parts")


def test_partitions_default_to_schedulers_online() -> None:
    start_parts()
    try:
        assert PartitionSupervisor.partitions("Parts") == schedulers_online()
        assert len(PartitionSupervisor.which_children("Parts")) == schedulers_online()
    finally:
        Supervisor.stop("Parts")


def test_with_arguments_puts_the_partition_into_the_child_start_args() -> None:
    PartitionSupervisor.start_link(
        child_spec=(Part, "base"),
        name="Parts",
        partitions=2,
        with_arguments=lambda args, partition: [(*args, partition)],
    )
    try:
        answers = {p: GenServer.call(pid, "arg") for p, pid in partition_pids("Parts").items()}
        assert answers == {0: ("base", 0), 1: ("base", 1)}
    finally:
        Supervisor.stop("Parts")


def test_without_with_arguments_every_partition_gets_the_same_args() -> None:
    start_parts(partitions=2, with_arguments=None)
    try:
        assert [GenServer.call(pid, "arg") for pid in partition_pids("Parts").values()] == [
            None,
            None,
        ]
    finally:
        Supervisor.stop("Parts")


@pytest.mark.parametrize(
    ("partitions", "error"),
    [(0, ValueError), (-2, ValueError), ("2", TypeError), (2.0, TypeError), (True, TypeError)],
)
def test_partitions_must_be_a_positive_integer(partitions: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        start_parts(partitions=partitions)
    assert str(info.value) == f"partitions must be a positive integer, got: {partitions!r}"
    assert Process.whereis("Parts") is None


def test_partitions_beyond_one_thread_each_are_rejected_before_anything_starts() -> None:
    with pytest.raises(ValueError, match=r"partitions must be an integer <= 4096, got: 1000"):
        start_parts(partitions=10**100)
    assert Process.whereis("Parts") is None


def test_a_partition_supervisor_needs_a_name() -> None:
    with pytest.raises(TypeError, match=r"name must be a non-empty str, got: None"):
        PartitionSupervisor.start_link(child_spec=Part.child_spec(None), name=None)  # type: ignore[arg-type]


def test_the_strategy_option_applies_across_partitions() -> None:
    start_parts(partitions=3, strategy="one_for_all")
    try:
        before = partition_pids("Parts")
        Process.exit(before[1], "kill")
        assert Process.monitor_wait(before[1], WAIT)
        after = partition_pids("Parts")
        assert all(after[p] != before[p] for p in range(3))
        assert [PartitionSupervisor.via("Parts", p).whereis() for p in range(3)] == [
            after[p] for p in range(3)
        ]
    finally:
        Supervisor.stop("Parts")


# -- routing ----------------------------------------------------------------


@pytest.mark.parametrize("key", [0, 1, 2, 3, 7, -1, -2, -3, -7, 2**70, -(2**70)])
def test_an_int_key_routes_to_abs_key_mod_n_including_negative_keys(key: int) -> None:
    start_parts(partitions=3)
    try:
        via = PartitionSupervisor.via("Parts", key)
        assert GenServer.call(via, "arg") == abs(key) % 3
        assert via.whereis() == partition_pids("Parts")[abs(key) % 3]
    finally:
        Supervisor.stop("Parts")


def test_the_seed_users_route_to_partitions_0_0_1_1_0_of_3_as_on_the_beam() -> None:
    start_parts(partitions=3)
    try:
        routed = [GenServer.call(PartitionSupervisor.via("Parts", u), "arg") for u in USERS]
        assert routed == [0, 0, 1, 1, 0]
        assert routed == [phash2(u, 3) for u in USERS]
    finally:
        Supervisor.stop("Parts")


def test_the_seed_users_all_route_to_partition_1_of_2() -> None:
    start_parts(partitions=2)
    try:
        assert [GenServer.call(PartitionSupervisor.via("Parts", u), "arg") for u in USERS] == [
            1
        ] * 5
    finally:
        Supervisor.stop("Parts")


def test_casts_and_sends_through_via_reach_the_routed_partition() -> None:
    start_parts(partitions=3)
    try:
        GenServer.cast(PartitionSupervisor.via("Parts", "3"), "hello")
        Process.send(PartitionSupervisor.via("Parts", 5), "hi")
        assert GenServer.call(PartitionSupervisor.via("Parts", 1), "got") == [("cast", "hello")]
        assert GenServer.call(PartitionSupervisor.via("Parts", 2), "got") == [("info", "hi")]
        assert GenServer.call(PartitionSupervisor.via("Parts", 0), "got") == []
    finally:
        Supervisor.stop("Parts")


def test_via_to_a_name_that_is_not_running_fails_a_call_and_drops_a_cast() -> None:
    via = PartitionSupervisor.via("Nobody", "1")
    assert via.whereis() is None
    with pytest.raises(NoProcess):
        GenServer.call(via, "arg")
    assert GenServer.cast(via, "lost") is None


def test_a_name_that_never_ran_here_hands_its_casts_elsewhere_or_counts_them() -> None:
    taken: list[tuple[Any, Any, int]] = []

    def elsewhere(key: Any, msg: Any, units: int) -> bool:
        taken.append((key, msg, units))
        return key != "refused"

    PartitionSupervisor.elsewhere("Remote", elsewhere)
    try:
        PartitionSupervisor.cast("Remote", "1", "hello", 3)
        PartitionSupervisor.cast("Remote", "refused", "no", 2)
    finally:
        PartitionSupervisor.elsewhere("Remote", None)
    PartitionSupervisor.cast("Remote", "1", "after", 1)
    assert taken == [("1", "hello", 3), ("refused", "no", 2)]
    assert PartitionSupervisor.stats("Remote").unrouted == {"noproc": 3}
    with pytest.raises(TypeError, match="handler must be callable or None, got: 1"):
        PartitionSupervisor.elsewhere("Remote", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a non-empty str, got: ''"):
        PartitionSupervisor.elsewhere("", None)


class Gated(GenServer):
    """A partition whose restarts of partition 0 wait at a gate; it reports its losses."""

    def init(self, arg: tuple[int, dict[str, Any]]) -> Ok:
        partition, gate = arg
        self.gate = gate
        gate["starts"][partition] += 1
        if partition == 0 and gate["starts"][0] > 1:
            gate["entered"].set()
            gate["release"].wait(WAIT)
        return Ok(partition)

    def handle_call(self, request: Any, from_: Any, partition: int) -> Reply:
        return Reply(partition, partition)

    def handle_cast(self, request: Any, partition: int) -> NoReply:
        if request == "block":
            self.gate["busy"].set()
            self.gate["release"].wait(WAIT)
        return NoReply(partition)

    def lost_messages(self, msgs: list[Any], reason: Any) -> None:
        self.gate["lost"].extend(msgs)

    def lost_state(self, partition: int, reason: Any) -> None:
        self.gate["lost_states"].put((partition, reason))


def start_gated() -> dict[str, Any]:
    gate: dict[str, Any] = {
        "starts": [0, 0],
        "entered": threading.Event(),
        "busy": threading.Event(),
        "release": threading.Event(),
        "lost": [],
        "lost_states": queue.Queue(),
    }
    PartitionSupervisor.start_link(
        child_spec=Gated.child_spec(None),
        name="Gated",
        partitions=2,
        with_arguments=lambda args, partition: [(partition, gate)],
        max_restarts=10,
    )
    return gate


def test_between_a_death_and_its_restart_via_routes_to_the_dead_pid() -> None:
    gate = start_gated()
    try:
        old = partition_pids("Gated")
        Process.exit(old[0], "kill")  # its restart now waits at the gate:
        assert gate["entered"].wait(WAIT)  # the supervisor is busy
        Process.exit(old[1], "kill")  # so partition 1 is not restarted yet
        via = PartitionSupervisor.via("Gated", 1)
        assert via.whereis() == old[1]
        with pytest.raises(NoProcess):
            GenServer.call(via, "partition")
        assert GenServer.cast(via, "into the void") is None
        assert gate["lost"] == ["into the void"]
    finally:
        gate["release"].set()
    new = partition_pids("Gated")  # queued after both exits: both restarted
    assert new[1] != old[1] and new[0] != old[0]
    assert GenServer.call(PartitionSupervisor.via("Gated", 1), "partition") == 1
    assert GenServer.call(PartitionSupervisor.via("Gated", 0), "partition") == 0
    Supervisor.stop("Gated")


def test_a_partition_killed_while_busy_is_restarted_at_once_and_routing_sees_the_new_pid() -> None:
    gate = start_gated()
    via = PartitionSupervisor.via("Gated", 3)  # partition 1
    old = via.whereis()
    assert old is not None
    try:
        GenServer.cast(via, "block")
        assert gate["busy"].wait(WAIT)
        Process.exit(old, "kill")
        new = partition_pids("Gated")[1]
        assert isinstance(new, Pid) and new != old
        assert via.whereis() == new
        assert GenServer.call(via, "partition") == 1
        assert [t for t in threading.enumerate() if t.name.endswith(f"-{old!r}")] != []
    finally:
        gate["release"].set()
    assert gate["lost_states"].get(timeout=WAIT) == (1, "killed")
    Supervisor.stop("Gated")


# -- under a supervisor -----------------------------------------------------


OPTIONS: dict[str, Any] = {
    "name": "Nested",
    "child_spec": Part.child_spec(None),
    "partitions": 2,
    "with_arguments": own_partition,
}


def test_the_child_spec_of_a_partition_supervisor_is_a_supervisor_named_by_its_name() -> None:
    spec = PartitionSupervisor.child_spec(OPTIONS)
    assert (spec.id, spec.type, spec.shutdown, spec.modules) == (
        "Nested",
        "supervisor",
        "infinity",
        ["PartitionSupervisor"],
    )
    with pytest.raises(TypeError, match=r"options must be a dict with a 'name', got: "):
        PartitionSupervisor.child_spec({"partitions": 2})


@pytest.mark.parametrize(
    "child",
    [PartitionSupervisor.child_spec(OPTIONS), (PartitionSupervisor, OPTIONS)],
    ids=["child_spec", "pair"],
)
def test_a_partition_supervisor_runs_under_a_supervisor_and_is_restarted_by_it(
    child: Any,
) -> None:
    outer = Supervisor.start_link([child])
    try:
        [(cid, first, kind, modules)] = Supervisor.which_children(outer)
        assert (cid, kind, modules) == ("Nested", "supervisor", ["PartitionSupervisor"])
        assert Process.whereis("Nested") == first
        assert GenServer.call(PartitionSupervisor.via("Nested", "1"), "arg") == 1
        old_parts = partition_pids("Nested")
        Process.exit("Nested", "kill")
        for pid in [first, *old_parts.values()]:  # its partitions die with it
            assert Process.monitor_wait(pid, WAIT)
        [(_, second, _, _)] = Supervisor.which_children(outer)
        assert isinstance(second, Pid) and second != first
        assert PartitionSupervisor.partitions("Nested") == 2
        assert GenServer.call(PartitionSupervisor.via("Nested", "1"), "arg") == 1
        assert set(partition_pids("Nested").values()).isdisjoint(old_parts.values())
    finally:
        Supervisor.stop(outer)
    assert Process.whereis("Nested") is None


def test_a_partition_supervisor_name_can_be_taken_again_after_it_stopped() -> None:
    start_parts(partitions=2)
    Supervisor.stop("Parts")
    start_parts(partitions=3)
    try:
        assert PartitionSupervisor.partitions("Parts") == 3
        assert GenServer.call(PartitionSupervisor.via("Parts", 5), "arg") == 2
    finally:
        Supervisor.stop("Parts")


def test_a_child_spec_given_as_a_class_or_spec_is_accepted() -> None:
    for child_spec in (Part, ChildSpec(id="ignored", start=(Part.start_link, ("x",)))):
        PartitionSupervisor.start_link(child_spec=child_spec, name="Parts", partitions=1)
        try:
            [row] = PartitionSupervisor.which_children("Parts")
            assert row.id == 0
        finally:
            Supervisor.stop("Parts")
