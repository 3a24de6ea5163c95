"""Trace: record the messages between processes, as ``:seq_trace`` does on the BEAM.

Inside a ``with trace()`` block every message any process sends is noted, in order::

    with trace() as t:
        pid = Stack.start_link(["hello"])
        GenServer.cast(pid, ("push", "world"))
        GenServer.call(pid, "pop")
        GenServer.stop(pid)
    [m.kind for m in t.messages]
    # ['start', 'cast', 'call', 'reply', 'stop']

Kinds. ``cast`` (a bare request), ``call`` and its ``reply``, ``info`` (``Process.send``
and timers: a timer's sender is ``"timer"``), ``exit`` (an exit signal: a link
reporting a death, or ``Process.exit``), ``stop`` (``GenServer.stop``) and ``start``
(a process started another). A sender or receiver is a `Pid`, or for a plain thread
(a notebook cell, a timer) the thread's name. `Trace.label` names a participant as a
diagram shows it: its registered name, else its class, and its pid.
``summarizer.widgets.mermaid_seq_trace`` draws a trace as a Mermaid sequence diagram,
the counterpart of ``Kino.Process.render_seq_trace``.

Cost. Nothing, when no trace is active: the runtime's code is not touched. Entering
the first active trace swaps a recording version in for ``Proc.put``, ``From.reply``,
the exit signal and ``start``; leaving the last one puts the originals back. While a
trace is active every message pays a Python call more, so trace a few messages, not a
benchmark: a trace stops recording after ``limit`` messages (default 1,000) and counts
the rest in ``dropped``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from . import dynamic_supervisor, gen_server, process, supervisor
from .gen_server import From
from .process import Envelope, Pid, Proc, current
from .validate import positive_int

__all__ = ["Message", "Trace", "trace"]

Kind = Literal["cast", "call", "reply", "info", "exit", "stop", "start"]
Participant = Pid | str


@dataclass(frozen=True, slots=True)
class Message:
    """Note one message: its kind, who sent it, who received it, and the term."""

    seq: int
    kind: Kind
    sender: Participant
    receiver: Participant
    term: Any
    at: float  # time.monotonic() when it was sent


class Trace:
    """Hold the messages recorded inside one ``with trace()`` block."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.messages: list[Message] = []
        self.dropped = 0
        self._labels: dict[Pid, str] = {}

    def label(self, who: Participant) -> str:
        """Return how a diagram names ``who``: its name (or class) and its pid."""
        if isinstance(who, Pid):
            return f"{self._labels.get(who, 'process')} {who!r}"
        return who

    def participants(self) -> list[Participant]:
        """Return every sender and receiver, in order of first appearance."""
        seen: dict[Participant, None] = {}
        for m in self.messages:
            seen.setdefault(m.sender, None)
            seen.setdefault(m.receiver, None)
        return list(seen)

    def _note(self, kind: Kind, sender: Any, receiver: Any, term: Any) -> None:
        if len(self.messages) >= self.limit:
            self.dropped += 1
            return
        self.messages.append(
            Message(
                next(_seq), kind, _who(sender, self), _who(receiver, self), term, time.monotonic()
            )
        )

    def __repr__(self) -> str:
        return f"Trace({len(self.messages)} messages, {self.dropped} dropped)"


@contextmanager
def trace(limit: int = 1000) -> Iterator[Trace]:
    """Record the messages sent between processes until the block ends."""
    positive_int("limit", limit)
    t = Trace(limit)
    with _lock:
        if not _active:
            _install()
        _active.append(t)
    try:
        yield t
    finally:
        with _lock:
            _active.remove(t)
            if not _active:
                _uninstall()


# -- recording ------------------------------------------------------------------

_lock = threading.Lock()  # guards _active and the swapping of the originals
_active: list[Trace] = []
_seq = itertools.count()
_calls: dict[int, tuple[From, Any]] = {}  # id(slot) -> (slot, its caller), while traced
_originals: dict[tuple[Any, str], Any] = {}


def _who(x: Any, t: Trace) -> Participant:
    """Return the participant ``x`` stands for (a Proc, a Pid, None: this thread)."""
    if x.__class__ is Proc:
        x = x.pid
    if x.__class__ is Pid:
        if x not in t._labels:
            proc = x._proc
            thread = proc.thread.name if proc.thread is not None else "process"
            t._labels[x] = proc.name or thread.split("-#PID", 1)[0]
        return x
    if isinstance(x, str):
        return x
    return _thread_name()


def _thread_name() -> str:
    """Return the calling plain thread's name; ``"timer"`` for the timer thread."""
    name = threading.current_thread().name
    return "timer" if name == "summarizer-timers" else name


def _note(kind: Kind, sender: Any, receiver: Any, term: Any) -> None:
    for t in list(_active):
        t._note(kind, sender, receiver, term)


def _put(original: Callable[[Proc, Any], bool]) -> Callable[[Proc, Any], bool]:
    def put(self: Proc, msg: Any) -> bool:
        if msg.__class__ is not Envelope:
            _note("cast", current(), self, msg)
        elif msg.kind == "call":
            caller = current() or _thread_name()  # the reply comes from another thread
            _calls[id(msg.b)] = (msg.b, caller)
            _note("call", caller, self, msg.a)
        elif msg.kind == "info":
            _note("info", current(), self, msg.a)
        elif msg.kind == "stop":
            _note("stop", current(), self, msg.a)
        # "exit" envelopes are noted by _signal, which sends them
        return original(self, msg)

    return put


def _reply(original: Callable[[From, Any], bool]) -> Callable[[From, Any], bool]:
    def reply(self: From, value: Any) -> bool:
        slot_caller = _calls.pop(id(self), None)
        if slot_caller is not None and slot_caller[0] is self:
            _note("reply", current() or self.proc, slot_caller[1], value)
        return original(self, value)  # whether the caller got it: callers act on it

    return reply


def _signal(original: Callable[..., None]) -> Callable[..., None]:
    def signal(target: Proc, sender: Pid | None, reason: Any) -> None:
        _note("exit", sender, target, reason)
        original(target, sender, reason)

    return signal


def _start(original: Callable[..., Pid]) -> Callable[..., Pid]:
    def start(cls: Any, arg: Any, name: str | None, **options: Any) -> Pid:
        parent = current()
        pid = original(cls, arg, name, **options)
        _note("start", parent, pid, getattr(cls, "__name__", cls))
        return pid

    return start


_PATCHES: tuple[tuple[Any, str, Callable[[Any], Any]], ...] = (
    (Proc, "put", _put),
    (From, "reply", _reply),
    (process, "signal", _signal),
    (supervisor, "signal", _signal),
    (dynamic_supervisor, "signal", _signal),
    (gen_server, "start", _start),
    (supervisor, "start", _start),  # PartitionSupervisor starts through supervisor's
)


def _install() -> None:
    for owner, attr, wrap in _PATCHES:
        original = owner.__dict__[attr]
        _originals[owner, attr] = original
        setattr(owner, attr, wrap(original))


def _uninstall() -> None:
    for owner, attr, _wrap in _PATCHES:
        setattr(owner, attr, _originals.pop((owner, attr)))
    _calls.clear()
