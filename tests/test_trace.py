"""trace(): the messages between processes, recorded only while a trace is active.

Waits are a call round-trip or an on_flush queue with a bounded timeout, never sleeps.
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from support import WAIT

from summarizer import EventCollector, MemorySink, SummarizerSupervisor, User
from summarizer.otp import (
    ExitError,
    GenServer,
    NoReply,
    Ok,
    PartitionSupervisor,
    Pid,
    Process,
    Reply,
    Supervisor,
    gen_server,
    process,
    supervisor,
    trace,
)
from summarizer.otp.gen_server import From
from summarizer.otp.process import Proc
from summarizer.widgets import mermaid_seq_trace

pytestmark = pytest.mark.usefixtures("no_leaks")

COLLECTORS = "EventCollectorPartitionSupervisor"
MEGACORP = User("1", "MegaCorp", "enterprise")


class Echo(GenServer):
    def init(self, arg: Any) -> Ok:
        return Ok(arg)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request, state)

    def handle_cast(self, request: Any, state: Any) -> NoReply:
        return NoReply(state)

    def handle_info(self, msg: Any, state: Any) -> NoReply:
        return NoReply(state)


def kinds(t: Any) -> list[str]:
    return [m.kind for m in t.messages]


def originals() -> list[Any]:
    return [
        Proc.__dict__["put"],
        From.__dict__["reply"],
        process.signal,
        supervisor.signal,
        gen_server.start,
    ]


def test_a_trace_records_start_cast_call_reply_info_and_stop_in_order() -> None:
    with trace() as t:
        pid = Echo.start_link()
        GenServer.cast(pid, "hello")
        assert GenServer.call(pid, "ping") == "ping"
        Process.send(pid, "tick")
        GenServer.stop(pid)
    assert kinds(t) == ["start", "cast", "call", "reply", "info", "stop"]
    start, cast, call, reply, info, _stop = t.messages
    me = cast.sender
    assert isinstance(me, str)  # this test's thread: a plain thread, named
    assert start.receiver == cast.receiver == call.receiver == pid
    assert (call.term, reply.term, reply.sender, reply.receiver) == ("ping", "ping", pid, me)
    assert info.term == "tick"
    assert t.label(pid) == f"Echo {pid!r}"
    assert t.participants() == [me, pid]


def test_tracing_costs_nothing_once_the_block_ends() -> None:
    before = originals()
    with trace():
        assert originals() != before  # recording versions swapped in
        with trace():  # nested: the outer one keeps them
            pass
        assert originals() != before
    assert originals() == before  # the runtime's own functions, untouched


def test_messages_outside_the_block_are_not_recorded() -> None:
    pid = Echo.start_link()
    with trace() as t:
        GenServer.call(pid, "in")
    GenServer.call(pid, "out")
    GenServer.stop(pid)
    assert [m.term for m in t.messages] == ["in", "in"]


def test_a_trace_stops_at_its_limit_and_counts_the_rest() -> None:
    pid = Echo.start_link()
    with trace(limit=3) as t:
        GenServer.cast(pid, "x" * 100)
        for i in range(1, 10):
            GenServer.cast(pid, i)
        GenServer.call(pid, "sync")
    GenServer.stop(pid)
    assert [m.term for m in t.messages] == ["x" * 100, 1, 2]
    assert t.dropped == 9  # 7 casts, the call and its reply
    text = mermaid_seq_trace(t)
    assert f": cast {'x' * 47}…\n" in text  # a long term is shortened on its arrow
    assert "9 more messages not recorded" in text


def test_trace_checks_its_limit() -> None:
    with pytest.raises(ValueError, match="limit must be a positive integer, got: 0"), trace(0):
        pass
    with pytest.raises(TypeError, match="t must be a Trace, got: 'x'"):
        mermaid_seq_trace("x")  # type: ignore[arg-type]


def test_one_flush_message_by_message_with_a_crash_and_restart(tree: Callable[..., Pid]) -> None:
    flushed: queue.SimpleQueue[Any] = queue.SimpleQueue()
    tree(partitions=1, flush_interval=0.05, on_flush=lambda p, d: flushed.put(d))
    [old] = [c.pid for c in Supervisor.which_children(COLLECTORS)]
    with trace() as t:
        EventCollector.record_event(MEGACORP)
        EventCollector.record_event(MEGACORP)
        got: Counter[Any] = Counter()
        while sum(got.values()) < 2:  # a tick may fall between the two casts
            got.update(flushed.get(timeout=10))
        with pytest.raises(ExitError):
            GenServer.call(PartitionSupervisor.via(COLLECTORS, 0), "nonsense")
        # Its exit is queued at its supervisor once it has exited, so this call is
        # answered after the restart.
        assert Process.monitor_wait(old, 10)
        new = Supervisor.which_children(COLLECTORS)[0].pid
    assert isinstance(new, Pid) and new != old
    seq = [(m.kind, m.sender, m.receiver) for m in t.messages]
    me = t.messages[0].sender
    flusher = next(m.receiver for m in t.messages if m.kind == "info")
    collectors_sup = Process.whereis(COLLECTORS)
    expected = [
        ("cast", me, old),
        ("cast", me, old),
        ("info", "timer", flusher),  # the flusher's timer tick
        ("call", flusher, old),  # flush_events(0)
        ("reply", old, flusher),
        ("call", me, old),  # "nonsense": the collector crashes
        ("exit", old, collectors_sup),  # its supervisor hears of it...
        ("start", collectors_sup, new),  # ...and starts a new one
    ]
    at = 0
    for step in expected:  # in this order; other messages (a second tick) may come between
        assert step in seq[at:], f"{step} not found after {seq[:at]}"
        at = seq.index(step, at) + 1
    assert t.label(old) == f"EventCollector {old!r}"
    text = mermaid_seq_trace(t)
    assert text.splitlines()[0] == "sequenceDiagram"
    assert f"as EventCollector {_escaped(old)}" in text
    assert "-)" in text and "-->>" in text and "-x" in text
    assert ": cast User(id='1', name='MegaCorp', plan='enterprise')\n" in text
    assert "perform_cron_work" in text


def _escaped(pid: Pid) -> str:
    return repr(pid).replace("#", "#35;").replace("<", "#60;").replace(">", "#62;")


def test_a_flush_inside_a_trace_reaches_the_sinks_once(tree: Callable[..., Pid]) -> None:
    # The traced reply must still tell the collector that its caller got the data:
    # otherwise the collector also delivers it itself, and the sinks get it twice.
    sink = MemorySink()
    sup = tree(partitions=1, flush_interval=0.02, sinks=[sink])
    with trace():
        for _ in range(3):
            EventCollector.record_event(MEGACORP)
        deadline = time.monotonic() + WAIT
        while SummarizerSupervisor.accounting().flushed < 3:  # a call round-trip a turn
            assert time.monotonic() < deadline, "the flusher never flushed"
    Supervisor.stop(sup)  # drains the delivery workers
    assert sink.totals() == {"1": 3}
    assert SummarizerSupervisor.accounting().sinks["MemorySink()"].handed == 1
