"""Processes: a Pid, a mailbox and a thread, addressed by pid or registered name.

A process is one named OS thread that owns its state and reads its own mailbox.
Everything that crosses threads is a message::

    pid = Echo.start_link(name="echo")  # a GenServer is a process
    Process.alive(pid)  # True
    Process.send("echo", "hello")  # delivered to handle_info
    ref = Process.send_after(pid, "tick", 0.5)
    Process.cancel_timer(ref)  # 0.49...: seconds that were left
    Process.exit(pid, "kill")  # untrappable: dead at once

As on the BEAM:

* a pid reads ``#PID<0.12.0>`` and is never reused;
* a name maps to at most one live process; it is freed when the process exits;
* a process's mailbox dies with it: messages still queued are dropped (and
  reported to the server's ``lost_messages`` hook, or, for a child whose spec
  has a `Mailbox`, counted or handed to its successor: see `summarizer.otp.mailbox`);
* ``send_after`` never delivers at once, and a timer aimed at a dead process is
  dropped. One shared timer thread serves every timer; it exits when idle;
* links carry exits both ways: when a process ends, the process that started
  it (its parent) and the processes it started get ``("EXIT", pid, reason)``
  if they trap exits, or die with it if the reason is abnormal (a killed
  process's links get ``"killed"``). ``Process.link(pid)`` and
  ``Process.unlink(pid)``, from inside a process, add and remove links;
* a monitor is one-way and never kills: ``ref = Process.monitor(pid)`` delivers
  ``("DOWN", ref, "process", pid, reason)`` to ``handle_info`` once, when
  ``pid`` ends (reason ``"noproc"`` if it was not running).
  ``Process.demonitor(ref, flush=True)`` cancels it and drops a DOWN already
  queued.

A plain thread (the notebook's) has no mailbox, so it waits on the ref itself::

    ref = Process.monitor(pid)
    Process.exit(pid, "shutdown")
    ref.wait(5.0)  # ("DOWN", ref, "process", pid, "shutdown"), or None on timeout

Python cannot stop a thread. ``Process.exit(pid, "kill")`` therefore marks the
process dead at once (its name is freed, its parent is told, its timers are
dropped, calls in flight fail) and wakes its thread; if that thread is busy
inside a handler it finishes that handler, then sees it was killed and drops
its state and mailbox without running any further callback.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from .errors import AlreadyStarted, NoProcess
from .validate import brief, non_negative_number

if TYPE_CHECKING:
    from .mailbox import Place

__all__ = ["MonitorRef", "Pid", "Process", "TimerRef"]

log = logging.getLogger("summarizer")

NORMAL_REASONS = ("normal", "shutdown")


def is_normal(reason: Any) -> bool:
    """Return whether an exit ``reason`` is normal: normal, shutdown or (shutdown, _)."""
    return reason in NORMAL_REASONS or (
        isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"
    )


class Pid:
    """Identify one process for its whole life; never reused."""

    __slots__ = ("_proc", "n")

    def __init__(self, n: int, proc: Proc) -> None:
        self.n = n
        self._proc = proc

    def __repr__(self) -> str:
        return f"#PID<0.{self.n}.0>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pid) and other.n == self.n

    def __hash__(self) -> int:
        return self.n

    def __lt__(self, other: Pid) -> bool:
        return self.n < other.n


class Envelope:
    """Wrap every message that is not a cast: calls, infos, exits, stops.

    Casts travel bare (the request itself) so the hot path allocates nothing.
    """

    __slots__ = ("a", "b", "kind")

    def __init__(self, kind: str, a: Any = None, b: Any = None) -> None:
        self.kind = kind
        self.a = a
        self.b = b

    def __repr__(self) -> str:
        return f"Envelope({self.kind!r}, {self.a!r}, {self.b!r})"


KILL = Envelope("kill")  # wakes a killed thread that is blocked on its mailbox


class Proc:
    """Hold one process's runtime record: mailbox, liveness, links, name."""

    __slots__ = (
        "alive",
        "calls",
        "children",
        "exited",
        "killed",
        "links",
        "lock",
        "mailbox",
        "monitors",
        "name",
        "on_lost",
        "parent",
        "pid",
        "place",
        "reason",
        "room",
        "thread",
        "trap_exit",
        "watching",
    )

    def __init__(self, name: str | None, parent: Proc | None) -> None:
        self.pid = Pid(next(_pid_counter), self)
        self.name = name
        self.parent = parent
        self.mailbox: SimpleQueue[Any] = SimpleQueue()
        self.alive = True
        self.killed = False
        self.trap_exit = False
        self.reason: Any = None
        self.exited = threading.Event()
        self.lock = threading.Lock()
        self.calls: set[Any] = set()  # open call slots, failed if we die
        self.children: set[Proc] = set()  # processes we started, linked to us
        self.on_lost: Callable[[list[Any], Any], None] | None = None
        self.place: Place | None = None  # the supervisor's place it holds, if it has one
        self.room: Any = None  # the bound on its mailbox, if it has one
        self.thread: threading.Thread | None = None
        self.links: set[Proc] = set()  # links made with Process.link
        self.monitors: set[MonitorRef] = set()  # monitors of this process
        self.watching: set[MonitorRef] = set()  # monitors this process holds

    def put(self, msg: Any) -> bool:
        """Deliver ``msg``; return False (and report it lost) if the process is dead.

        A message put just as the process dies is drained and reported by
        whichever side sees the death last, so no message vanishes unreported.
        """
        if self.alive:
            self.mailbox.put(msg)
            if not self.alive:  # killed meanwhile by another thread
                # a kill destroys the mailbox; any other death leaves it "noproc"
                self.drain(self.reason if self.killed else "noproc")  # type: ignore[unreachable]
            return True
        self.discard([msg], "noproc")
        return False

    def drain(self, reason: Any) -> None:
        """Empty a dead process's mailbox into `discard`.

        The KILL wake-up is put back: a sender draining a killed process must not
        take it from the process's own thread, which may be blocked on its mailbox.
        """
        msgs = []
        get = self.mailbox.get_nowait
        while True:
            try:
                msgs.append(get())
            except Empty:
                break
        if any(m is KILL for m in msgs):
            self.mailbox.put(KILL)
        if msgs:
            self.discard(msgs, reason)

    def discard(self, msgs: list[Any], reason: Any) -> None:
        """Fail the calls among ``msgs``; hand casts to the place, report the rest lost.

        A process that holds a supervisor's place (see `summarizer.otp.mailbox`)
        gives its casts to the place, which counts them or keeps them for the
        next process; what is lost goes to the server's ``lost_messages`` hook.
        """
        casts = []
        infos = []
        for msg in msgs:
            if msg.__class__ is not Envelope:
                casts.append(msg)
            elif msg.kind in ("call", "get_state"):
                msg.b.fail(reason)
            elif msg.kind == "info":
                infos.append(msg.a)
        place = self.place
        if place is not None and casts and place.lost_casts(self, casts, reason):
            casts = []  # handed to the next process: not lost
        lost = casts + infos
        hook = self.on_lost
        if lost and hook is not None:
            try:
                hook(lost, reason)
            except Exception:  # a death must finish whatever a hook does
                log.exception("lost_messages of %r raised", self.pid)

    def die(self, reason: Any, *, killed: bool = False) -> bool:
        """Mark the process dead once: free its name, timers and calls, tell its links.

        Return False if it was already dead. Safe from any thread.
        """
        with self.lock:
            if not self.alive:
                return False
            self.killed = killed
            self.reason = reason  # set first: whoever sees alive False reads the reason
            self.alive = False
        if self.name is not None:
            with _registry_lock:
                if _registry.get(self.name) is self:
                    del _registry[self.name]
        _timers.purge(self)
        for slot in list(self.calls):
            slot.fail(reason)
        self.calls.clear()
        if killed:
            self.mailbox.put(KILL)
        else:
            self.drain(reason)
        parent = self.parent
        if parent is not None:
            parent.children.discard(self)
            signal(parent, self.pid, reason)
        for child in list(self.children):  # links are two-way, as start_link's
            signal(child, self.pid, reason)
        self.children.clear()
        links_and_monitors_down(self, reason)
        self.exited.set()
        return True

    def link(self) -> None:
        """Record this process among its parent's children (once it is registered).

        A parent that died already (killed while busy starting children) sends
        its exit at once, as linking to a dead process does on the BEAM.
        """
        parent = self.parent
        if parent is not None:
            parent.children.add(self)
            if not parent.alive:
                parent.children.discard(self)
                signal(self, parent.pid, parent.reason)

    def unlink(self) -> None:
        """Forget the parent, so this process's exit sends it no signal."""
        parent, self.parent = self.parent, None
        if parent is not None:
            parent.children.discard(self)


_pid_counter = itertools.count(12)  # BEAM pids of user processes start near here
_registry: dict[str, Proc] = {}
_registry_lock = threading.Lock()
_local = threading.local()


def register(proc: Proc) -> None:
    """Register ``proc`` under its name; raise AlreadyStarted if taken."""
    if proc.name is None:
        return
    with _registry_lock:
        other = _registry.get(proc.name)
        if other is not None and other.alive:
            raise AlreadyStarted(proc.name, other.pid)
        _registry[proc.name] = proc


def current() -> Proc | None:
    """Return the process the calling thread runs, or None for a plain thread."""
    return getattr(_local, "proc", None)


def set_current(proc: Proc) -> None:
    """Bind ``proc`` to the calling thread (done once by the process's thread)."""
    _local.proc = proc


def resolve(dest: Any) -> Proc | None:
    """Return the live or dead record ``dest`` names now, or None if none."""
    if dest.__class__ is Pid:
        return dest._proc
    if isinstance(dest, str):
        return _registry.get(dest)
    whereis = getattr(dest, "whereis", None)
    if whereis is not None:
        pid = whereis()
        return None if pid is None else pid._proc
    raise TypeError(f"dest must be a Pid, a registered name or a via address, got: {brief(dest)}")


def signal(target: Proc, sender: Pid | None, reason: Any) -> None:
    """Deliver an exit signal, as Erlang does between linked processes."""
    if reason == "kill":
        target.die("killed", killed=True)
    elif target.trap_exit:
        target.put(Envelope("exit", sender, reason))
    elif reason != "normal":
        target.die(reason, killed=True)


_monitors_lock = threading.Lock()  # guards every Proc's links, monitors and watching
_monitor_seq = itertools.count(1)


class MonitorRef:
    """Identify one monitor; a plain thread waits on it with `wait`."""

    __slots__ = ("_down", "active", "flushed", "message", "n", "target", "watcher")

    def __init__(self, target: Proc | None, watcher: Proc | None) -> None:
        self.n = next(_monitor_seq)
        self.target = target
        self.watcher = watcher
        self.active = True  # until DOWN is sent or the monitor is removed
        self.flushed = False  # demonitor(flush=True): a queued DOWN is skipped
        self.message: tuple[Any, ...] | None = None
        self._down = threading.Event()

    def __repr__(self) -> str:
        return f"#Reference<0.{self.n}.0>"

    def wait(self, timeout: float | None = None) -> tuple[Any, ...] | None:
        """Wait for the DOWN message; return it, or None on timeout."""
        self._down.wait(timeout)
        return self.message

    def fire(self, obj: Any, reason: Any) -> None:
        """Mark the monitor down (with `_monitors_lock` held); `deliver` sends DOWN after."""
        self.active = False
        self.message = ("DOWN", self, "process", obj, reason)
        if self.watcher is not None:
            self.watcher.watching.discard(self)

    def deliver(self) -> None:
        """Send DOWN to the watcher's mailbox and wake `wait` (outside the lock)."""
        if self.watcher is not None:
            self.watcher.put(Envelope("down", self.message, self))
        self._down.set()


def links_and_monitors_down(proc: Proc, reason: Any) -> None:
    """Tell a dead process's links and monitors, and drop the monitors it held."""
    with _monitors_lock:
        linked = list(proc.links)
        proc.links.clear()
        for other in linked:
            other.links.discard(proc)
        fired = list(proc.monitors)
        for ref in fired:
            ref.fire(proc.pid, reason)
        proc.monitors.clear()
        for ref in proc.watching:  # a dead watcher's monitors end with it
            ref.active = False
            if ref.target is not None:
                ref.target.monitors.discard(ref)
        proc.watching.clear()
    for ref in fired:
        ref.deliver()
    for other in linked:
        signal(other, proc.pid, reason)


class TimerRef:
    """Identify a pending ``send_after`` timer."""

    __slots__ = ("cancelled", "deadline", "dest", "msg", "seq")

    def __init__(self, deadline: float, seq: int, dest: Any, msg: Any) -> None:
        self.deadline = deadline
        self.seq = seq
        self.dest = dest
        self.msg = msg
        self.cancelled = False

    def __lt__(self, other: TimerRef) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)

    def __repr__(self) -> str:
        return f"#Reference<0.{self.seq}>"


class _TimerService:
    """Serve every timer from one thread that exits when no timer is pending."""

    def __init__(self) -> None:
        self._heap: list[TimerRef] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, dest: Any, msg: Any, seconds: float) -> TimerRef:
        ref = TimerRef(time.monotonic() + seconds, next(self._seq), dest, msg)
        with self._cond:
            heapq.heappush(self._heap, ref)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="summarizer-timers", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is ref:
                self._cond.notify()
        return ref

    def cancel(self, ref: TimerRef) -> float | bool:
        with self._cond:
            if ref.cancelled or ref not in self._heap:
                return False
            ref.cancelled = True
            self._heap.remove(ref)
            heapq.heapify(self._heap)
            self._wake_if_idle()
        return max(0.0, ref.deadline - time.monotonic())

    def purge(self, proc: Proc) -> None:
        """Drop the timers aimed at a dead process; join the thread if now idle."""
        with self._cond:
            if not self._heap:
                return
            keep = []
            for r in self._heap:  # one pass: a tree of many processes dies in linear time
                if r.dest.__class__ is Pid and r.dest._proc is proc:
                    r.cancelled = True
                else:
                    keep.append(r)
            if len(keep) == len(self._heap):
                return
            heapq.heapify(keep)
            self._heap[:] = keep
            thread = self._wake_if_idle()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _wake_if_idle(self) -> threading.Thread | None:
        """Tell the thread to exit if nothing is pending; return it to join."""
        if self._heap:
            return None
        thread, self._thread = self._thread, None
        self._cond.notify()
        return thread

    def _run(self) -> None:
        me = threading.current_thread()
        cond, heap = self._cond, self._heap
        while True:
            with cond:
                while True:
                    if self._thread is not me:
                        return
                    if not heap:
                        self._thread = None
                        return
                    wait = heap[0].deadline - time.monotonic()
                    if wait <= 0:
                        ref = heapq.heappop(heap)
                        break
                    cond.wait(min(wait, threading.TIMEOUT_MAX))
            try:
                proc = resolve(ref.dest)
                if proc is not None and proc.alive:
                    proc.put(Envelope("info", ref.msg))
            except Exception:  # a via address that raised: drop this message, keep serving
                log.exception("timer %r could not deliver to %r", ref, ref.dest)


_timers = _TimerService()


class Process:
    """Address processes: send, time, link exits, and ask after them."""

    @staticmethod
    def send(dest: Any, msg: Any) -> Any:
        """Send ``msg`` to ``dest`` (pid, name or via); return ``msg``, as Erlang's ``!``."""
        proc = resolve(dest)
        if proc is not None:
            proc.put(Envelope("info", msg))
        return msg

    @staticmethod
    def send_after(dest: Any, msg: Any, seconds: float) -> TimerRef:
        """Send ``msg`` to ``dest`` after ``seconds``, never at once."""
        delay = non_negative_number("seconds", seconds)
        if not (dest.__class__ is Pid or isinstance(dest, str) or hasattr(dest, "whereis")):
            # raise now, not in the timer thread when it fires
            raise TypeError(
                f"dest must be a Pid, a registered name or a via address, got: {brief(dest)}"
            )
        return _timers.add(dest, msg, delay)

    @staticmethod
    def cancel_timer(ref: TimerRef) -> float | bool:
        """Cancel a timer; return the seconds it had left, or False if it was gone."""
        if not isinstance(ref, TimerRef):
            raise TypeError(f"ref must be a TimerRef, got: {brief(ref)}")
        return _timers.cancel(ref)

    @staticmethod
    def exit(dest: Any, reason: Any) -> None:
        """Send an exit signal: ``"kill"`` always kills; others can be trapped."""
        proc = resolve(dest)
        if proc is None:
            return
        me = current()
        signal(proc, None if me is None else me.pid, reason)

    @staticmethod
    def alive(dest: Any) -> bool:
        """Return whether ``dest`` names a live process."""
        proc = resolve(dest)
        return proc is not None and proc.alive

    @staticmethod
    def whereis(name: str) -> Pid | None:
        """Return the pid registered as ``name``, or None."""
        proc = _registry.get(name)
        return proc.pid if proc is not None and proc.alive else None

    @staticmethod
    def registered() -> list[str]:
        """Return the names of the live registered processes, sorted."""
        return sorted(n for n, p in list(_registry.items()) if p.alive)

    @staticmethod
    def self() -> Pid | None:
        """Return the calling process's pid, or None from a plain thread."""
        proc = current()
        return None if proc is None else proc.pid

    @staticmethod
    def flag(flag: str, value: bool) -> bool:
        """Set a flag of the calling process (only ``"trap_exit"``); return the old value."""
        proc = current()
        if flag != "trap_exit":
            raise ValueError(f"flag must be 'trap_exit', got: {brief(flag)}")
        if proc is None:
            raise RuntimeError("Process.flag must be called from inside a process")
        old, proc.trap_exit = proc.trap_exit, bool(value)
        return old

    @staticmethod
    def info(dest: Any) -> dict[str, Any] | None:
        """Return facts about a live process, as ``Process.info/1``; None if it is not alive.

        Keys: ``registered_name`` (None if it has none), ``message_queue_len``,
        ``trap_exit``, and ``monitored_by``: the pids monitoring it (a plain
        thread's monitor shows as None).
        """
        proc = resolve(dest)
        if proc is None or not proc.alive:
            return None
        with _monitors_lock:
            watchers = [None if r.watcher is None else r.watcher.pid for r in proc.monitors]
        return {
            "registered_name": proc.name,
            "message_queue_len": proc.mailbox.qsize(),
            "trap_exit": proc.trap_exit,
            "monitored_by": watchers,
        }

    @staticmethod
    def monitor(dest: Any) -> MonitorRef:
        """Monitor ``dest``: when it ends, DOWN reaches the caller's ``handle_info``, once.

        The message is ``("DOWN", ref, "process", pid, reason)``, with reason
        ``"noproc"`` if ``dest`` is not running. From a plain thread, wait for it
        with ``ref.wait(timeout)``.
        """
        target = resolve(dest)
        ref = MonitorRef(target, current())
        with _monitors_lock:
            if target is not None and target.alive:
                target.monitors.add(ref)
                if ref.watcher is not None:
                    ref.watcher.watching.add(ref)
            else:
                ref.fire(dest if target is None else target.pid, "noproc")
        if not ref.active:
            ref.deliver()
        return ref

    @staticmethod
    def demonitor(ref: MonitorRef, flush: bool = False) -> bool:
        """Remove a monitor; with ``flush``, also drop its DOWN if already queued."""
        if not isinstance(ref, MonitorRef):
            raise TypeError(f"ref must be a monitor reference, got: {brief(ref)}")
        with _monitors_lock:
            if ref.active:
                ref.active = False
                if ref.target is not None:
                    ref.target.monitors.discard(ref)
                if ref.watcher is not None:
                    ref.watcher.watching.discard(ref)
            if flush:
                ref.flushed = True
        return True

    @staticmethod
    def link(dest: Any) -> None:
        """Link the calling process to ``dest``: either one's exit signals the other.

        Raise `NoProcess` if ``dest`` is not running, unless the caller traps
        exits: then it gets ``("EXIT", dest, "noproc")``, as on the BEAM.
        """
        me = _caller("link")
        target = resolve(dest)
        with _monitors_lock:
            alive = target is not None and target.alive
            if target is not None and alive and target not in (me, me.parent, *me.children):
                target.links.add(me)  # a start_link link (parent, child) is there already
                me.links.add(target)
        if not alive:
            if not me.trap_exit:
                raise NoProcess(dest)
            me.put(Envelope("exit", dest if target is None else target.pid, "noproc"))

    @staticmethod
    def unlink(dest: Any) -> None:
        """Remove the link between the calling process and ``dest``, if any."""
        me = _caller("unlink")
        target = resolve(dest)
        if target is None:
            return
        with _monitors_lock:
            me.links.discard(target)
            target.links.discard(me)
        if target is me.parent:
            me.unlink()
        elif target in me.children:
            target.parent = None
            me.children.discard(target)

    @staticmethod
    def monitor_wait(dest: Any, timeout: float | None = None) -> bool:
        """Wait until ``dest`` has exited; return False on timeout."""
        proc = resolve(dest)
        return True if proc is None else proc.exited.wait(timeout)


def _caller(what: str) -> Proc:
    """Return the calling process; raise if called from a plain thread."""
    me = current()
    if me is None:
        raise RuntimeError(f"Process.{what} must be called from inside a process")
    return me
