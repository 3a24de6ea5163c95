"""GenServer: callbacks and their results, call/cast/reply/stop, terminate, and losses."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import pytest
from support import WAIT

from summarizer.otp import (
    CallTimeout,
    ExitError,
    From,
    GenServer,
    NoProcess,
    NoReply,
    Ok,
    OtpError,
    Pid,
    Process,
    Reply,
    StartError,
    Stop,
    Supervisor,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

NAN = float("nan")


class Ctx:
    """What a test shares with its server: a log and gates, safe across threads."""

    def __init__(self, trap: bool = False) -> None:
        self.trap = trap
        self.log: list[Any] = []  # appended by the server's thread, in order
        self.entered = threading.Event()  # the server is inside a blocking callback
        self.release = threading.Event()  # lets that callback return
        self.lost: list[Any] = []  # what lost_messages received
        self.lost_states: queue.Queue[Any] = queue.Queue()  # what lost_state received


class Probe(GenServer):
    """A counter whose callbacks do what the test asks, and log what happens to them."""

    def init(self, ctx: Ctx) -> Ok:
        self.ctx = ctx
        if ctx.trap:
            Process.flag("trap_exit", True)
        ctx.log.append("init")
        return Ok(0)

    def block(self) -> None:
        self.ctx.entered.set()
        if not self.ctx.release.wait(WAIT):
            raise RuntimeError("the test never released the blocked callback")

    def handle_call(self, request: Any, from_: From, n: int) -> Any:
        match request:
            case "get":
                return Reply(n, n)
            case "crash":
                raise RuntimeError("crashed in handle_call")
            case ("stop", reason):
                return Stop(reason, n, reply="bye")
            case "block":
                self.block()
                return Reply("late", n + 100)
            case "later":  # answer from handle_info, after this callback returned
                Process.send(Process.self(), ("answer", from_))
                return NoReply(n)
            case "later_from_a_thread":
                threading.Thread(target=GenServer.reply, args=(from_, "from a thread")).start()
                return NoReply(n)
            case "call_myself":
                return Reply(GenServer.call(Process.self(), "get"), n)
            case ("continue", term):
                return Reply("continuing", n, continue_=term)
        raise ValueError(f"unexpected call {request!r}")

    def handle_cast(self, request: Any, n: int) -> Any:
        match request:
            case ("add", k):
                return NoReply(n + k)
            case "crash":
                raise RuntimeError("crashed in handle_cast")
            case ("stop", reason):
                return Stop(reason, n)
            case "bad return":
                return "not a callback result"
            case "block":
                self.block()
                return NoReply(n + 100)
            case "block, then continue":
                self.block()
                return NoReply(n + 100, continue_="after the block")
            case "block, then stop":
                self.block()
                return Stop("normal", n + 100)
            case "block, then raise":
                self.block()
                raise RuntimeError("crashed after the block")
        raise ValueError(f"unexpected cast {request!r}")

    def handle_info(self, msg: Any, n: int) -> NoReply:
        if isinstance(msg, tuple) and msg[0] == "answer":
            GenServer.reply(msg[1], ("answered later", n))
        else:
            self.ctx.log.append(("info", msg))
        return NoReply(n)

    def handle_continue(self, term: Any, n: int) -> NoReply:
        self.ctx.log.append(("continue", term))
        return NoReply(n)

    def terminate(self, reason: Any, n: int) -> None:
        self.ctx.log.append(("terminate", reason, n))

    def lost_messages(self, msgs: list[Any], reason: Any) -> None:
        self.ctx.lost.extend(msgs)

    def lost_state(self, n: int, reason: Any) -> None:
        self.ctx.lost_states.put((n, reason))


def start_probe(trap: bool = False, name: str | None = None) -> tuple[Pid, Ctx]:
    ctx = Ctx(trap)
    return Probe.start_link(ctx, name=name), ctx


def join_thread_of(pid: Pid) -> None:
    """Wait until the thread that ran ``pid`` has ended (a killed one ends after its handler)."""
    for thread in threading.enumerate():
        if thread.name.endswith(f"-{pid!r}"):
            thread.join(WAIT)
            assert not thread.is_alive()


def terminations(ctx: Ctx) -> list[Any]:
    return [entry for entry in ctx.log if entry[0] == "terminate"]


# -- init and continue ------------------------------------------------------


def test_start_link_returns_once_init_has_run_with_the_state_it_returned() -> None:
    pid, ctx = start_probe()
    try:
        assert ctx.log == ["init"]
        assert GenServer.call(pid, "get") == 0
    finally:
        GenServer.stop(pid)


class Warm(GenServer):
    """Ask for two continues from init, and send itself messages during init."""

    def init(self, log: list[Any]) -> Ok:
        Process.send(Process.self(), "sent during init")
        GenServer.cast(Process.self(), "cast during init")
        return Ok(log, continue_="first")

    def handle_continue(self, term: Any, log: list[Any]) -> NoReply:
        log.append(("continue", term))
        return NoReply(log, continue_="second" if term == "first" else None)

    def handle_info(self, msg: Any, log: list[Any]) -> NoReply:
        log.append(("info", msg))
        return NoReply(log)

    def handle_cast(self, request: Any, log: list[Any]) -> NoReply:
        log.append(("cast", request))
        return NoReply(log)

    def handle_call(self, request: Any, from_: From, log: list[Any]) -> Reply:
        return Reply(list(log), log)


def test_a_continue_from_init_runs_before_any_message_even_one_sent_during_init() -> None:
    pid = Warm.start_link([])
    try:
        GenServer.cast(pid, "cast after start")
        assert GenServer.call(pid, "log") == [
            ("continue", "first"),
            ("continue", "second"),
            ("info", "sent during init"),
            ("cast", "cast during init"),
            ("cast", "cast after start"),
        ]
    finally:
        GenServer.stop(pid)


def test_a_continue_from_handle_call_runs_before_the_next_message() -> None:
    pid, ctx = start_probe()
    try:
        assert GenServer.call(pid, ("continue", "after the call")) == "continuing"
        Process.send(pid, "next")
        GenServer.call(pid, "get")
        assert ctx.log == ["init", ("continue", "after the call"), ("info", "next")]
    finally:
        GenServer.stop(pid)


class FailingInit(GenServer):
    """Fail in init as the arg says: raise it, or return it."""

    def init(self, arg: Any) -> Any:
        if isinstance(arg, BaseException):
            raise arg
        return arg


def test_init_raising_makes_start_link_raise_start_error_and_leaves_no_thread() -> None:
    before = threading.active_count()
    error = ValueError("cannot start")
    with pytest.raises(StartError) as info:
        FailingInit.start_link(error, name="failing")
    assert info.value.reason is error
    assert info.value.__cause__ is error
    assert "FailingInit.init failed" in str(info.value)
    assert threading.active_count() == before  # checked at once: start_link joined it
    assert Process.whereis("failing") is None


def test_init_returning_stop_makes_start_link_raise_start_error_with_the_reason() -> None:
    with pytest.raises(StartError) as info:
        FailingInit.start_link(Stop("not today", None))
    assert info.value.reason == "not today"


def test_init_returning_something_else_than_ok_makes_start_link_raise_start_error() -> None:
    with pytest.raises(StartError) as info:
        FailingInit.start_link("neither Ok nor Stop")
    assert isinstance(info.value.reason, ValueError)
    assert "bad init return" in str(info.value.reason)


def test_start_link_rejects_a_name_that_is_not_a_non_empty_str() -> None:
    for bad in ("", 42):
        with pytest.raises(TypeError, match=r"name must be a non-empty str or None, got: "):
            Probe.start_link(Ctx(), name=bad)  # type: ignore[arg-type]


# -- call, cast, info -------------------------------------------------------


def test_handle_call_replies_and_handle_cast_changes_the_state() -> None:
    pid, _ = start_probe(name="counter")
    try:
        assert GenServer.cast(pid, ("add", 2)) is None
        assert GenServer.cast("counter", ("add", 3)) is None
        assert GenServer.call("counter", "get") == 5
        assert GenServer.call(pid, "get", timeout=None) == 5
        assert GenServer.call(pid, "get", timeout=math.inf) == 5  # waits forever
    finally:
        GenServer.stop(pid)


def test_handle_info_receives_what_is_neither_a_call_nor_a_cast() -> None:
    pid, ctx = start_probe()
    try:
        Process.send(pid, {"any": "term"})
        GenServer.call(pid, "get")
        assert ctx.log == ["init", ("info", {"any": "term"})]
    finally:
        GenServer.stop(pid)


def test_a_call_left_without_reply_is_answered_later_with_gen_server_reply() -> None:
    pid, _ = start_probe()
    try:
        GenServer.cast(pid, ("add", 7))
        assert GenServer.call(pid, "later") == ("answered later", 7)
        assert GenServer.call(pid, "later_from_a_thread") == "from a thread"
        assert GenServer.call(pid, "get") == 7
    finally:
        GenServer.stop(pid)


def test_a_call_that_times_out_raises_call_timeout_and_the_late_reply_is_discarded() -> None:
    pid, ctx = start_probe()
    try:
        with pytest.raises(CallTimeout) as info:
            GenServer.call(pid, "block", timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, OtpError)
        assert info.value.reason == "timeout"
        assert "0.05 s" in str(info.value)
        assert ctx.entered.wait(WAIT)
        ctx.release.set()  # the server replies "late" to nobody, and keeps running
        assert GenServer.call(pid, "get") == 100
        assert Process.alive(pid)
    finally:
        ctx.release.set()
        GenServer.stop(pid)


def test_a_call_to_a_name_nobody_has_raises_no_process() -> None:
    with pytest.raises(NoProcess) as info:
        GenServer.call("nobody", "get")
    assert info.value.reason == "noproc"
    assert isinstance(info.value, ExitError)
    assert "'nobody'" in str(info.value)


def test_a_call_to_a_pid_that_exited_raises_no_process() -> None:
    pid, _ = start_probe()
    GenServer.stop(pid)
    with pytest.raises(NoProcess):
        GenServer.call(pid, "get")


def test_a_cast_to_nothing_returns_none_and_a_cast_to_a_dead_server_is_counted_lost() -> None:
    assert GenServer.cast("nobody", "lost") is None
    pid, ctx = start_probe()
    GenServer.stop(pid)
    assert GenServer.cast(pid, ("add", 1)) is None
    assert ctx.lost == [("add", 1)]


def test_an_exception_in_handle_call_makes_the_caller_exit_with_that_exception() -> None:
    pid, ctx = start_probe()
    with pytest.raises(ExitError) as info:
        GenServer.call(pid, "crash")
    assert isinstance(info.value.reason, RuntimeError)
    assert str(info.value.reason) == "crashed in handle_call"
    assert Process.monitor_wait(pid, WAIT)
    assert terminations(ctx) == [("terminate", info.value.reason, 0)]


def test_a_server_calling_itself_crashes_instead_of_deadlocking() -> None:
    pid, _ = start_probe()
    with pytest.raises(ExitError) as info:
        GenServer.call(pid, "call_myself")
    assert isinstance(info.value.reason, OtpError)
    assert "attempted to call itself" in str(info.value.reason)


def wait_until_queued(pid: Pid, depth: int) -> None:
    """Wait until ``pid``'s mailbox holds ``depth`` messages.

    The one polling wait of the suite: a caller blocked in ``call`` can signal
    nothing, so read the mailbox's length (``Process.info``). Bounded.
    """
    deadline = time.monotonic() + WAIT
    while (Process.info(pid) or {}).get("message_queue_len", 0) < depth:
        assert time.monotonic() < deadline, "the calls never reached the mailbox"
        threading.Event().wait(0.001)


def test_calls_queued_behind_a_crash_fail_at_once_with_the_crash_reason() -> None:
    pid, ctx = start_probe()
    outcomes: queue.Queue[tuple[Any, float]] = queue.Queue()

    def caller() -> None:
        started = time.monotonic()
        try:
            outcomes.put((GenServer.call(pid, "get", timeout=30), time.monotonic() - started))
        except ExitError as e:
            outcomes.put((e, time.monotonic() - started))

    GenServer.cast(pid, "block, then raise")
    assert ctx.entered.wait(WAIT)
    callers = [threading.Thread(target=caller) for _ in range(3)]
    try:
        for thread in callers:
            thread.start()
        wait_until_queued(pid, 3)
    finally:
        ctx.release.set()
    for thread in callers:
        thread.join(WAIT)
    results = [outcomes.get_nowait() for _ in callers]
    for error, elapsed in results:
        assert isinstance(error, ExitError)
        assert not isinstance(error, (NoProcess, CallTimeout))
        assert str(error.reason) == "crashed after the block"
        assert elapsed < WAIT


def test_a_call_in_flight_fails_as_soon_as_the_server_is_killed() -> None:
    pid, ctx = start_probe()
    outcome: queue.Queue[Any] = queue.Queue()

    def caller() -> None:
        try:
            outcome.put(GenServer.call(pid, "block", timeout=30))
        except ExitError as e:
            outcome.put(e)

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        assert ctx.entered.wait(WAIT)
        Process.exit(pid, "kill")
        error = outcome.get(timeout=WAIT)  # while the handler is still blocked
        assert isinstance(error, ExitError)
        assert error.reason == "killed"
    finally:
        ctx.release.set()
        thread.join(WAIT)


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError), (NAN, ValueError)],
)
def test_bad_timeout_values_raise_naming_timeout(bad: Any, error: type[Exception]) -> None:
    pid, ctx = start_probe()
    try:
        with pytest.raises(error, match=r"timeout must be a positive number .*got: "):
            GenServer.call(pid, "get", timeout=bad)
        with pytest.raises(error, match=r"timeout must be a positive number .*got: "):
            GenServer.stop(pid, timeout=bad)
        assert GenServer.call(pid, "get") == 0  # nothing was sent
        assert ctx.log == ["init"]
    finally:
        GenServer.stop(pid)


# -- stop and terminate -----------------------------------------------------


def test_stop_returned_from_handle_call_replies_then_runs_terminate() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, ("add", 4))
    assert GenServer.call(pid, ("stop", "normal")) == "bye"
    assert Process.monitor_wait(pid, WAIT)
    assert terminations(ctx) == [("terminate", "normal", 4)]


def test_stop_returned_from_handle_cast_runs_terminate_with_its_reason() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, ("stop", ("shutdown", "done")))
    assert Process.monitor_wait(pid, WAIT)
    assert terminations(ctx) == [("terminate", ("shutdown", "done"), 0)]


def test_terminate_gets_the_exception_when_a_callback_raises() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, ("add", 1))
    GenServer.cast(pid, "crash")
    assert Process.monitor_wait(pid, WAIT)
    [(_, reason, state)] = terminations(ctx)
    assert isinstance(reason, RuntimeError)
    assert str(reason) == "crashed in handle_cast"
    assert state == 1


def test_a_bad_callback_return_crashes_the_server_with_a_type_error() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, "bad return")
    assert Process.monitor_wait(pid, WAIT)
    [(_, reason, _)] = terminations(ctx)
    assert isinstance(reason, TypeError)
    assert "bad callback return" in str(reason)


def test_gen_server_stop_runs_terminate_and_returns_once_the_server_exited() -> None:
    first, first_ctx = start_probe(name="stoppable")
    GenServer.stop("stoppable")
    assert not Process.alive(first)
    assert terminations(first_ctx) == [("terminate", "normal", 0)]
    second, second_ctx = start_probe()
    GenServer.stop(second, reason="custom")
    assert terminations(second_ctx) == [("terminate", "custom", 0)]


def test_gen_server_stop_of_nothing_raises_no_process() -> None:
    with pytest.raises(NoProcess):
        GenServer.stop("nobody")


def test_gen_server_stop_with_a_timeout_raises_call_timeout_if_the_server_is_busy() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, "block")
    try:
        assert ctx.entered.wait(WAIT)
        with pytest.raises(CallTimeout):
            GenServer.stop(pid, timeout=0.05)
    finally:
        ctx.release.set()
    assert Process.monitor_wait(pid, WAIT)  # the stop request was still served
    assert terminations(ctx) == [("terminate", "normal", 100)]


@pytest.mark.parametrize("trap", [True, False])
def test_terminate_runs_on_a_supervisor_shutdown_only_if_the_server_traps_exits(
    trap: bool,
) -> None:
    ctx = Ctx(trap)
    sup = Supervisor.start_link([(Probe, ctx)])
    Supervisor.stop(sup)
    assert terminations(ctx) == ([("terminate", "shutdown", 0)] if trap else [])


def test_terminate_never_runs_on_kill_even_when_trapping_exits() -> None:
    pid, ctx = start_probe(trap=True)
    GenServer.cast(pid, ("add", 5))
    assert GenServer.call(pid, "get") == 5
    Process.exit(pid, "kill")
    assert ctx.lost_states.get(timeout=WAIT) == (5, "killed")
    join_thread_of(pid)
    assert terminations(ctx) == []


def test_a_trapping_server_runs_terminate_when_its_supervisor_is_killed() -> None:
    ctx = Ctx(trap=True)
    sup = Supervisor.start_link([(Probe, ctx)])
    [(_, child, _, _)] = Supervisor.which_children(sup)
    Process.exit(sup, "kill")
    assert Process.monitor_wait(child, WAIT)
    assert terminations(ctx) == [("terminate", "killed", 0)]


# -- what a kill loses ------------------------------------------------------


def test_lost_messages_receives_what_was_still_queued_when_the_server_was_killed() -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, "block")
    try:
        assert ctx.entered.wait(WAIT)
        for k in (1, 2, 3):
            GenServer.cast(pid, ("add", k))
        Process.send(pid, "an info")
        Process.exit(pid, "kill")
        assert not Process.alive(pid)
    finally:
        ctx.release.set()
    assert ctx.lost_states.get(timeout=WAIT) == (100, "killed")  # the blocked handler's state
    join_thread_of(pid)
    assert ctx.lost == [("add", 1), ("add", 2), ("add", 3), "an info"]
    GenServer.cast(pid, ("add", 4))  # later messages to the dead pid are lost too
    assert ctx.lost[-1] == ("add", 4)
    with pytest.raises(NoProcess):
        GenServer.call(pid, "get")


@pytest.mark.parametrize(
    "request_", ["block, then continue", "block, then stop", "block, then raise"]
)
def test_a_server_killed_inside_a_callback_runs_no_other_callback_once_it_returns(
    request_: str,
) -> None:
    pid, ctx = start_probe()
    GenServer.cast(pid, request_)
    try:
        assert ctx.entered.wait(WAIT)
        Process.exit(pid, "kill")
    finally:
        ctx.release.set()
    assert ctx.lost_states.get(timeout=WAIT) == (100 if "raise" not in request_ else 0, "killed")
    join_thread_of(pid)
    assert ctx.log == ["init"]  # neither handle_continue nor terminate ran


class CastReplier(GenServer):
    """Return Reply from handle_cast: a bad return, as OTP says."""

    def handle_cast(self, request: Any, state: Any) -> Any:
        return Reply("nobody asked", state)


def test_reply_returned_from_handle_cast_is_a_bad_return_that_stops_the_server() -> None:
    pid = CastReplier.start_link()
    ref = Process.monitor(pid)
    GenServer.cast(pid, "hello")
    down = ref.wait(WAIT)
    assert down is not None and isinstance(down[4], TypeError)
