"""GenServer: a process that keeps state and answers calls, casts and infos.

Subclass it and implement the callbacks you need, as with ``use GenServer``::

    class Stack(GenServer):
        def init(self, elements):
            return Ok(list(elements))

        def handle_call(self, request, from_, state):
            if request == "pop":
                return Reply(state[0], state[1:])

        def handle_cast(self, request, state):
            _push, element = request
            return NoReply([element, *state])


    pid = Stack.start_link(["hello"], name="stack")
    GenServer.call(pid, "pop")  # "hello"
    GenServer.cast("stack", ("push", "world"))
    GenServer.call("stack", "pop")  # "world"
    GenServer.stop("stack")

The server's state lives in its own thread and only the callbacks touch it:

* ``init(arg)`` returns ``Ok(state)`` or ``Ok(state, continue_=term)``; ``start_link``
  returns once ``init`` has. A continue runs ``handle_continue(term, state)``
  before any message in the mailbox, even one sent during ``init``. ``init``
  may return ``Ignore()``: the process exits quietly and ``start_link``
  returns None (a supervisor keeps such a child as not running).
* ``handle_call(request, from_, state)`` returns ``Reply(value, state)``,
  ``NoReply(state)`` (answer later with ``GenServer.reply(from_, value)``) or
  ``Stop(reason, state, reply=value)``.
* ``handle_cast``, ``handle_info`` and ``handle_continue`` return
  ``NoReply(state, continue_=None)`` or ``Stop(reason, state)``.
* ``terminate(reason, state)`` runs when a callback raises (reason: the
  exception) or returns ``Stop``, on ``GenServer.stop``, and on a shutdown from
  the supervisor if the server traps exits (``Process.flag("trap_exit", True)``
  in ``init``). It never runs on ``"kill"``.
* ``Ok``, ``Reply`` and ``NoReply`` take ``timeout=seconds``: if no message
  arrives within that time, ``handle_info("timeout", state)`` runs, as OTP's
  ``{:noreply, state, timeout}``. Any message cancels it; a result takes a
  timeout or a continue, not both (as OTP's tuples)::

      def handle_cast(self, request, state):
          return NoReply(state, timeout=30.0)  # idle for 30 s: "timeout"

``call`` waits ``timeout`` seconds (default 5.0; None waits forever) and raises
`CallTimeout`; the server keeps running and the late reply is dropped. A call
to nothing raises `NoProcess`; a call whose server dies first raises
`ExitError` with the server's reason. ``cast`` never fails, as in OTP: a cast to
nothing is dropped (and reported to that server's ``lost_messages`` hook when
the server is known but dead). ``stop`` raises `ExitError` if the server ended
with another reason than the one asked for (its ``terminate`` raised, say).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty
from typing import Any, ClassVar, TypeVar

from .child_spec import ChildSpec, Restart, Shutdown, validate_name
from .errors import CallTimeout, ExitError, NoProcess, OtpError, StartError
from .mailbox import take_place
from .process import (
    Envelope,
    Pid,
    Proc,
    current,
    is_normal,
    register,
    resolve,
    set_current,
)
from .validate import brief, check_timeout

__all__ = ["From", "GenServer", "Ignore", "NoReply", "Ok", "Reply", "Stop"]

log = logging.getLogger("summarizer")
S = TypeVar("S", bound="GenServer")
_NOTHING: Any = object()


class Timeout:
    """A result's ``timeout``, carried in its ``continue_`` slot (OTP allows one or the other).

    So a result without a timeout costs the receive loop nothing more.
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: Any) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Timeout({self.seconds!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and other.seconds == self.seconds

    __hash__ = None  # type: ignore[assignment]


def _timed(continue_: Any, timeout: Any) -> Timeout:
    """Return ``timeout`` as the value of a result's ``continue_`` slot, checked."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be seconds >= 0 or None, got: {brief(timeout)}")
    if not timeout >= 0:  # NaN too
        raise ValueError(f"timeout must be seconds >= 0 or None, got: {brief(timeout)}")
    if continue_ is not None:
        raise ValueError(f"a result takes continue_ or timeout, not both, got: {brief(continue_)}")
    return Timeout(timeout)


@dataclass(slots=True, init=False)
class Ok:
    """Return from ``init``: the first state, and maybe a continue or a timeout."""

    state: Any
    continue_: Any = None

    def __init__(self, state: Any, continue_: Any = None, timeout: float | None = None) -> None:
        self.state = state
        self.continue_ = continue_
        if timeout is not None:  # a test, not a store: results without one stay cheap
            self.continue_ = _timed(continue_, timeout)


@dataclass(slots=True)
class Ignore:
    """Return from ``init``: start nothing; ``start_link`` returns None."""


@dataclass(slots=True, init=False)
class Reply:
    """Return from ``handle_call``: answer ``value`` and keep ``state``."""

    value: Any
    state: Any
    continue_: Any = None

    def __init__(
        self, value: Any, state: Any, continue_: Any = None, timeout: float | None = None
    ) -> None:
        self.value = value
        self.state = state
        self.continue_ = continue_
        if timeout is not None:  # a test, not a store: results without one stay cheap
            self.continue_ = _timed(continue_, timeout)


@dataclass(slots=True, init=False)
class NoReply:
    """Return from a callback: keep ``state``, answer nothing now."""

    state: Any
    continue_: Any = None

    def __init__(self, state: Any, continue_: Any = None, timeout: float | None = None) -> None:
        self.state = state
        self.continue_ = continue_
        if timeout is not None:  # a test, not a store: results without one stay cheap
            self.continue_ = _timed(continue_, timeout)


@dataclass(slots=True)
class Stop:
    """Return from a callback: stop with ``reason`` (answering ``reply`` to a call)."""

    reason: Any
    state: Any
    reply: Any = _NOTHING


class From:
    """Hold the reply slot of one call; the caller waits on it."""

    __slots__ = ("_lock", "_once", "error", "proc", "value")

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self._lock = threading.Lock()
        self._lock.acquire()
        self._once = itertools.count()
        self.value: Any = None
        self.error: Any = None

    def __repr__(self) -> str:
        return f"#From<{self.proc.pid}>"

    def reply(self, value: Any) -> bool:
        """Deliver ``value`` to the caller; return False if it was answered or gave up."""
        if next(self._once) == 0:
            self.proc.calls.discard(self)
            self.value = value
            self._lock.release()
            return True
        return False

    def fail(self, reason: Any) -> bool:
        """Fail the call with ``reason``; return False if it was answered already."""
        if next(self._once) == 0:
            self.error = reason
            self._lock.release()
            return True
        return False

    def wait(self, timeout: float | None) -> bool:
        """Wait for the answer; return False on timeout."""
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)


class GenServer:
    """Base class of servers: override the callbacks, start with ``start_link``."""

    #: Child spec defaults, as ``use GenServer, restart: ..., shutdown: ...``.
    restart: ClassVar[Restart] = "permanent"
    shutdown: ClassVar[Shutdown] = 5.0

    # -- callbacks ---------------------------------------------------------

    def init(self, arg: Any) -> Ok | Ignore | Stop:
        """Return the first state; the default keeps ``arg``."""
        return Ok(arg)

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply | NoReply | Stop:
        """Answer a call; the default raises, as Elixir's does."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_call for {request!r}")

    def handle_cast(self, request: Any, state: Any) -> NoReply | Stop:
        """Handle a cast; the default raises, as Elixir's does."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_cast for {request!r}")

    def handle_info(self, msg: Any, state: Any) -> NoReply | Stop:
        """Handle any other message; the default logs and drops it."""
        log.warning("%s received unexpected message in handle_info: %r", type(self).__name__, msg)
        return NoReply(state)

    def handle_continue(self, term: Any, state: Any) -> NoReply | Stop:
        """Continue work asked for by a callback's ``continue_``."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_continue for {term!r}")

    def terminate(self, reason: Any, state: Any) -> None:
        """Clean up before the process exits; not run on ``"kill"``."""

    # -- hooks for counting what OTP drops silently -------------------------

    def lost_messages(self, msgs: list[Any], reason: Any) -> None:
        """Account for casts and infos that never reached a handler (any thread)."""

    def lost_state(self, state: Any, reason: Any) -> None:
        """Account for state dropped by a kill, in the old thread, after its handler."""

    # -- client API --------------------------------------------------------

    @classmethod
    def child_spec(cls, arg: Any = None) -> ChildSpec:
        """Return the spec a supervisor uses to start this server with ``arg``."""
        return ChildSpec(
            id=cls.__name__,
            start=(cls.start_link, (arg,)),
            restart=cls.restart,
            shutdown=cls.shutdown,
            modules=[cls.__name__],
        )

    @classmethod
    def start_link(cls, arg: Any = None, name: str | None = None) -> Pid | None:
        """Start the server linked to the calling process; return once ``init`` has.

        Return its Pid, or None if ``init`` returned `Ignore`.
        """
        return start(cls, arg, name)

    @staticmethod
    def call(server: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """Send ``request`` and wait for the reply."""
        timeout = check_timeout(timeout)
        return _request(server, Envelope("call", request), timeout)

    @staticmethod
    def cast(server: Any, request: Any) -> None:
        """Send ``request`` without waiting; never fails, as in OTP."""
        proc = server._proc if server.__class__ is Pid else resolve(server)
        if proc is not None:
            place = proc.place
            if place is None:
                proc.put(request)
            else:  # counted, bounded and handed off by the supervisor's mailbox
                place.cast_to(proc, request)

    @staticmethod
    def reply(from_: From, value: Any) -> bool:
        """Answer a call that ``handle_call`` left with ``NoReply``.

        Return whether the caller got it: False if it had given up (its call timed
        out, or this server was killed meanwhile), so a server can keep a value no
        caller will ever see. OTP's ``reply`` returns ``:ok`` either way.
        """
        return from_.reply(value)

    @staticmethod
    def get_state(server: Any, timeout: float | None = 5.0) -> Any:
        """Return the server's state, as ``:sys.get_state/1``: for debugging and books.

        It is served by the receive loop in its turn, without a callback: once it
        returns, every message queued before it has been handled.
        """
        timeout = check_timeout(timeout)
        return _request(server, Envelope("get_state"), timeout)

    @staticmethod
    def stop(server: Any, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the server with ``reason``, running ``terminate``; wait until it exits.

        Raise `ExitError` if it exited with another reason (``terminate`` raised).
        """
        timeout = check_timeout(timeout)
        proc = resolve(server)
        if proc is None or not proc.alive:
            raise NoProcess(server)
        if proc is current():
            raise OtpError(f"process {proc.pid!r} attempted to stop itself with stop/1")
        deadline = None if timeout is None else time.monotonic() + timeout
        proc.put(Envelope("stop", reason))
        if not proc.exited.wait(timeout):
            raise CallTimeout(server, timeout or 0.0)
        join(proc, None if deadline is None else max(0.0, deadline - time.monotonic()))
        if proc.reason is not reason and proc.reason != reason:  # as proc_lib:stop/3
            raise ExitError(proc.reason, f"{server!r} exited with {proc.reason!r}, not {reason!r}")


def _request(server: Any, envelope: Envelope, timeout: float | None) -> Any:
    """Send a call-like ``envelope`` with a reply slot; wait for the answer."""
    proc = resolve(server)
    if proc is None or not proc.alive:
        raise NoProcess(server)
    if proc is current():
        raise OtpError(f"process {proc.pid!r} attempted to call itself")
    slot = From(proc)
    envelope.b = slot
    proc.calls.add(slot)
    proc.put(envelope)
    if not slot.wait(timeout):
        proc.calls.discard(slot)
        if slot.fail("timeout"):
            raise CallTimeout(server, timeout or 0.0)
        slot.wait(None)  # answered just as we gave up: take it, never swallow a reply
    if slot.error is not None:
        if slot.error == "noproc":
            raise NoProcess(server)
        raise ExitError(slot.error)
    return slot.value


def join(proc: Proc, timeout: float | None = None) -> None:
    """Wait for an exited process's thread to end (not for a killed, busy one)."""
    thread = proc.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(0.1 if proc.killed and timeout is None else timeout)


def start(cls: type[GenServer], arg: Any, name: str | None, *, link: bool = True) -> Pid | None:
    """Start a process running ``cls``; raise StartError if its ``init`` fails.

    Return None if its ``init`` returned `Ignore`.
    """
    if not (isinstance(cls, type) and issubclass(cls, GenServer)):
        raise TypeError(f"cls must be a GenServer subclass, got: {brief(cls)}")
    validate_name(name)
    proc = Proc(name, current() if link else None)
    register(proc)
    proc.link()
    server = cls()
    proc.on_lost = server.lost_messages
    place = take_place()
    if place is not None:  # a supervisor's mailbox: its orphans come first
        place.attach(proc)
    started: list[Any] = []
    ready = threading.Event()
    thread = threading.Thread(
        target=_run,
        args=(server, proc, arg, started, ready),
        name=f"{name or cls.__name__}-{proc.pid!r}",
        daemon=True,
    )
    proc.thread = thread
    thread.start()
    ready.wait()
    if started:
        thread.join()
        error = started[0]
        if error is _IGNORED:
            return None
        if isinstance(error, StartError):
            raise error
        cause = error if isinstance(error, BaseException) else None  # Stop(reason) from init
        raise StartError(error, f"{cls.__name__}.init failed: {error!r}") from cause
    return proc.pid


def _run(
    server: GenServer, proc: Proc, arg: Any, started: list[Any], ready: threading.Event
) -> None:
    set_current(proc)
    try:
        result = server.init(arg)
    except BaseException as e:
        result = Stop(e, None)
    if result.__class__ is Ignore:  # as OTP: exit normally, no EXIT to the parent
        proc.unlink()
        proc.die("normal")
        started.append(_IGNORED)
        ready.set()
        return
    if result.__class__ is not Ok:
        reason = (
            result.reason
            if result.__class__ is Stop
            else ValueError(f"bad init return: {result!r}")
        )
        proc.unlink()  # start_link reports the failure; no EXIT to the parent
        proc.die(reason)
        started.append(reason)
        ready.set()
        return
    ready.set()
    _loop(server, proc, result.state, result.continue_)


def _loop(server: GenServer, proc: Proc, state: Any, cont: Any) -> None:
    """Serve the mailbox until a callback stops, raises, or the process is killed."""
    get = proc.mailbox.get
    handle_cast = server.handle_cast
    if proc.room is not None:  # a bounded mailbox: wake waiting senders as it drains
        handle_cast = _waking(handle_cast, proc.room.taken)
    result: Any = None
    try:
        while True:
            while cont is not None and proc.alive:
                if cont.__class__ is Timeout:  # a result asked for a timeout: not the hot path
                    result = _receive_within(server, proc, get, handle_cast, cont.seconds, state)
                else:
                    result = server.handle_continue(cont, state)
                if result.__class__ is not NoReply:
                    break
                state, cont = result.state, result.continue_
            else:
                msg = get()  # never blocks once killed: the mailbox holds KILL
                if not proc.alive:  # killed (maybe while a callback ran): run no other
                    proc.discard([msg], proc.reason)  # taken from a dead mailbox: report it
                    break
                if msg.__class__ is not Envelope:
                    result = handle_cast(msg, state)
                else:
                    result = _handle_envelope(server, proc, msg, state)
                    if result is None:  # nothing to handle
                        continue
                cls = result.__class__
                if cls is NoReply or (
                    cls is Reply and msg.__class__ is Envelope and msg.kind == "call"
                ):  # Reply from a cast or an info is a bad return, as in OTP
                    state, cont = result.state, result.continue_
                    continue
            if not proc.alive:  # killed while the callback ran: no terminate
                state = getattr(result, "state", state)  # type: ignore[unreachable]
                break
            if result.__class__ is Stop:
                _terminate(server, proc, result.reason, result.state)
                return
            raise TypeError(f"bad callback return: {result!r}")
    except BaseException as e:
        if proc.alive:
            log.error("%s %r terminating: %r", type(server).__name__, proc.pid, e, exc_info=e)
            _terminate(server, proc, e, state)
            return
    _killed(server, proc, state)


def _waking(handle_cast: Callable[[Any, Any], Any], taken: Callable[[], None]) -> Any:
    """Return ``handle_cast`` that first lets a bounded mailbox wake its waiting senders."""

    def bounded(msg: Any, state: Any) -> Any:
        taken()
        return handle_cast(msg, state)

    return bounded


def _killed(server: GenServer, proc: Proc, state: Any, *, terminated: bool = False) -> None:
    """Drop a killed server's state and mailbox, as on the BEAM, and account for both.

    After ``terminate`` ran (``terminated``), the state was the callback's to hand
    over, so the place counts only the mailbox.
    """
    server.lost_state(state, proc.reason)
    if proc.place is not None and not terminated:
        proc.place.lost_state(state, proc.reason)
    proc.drain(proc.reason)


def _handle_envelope(server: GenServer, proc: Proc, msg: Envelope, state: Any) -> Any:
    """Run the callback for a message that is not a cast; return its result, or None."""
    kind = msg.kind
    if kind == "call":
        from_ = msg.b
        result = server.handle_call(msg.a, from_, state)
        if result.__class__ is Reply:
            from_.reply(result.value)
        elif result.__class__ is Stop and result.reply is not _NOTHING:
            from_.reply(result.reply)
        return result
    if kind == "info":
        return server.handle_info(msg.a, state)
    if kind == "down":  # a monitor's DOWN, unless demonitored with flush
        return None if msg.b.flushed else server.handle_info(msg.a, state)
    if kind == "exit":
        parent = proc.parent
        if parent is not None and msg.a == parent.pid:
            return Stop(msg.b, state)
        return server.handle_info(("EXIT", msg.a, msg.b), state)
    if kind == "stop":
        return Stop(msg.a, state)
    if kind == "get_state":
        msg.b.reply(state)
    return None  # or "kill", left by a death we already handled


def _receive_within(
    server: GenServer,
    proc: Proc,
    get: Callable[..., Any],
    handle_cast: Callable[[Any, Any], Any],
    seconds: float,
    state: Any,
) -> Any:
    """Handle the next message, or ``"timeout"`` if none comes within ``seconds``.

    Return the callback's result; a Reply to a call comes back as NoReply (the
    caller has its answer). Return None if the process was killed meanwhile.
    """
    forever = seconds > threading.TIMEOUT_MAX
    deadline = time.monotonic() + (0.0 if forever else seconds)
    while True:  # what is no message (get_state, a flushed DOWN) does not restart the clock
        try:
            msg = get() if forever else get(True, max(0.0, deadline - time.monotonic()))
        except Empty:
            return server.handle_info("timeout", state)
        if not proc.alive:
            proc.discard([msg], proc.reason)
            return None
        if msg.__class__ is not Envelope:
            return handle_cast(msg, state)
        result = _handle_envelope(server, proc, msg, state)
        if result is None:  # a flushed DOWN, get_state or a stale KILL: keep waiting
            continue
        if result.__class__ is Reply and msg.kind == "call":
            return NoReply(result.state, result.continue_)
        return result


_IGNORED: Any = object()  # what start() learns from an init that returned Ignore


def _terminate(server: GenServer, proc: Proc, reason: Any, state: Any) -> None:
    try:
        server.terminate(reason, state)
    except BaseException as e:
        log.error("%s %r crashed in terminate: %r", type(server).__name__, proc.pid, e, exc_info=e)
        reason = e
    if not is_normal(reason) and not isinstance(reason, BaseException):
        log.error("%s %r terminating: %r", type(server).__name__, proc.pid, reason)
    if not proc.die(reason):  # killed while terminating: account like any kill
        _killed(server, proc, state, terminated=True)
