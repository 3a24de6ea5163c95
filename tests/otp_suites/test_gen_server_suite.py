"""Cases of OTP's gen_server_SUITE.erl ported to pytest, and the GenServer result timeouts.

Each test names its source: lib/stdlib/test/gen_server_SUITE.erl, case after the ``__``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from summarizer.otp import (
    ExitError,
    GenServer,
    Ignore,
    NoProcess,
    NoReply,
    Ok,
    Process,
    Reply,
    StartError,
    Stop,
)

from .helpers import WAIT

pytestmark = pytest.mark.usefixtures("no_leaks")


class Suite(GenServer):
    """The callback module of gen_server_SUITE.erl, in the parts the ported cases use."""

    def init(self, arg: Any) -> Ok | Ignore | Stop:
        if arg == "ignore":
            return Ignore()
        if arg == "stop":
            return Stop("stopped", None)
        self.timed_out = arg if isinstance(arg, threading.Event) else threading.Event()
        return Ok({"within": False})

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply | Stop:
        if request == "started_p":
            return Reply("ok", state)
        if isinstance(request, tuple) and request[0] == "call_within":
            state["within"] = True
            return Reply("ok", state, timeout=request[1])
        if request == "next_call":
            within, state["within"] = state["within"], False
            return Reply(within, state)
        if request == "stop":
            return Stop("stopped", state, reply="ok")
        if request == "stop_shutdown_reason":
            return Stop(("shutdown", "stop_reason"), state)
        raise ValueError(request)

    def handle_cast(self, request: Any, state: dict[str, Any]) -> NoReply:
        if isinstance(request, tuple) and request[0] == "cast_within":
            state["within"] = True
            return NoReply(state, timeout=request[1])
        return NoReply(state)

    def handle_info(self, msg: Any, state: dict[str, Any]) -> NoReply:
        if msg == "timeout":
            state["within"] = False
            self.timed_out.set()
        return NoReply(state)


# gen_server_SUITE.erl, start: "anonymous with ignore" and "anonymous with stop"
def test_gen_server_SUITE__start_ignore_and_stop() -> None:
    assert Suite.start_link("ignore") is None
    with pytest.raises(StartError) as info:
        Suite.start_link("stop")
    assert info.value.reason == "stopped"


def test_an_ignoring_init_frees_its_name_and_leaves_no_thread() -> None:
    assert Suite.start_link("ignore", name="my_test_name") is None
    assert Process.whereis("my_test_name") is None


# gen_server_SUITE.erl, stop1: anonymous, reason normal; a second stop is noproc
def test_gen_server_SUITE__stop1() -> None:
    pid = Suite.start_link()
    GenServer.stop(pid)
    assert not Process.alive(pid)
    with pytest.raises(NoProcess):
        GenServer.stop(pid)


# gen_server_SUITE.erl, stop2: anonymous, another reason
def test_gen_server_SUITE__stop2() -> None:
    pid = Suite.start_link()
    GenServer.stop(pid, "other_reason", None)
    assert not Process.alive(pid)


# gen_server_SUITE.erl, stop3: an invalid timeout leaves the server running
def test_gen_server_SUITE__stop3() -> None:
    pid = Suite.start_link()
    with pytest.raises(TypeError, match="timeout must be"):
        GenServer.stop(pid, "other_reason", "invalid_timeout")  # type: ignore[arg-type]
    assert Process.alive(pid)
    GenServer.stop(pid)


# gen_server_SUITE.erl, stop4: by registered name
def test_gen_server_SUITE__stop4() -> None:
    pid = Suite.start_link(name="to_stop")
    GenServer.stop("to_stop")
    assert not Process.alive(pid)
    with pytest.raises(NoProcess):
        GenServer.stop("to_stop")


# gen_server_SUITE.erl, crash: a call whose server stops with {shutdown, Reason} fails with
# that reason, and a linked process that traps exits gets it as an EXIT
def test_gen_server_SUITE__crash() -> None:
    exits: list[Any] = []
    got = threading.Event()

    class Parent(GenServer):
        def init(self, arg: Any) -> Ok:
            Process.flag("trap_exit", True)
            return Ok(Suite.start_link())

        def handle_call(self, request: Any, from_: Any, child: Any) -> Reply:
            return Reply(child, child)

        def handle_info(self, msg: Any, state: Any) -> NoReply:
            exits.append(msg)
            got.set()
            return NoReply(state)

    parent = Parent.start_link()
    child = GenServer.call(parent, "child")
    with pytest.raises(ExitError) as info:
        GenServer.call(child, "stop_shutdown_reason")
    assert info.value.reason == ("shutdown", "stop_reason")
    assert got.wait(WAIT)
    assert exits == [("EXIT", child, ("shutdown", "stop_reason"))]
    GenServer.stop(parent)


# gen_server_SUITE.erl, call: {call_within, T} answers {reply, ok, State, T}; a call in
# time sees it, and after T the server's handle_info(timeout) has reset it
def test_gen_server_SUITE__call_within() -> None:
    timed_out = threading.Event()
    pid = Suite.start_link(timed_out)
    try:
        assert GenServer.call(pid, ("call_within", WAIT)) == "ok"
        assert GenServer.call(pid, "next_call") is True  # a message cancels the timeout
        assert not timed_out.is_set()
        assert GenServer.call(pid, ("call_within", 0.05)) == "ok"
        assert timed_out.wait(WAIT)
        assert GenServer.call(pid, "next_call") is False
    finally:
        GenServer.stop(pid)


def test_a_noreply_timeout_delivers_timeout_to_handle_info() -> None:
    timed_out = threading.Event()
    pid = Suite.start_link(timed_out)
    try:
        GenServer.cast(pid, ("cast_within", 0))  # 0: at once, if no message is queued
        assert timed_out.wait(WAIT)
        assert GenServer.call(pid, "next_call") is False
    finally:
        GenServer.stop(pid)


def test_an_ok_timeout_applies_from_init() -> None:
    fired = threading.Event()

    class Idle(GenServer):
        def init(self, arg: Any) -> Ok:
            return Ok(None, timeout=0.01)

        def handle_info(self, msg: Any, state: Any) -> NoReply:
            if msg == "timeout":
                fired.set()
            return NoReply(state)

    pid = Idle.start_link()
    try:
        assert fired.wait(WAIT)
    finally:
        GenServer.stop(pid)


def test_a_bad_timeout_crashes_the_server_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="timeout must be seconds >= 0 or None, got: '1'"):
        NoReply(None, timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="continue_ or timeout, not both"):
        NoReply(None, continue_="more", timeout=1)

    class Bad(GenServer):
        def handle_cast(self, request: Any, state: Any) -> NoReply:
            return NoReply(state, timeout=-1)

    pid = Bad.start_link()
    ref = Process.monitor(pid)
    GenServer.cast(pid, "go")
    down = ref.wait(WAIT)
    assert down is not None
    assert isinstance(down[4], ValueError)
    assert "timeout must be seconds >= 0 or None, got: -1" in str(down[4])


def test_stop_raises_exit_error_with_the_terminate_crash() -> None:
    class Crashes(GenServer):
        def terminate(self, reason: Any, state: Any) -> None:
            raise RuntimeError("in terminate")

    pid = Crashes.start_link()
    with pytest.raises(ExitError, match="in terminate"):
        GenServer.stop(pid)


def test_what_is_no_message_does_not_restart_a_result_timeout() -> None:
    # A get_state (or a DOWN flushed by demonitor) is no message the server sees:
    # in OTP it cannot delay "timeout", so polling the state must not either.
    fired = threading.Event()

    class Quiet(GenServer):
        def init(self, arg: Any) -> Ok:
            return Ok(None, timeout=0.2)

        def handle_info(self, msg: Any, state: Any) -> NoReply:
            if msg == "timeout":
                fired.set()
            return NoReply(state)

    pid = Quiet.start_link()
    try:
        deadline = time.monotonic() + WAIT
        while not fired.is_set() and time.monotonic() < deadline:
            GenServer.get_state(pid)  # a round-trip a turn: far more often than every 0.2 s
        assert fired.is_set(), "the polls kept restarting the timeout"
    finally:
        GenServer.stop(pid)
