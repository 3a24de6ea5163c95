"""Supervisor: a process that starts children and restarts them when they die.

Start one from a list of children, as ``Supervisor.start_link(children, opts)``::

    children = [
        (Stack, ["hello"]),  # Stack.child_spec(["hello"])
        Counter,  # Counter.child_spec(None)
    ]
    sup = Supervisor.start_link(children, strategy="one_for_one")
    Supervisor.which_children(sup)
    # [('Counter', #PID<0.14.0>, 'worker', ['Counter']),
    #  ('Stack', #PID<0.13.0>, 'worker', ['Stack'])]
    Supervisor.stop(sup)

or as a module-based supervisor, the way the Livebook's ``SummarizerSupervisor``
is written: subclass, and return the children and flags from ``init``::

    class App(Supervisor):
        def init(self, arg):
            return Supervisor.init([(Stack, arg)], strategy="one_for_one")


    sup = App.start_link(["hello"], name="App")

Children start one at a time, in order: each ``init`` returns before the next
child starts; if one fails, those started are stopped and ``start_link`` raises
`StartError` with OTP's reason, ``("shutdown", ("failed_to_start_child", id,
reason))``. A child whose ``init`` returns `Ignore` is kept as not running
(pid None), unless it is temporary: then its spec is dropped, as OTP does.
When a child dies the strategy decides what restarts:

* ``"one_for_one"``: only that child;
* ``"one_for_all"``: all children (the others stopped in reverse order first);
* ``"rest_for_one"``: that child and every child started after it.

A child's ``restart`` decides whether it restarts at all (see `ChildSpec`).
Intensity: more than ``max_restarts`` restarts within ``max_seconds`` (counted
in whole monotonic seconds, as OTP does) make the supervisor give up: it stops
its children in reverse order and exits with reason ``"shutdown"``, so its own
supervisor decides what happens next. Stopping stops children in reverse start
order, each given its ``shutdown`` time before it is killed. A supervisor acts
only on exit signals from its children (and its parent): any other is ignored.

Children can be added and removed while the supervisor runs, with OTP's
errors as ``.reason`` (`StartError` or `SupervisorError`)::

    Supervisor.terminate_child(sup, "Stack")  # stopped; its spec is kept
    Supervisor.restart_child(sup, "Stack")  # running again, under a new pid
    Supervisor.start_child(sup, (Stack, ["again"]))
    # StartError: ('already_started', #PID<0.15.0>): the id "Stack" is taken
    Supervisor.terminate_child(sup, "Stack")
    Supervisor.delete_child(sup, "Stack")  # the spec is gone
    Supervisor.start_child(sup, (Stack, ["again"]))  # #PID<0.16.0>
    Supervisor.get_childspec(sup, "Counter")  # ChildSpec(id='Counter', ...)

A temporary child's spec is deleted when the child ends, whatever the reason.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from threading import TIMEOUT_MAX
from typing import Any, ClassVar, Literal, NamedTuple, get_args

from .child_spec import ChildSpec, Restart
from .errors import StartError, SupervisorError
from .gen_server import GenServer, NoReply, Ok, Reply, Stop, join, start
from .mailbox import Place, spawning
from .process import Pid, Process, current, is_normal, signal
from .validate import brief, positive_int, positive_number

__all__ = ["Child", "Strategy", "Supervisor", "SupervisorFlags"]

log = logging.getLogger("summarizer")

#: Which children restart when one dies: it, all, or it and those started after it.
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)


class Child(NamedTuple):
    """One row of ``which_children``: ``(id, pid, type, modules)``."""

    id: Any
    pid: Pid | str | None
    type: str
    modules: list[str]


@dataclass(frozen=True)
class SupervisorFlags:
    """The children and flags a supervisor runs with (``Supervisor.init``'s result)."""

    children: list[ChildSpec]
    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5


def to_spec(child: Any) -> ChildSpec:
    """Turn a class, ``(class, arg)`` pair, dict or spec into a `ChildSpec`."""
    if isinstance(child, ChildSpec):
        return child
    if isinstance(child, dict):
        return ChildSpec(**child)
    if isinstance(child, tuple) and len(child) == 2 and hasattr(child[0], "child_spec"):
        return child[0].child_spec(child[1])  # type: ignore[no-any-return]
    if isinstance(child, type) and hasattr(child, "child_spec"):
        return child.child_spec()  # type: ignore[no-any-return]
    raise TypeError(
        f"child must be a ChildSpec, a dict, a class with child_spec or a (class, arg) pair, "
        f"got: {brief(child)}"
    )


class _Running:
    """A child as the supervisor tracks it."""

    __slots__ = ("pid", "place", "spec")

    def __init__(self, spec: ChildSpec, place: Place | None) -> None:
        self.spec = spec
        self.place = place
        self.pid: Pid | str | None = None

    def row(self) -> Child:
        return Child(self.spec.id, self.pid, self.spec.type, self.spec.modules)


@dataclass
class _State:
    flags: SupervisorFlags
    children: list[_Running] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)


class SupervisorServer(GenServer):
    """The process behind every supervisor; applies strategy and intensity."""

    def init(self, arg: Any) -> Ok:
        Process.flag("trap_exit", True)
        self.module: Supervisor | None = None
        if isinstance(arg, tuple):  # a module-based supervisor and its init arg
            self.module, init_arg = arg
            flags = self.module.init(init_arg)
        else:
            flags = arg
        if not isinstance(flags, SupervisorFlags):
            raise TypeError(f"init must return Supervisor.init(...), got: {brief(flags)}")
        self.giving_up = False
        state = _State(flags)
        for i, spec in enumerate(flags.children):
            child = _Running(spec, self.place_for(i, spec))
            try:
                self.start_child(child)
            except BaseException as e:  # a start failure
                self.stop_children([*state.children, child])
                reason = e.reason if isinstance(e, StartError) else e
                raise StartError(
                    ("shutdown", ("failed_to_start_child", spec.id, reason)),
                    f"child {spec.id!r} failed to start: {reason!r}",
                ) from e
            if child.pid is not None or spec.restart != "temporary":
                state.children.append(child)  # an ignoring temporary child is dropped
        return Ok(state)

    def start_child(self, child: _Running) -> None:
        """Start one child; raise StartError if it fails."""
        with spawning(child.place):
            child.pid = start_one(child.spec)

    def place_for(self, index: int, spec: ChildSpec) -> Place | None:
        """Return the mailbox place of child ``index``, kept across its restarts."""
        return None if spec.mailbox is None else Place(spec.mailbox)

    def stop_children(self, children: list[_Running]) -> None:
        """Stop ``children`` in reverse order, each within its shutdown time."""
        me = current()
        for child in reversed(children):
            pid, child.pid = child.pid, None
            if not isinstance(pid, Pid):
                continue
            proc = pid._proc
            shutdown = child.spec.shutdown
            if shutdown == "brutal_kill":
                signal(proc, None, "kill")
            else:
                signal(proc, None if me is None else me.pid, "shutdown")
                if not proc.exited.wait(shutdown_seconds(shutdown)):
                    signal(proc, None, "kill")
            proc.exited.wait()
            join(proc)

    def handle_call(self, request: Any, from_: Any, state: _State) -> Reply:
        if request == "which_children":
            return Reply([c.row() for c in reversed(state.children)], state)
        if request == "count_children":
            kinds = [c.spec.type for c in state.children]
            active = sum(1 for c in state.children if isinstance(c.pid, Pid) and c.pid._proc.alive)
            counts = {
                "specs": len(kinds),
                "active": active,
                "supervisors": kinds.count("supervisor"),
                "workers": kinds.count("worker"),
            }
            return Reply(counts, state)
        if isinstance(request, tuple) and len(request) == 2 and request[0] in _ADMIN:
            op, arg = request
            return Reply(getattr(self, f"admin_{op}")(arg, state), state)
        raise ValueError(f"unknown supervisor request: {request!r}")

    # -- child administration: each returns ("ok", value) or ("error", OTP's reason)

    @staticmethod
    def find(child_id: Any, state: _State) -> _Running | None:
        """Return the child whose id is ``child_id``, or None."""
        return next((c for c in state.children if c.spec.id == child_id), None)

    def admin_start_child(self, spec: ChildSpec, state: _State) -> tuple[str, Any]:
        old = self.find(spec.id, state)
        if old is not None:
            return (
                "error",
                ("already_started", old.pid) if isinstance(old.pid, Pid) else "already_present",
            )
        child = _Running(spec, self.place_for(len(state.children), spec))
        try:
            self.start_child(child)
        except StartError as e:
            return ("error", e.reason)
        if child.pid is not None or spec.restart != "temporary":
            state.children.append(child)
        return ("ok", child.pid)

    def admin_terminate_child(self, child_id: Any, state: _State) -> tuple[str, Any]:
        child = self.find(child_id, state)
        if child is None:
            return ("error", "not_found")
        self.stop_children([child])
        if child.spec.restart == "temporary":
            state.children.remove(child)
        return ("ok", None)

    def admin_restart_child(self, child_id: Any, state: _State) -> tuple[str, Any]:
        child = self.find(child_id, state)
        if child is None:
            return ("error", "not_found")
        if child.pid is not None:
            return ("error", "restarting" if child.pid == "restarting" else "running")
        try:
            self.start_child(child)
        except StartError as e:
            return ("error", e.reason)
        return ("ok", child.pid)

    def admin_delete_child(self, child_id: Any, state: _State) -> tuple[str, Any]:
        child = self.find(child_id, state)
        if child is None:
            return ("error", "not_found")
        if child.pid is not None:
            return ("error", "restarting" if child.pid == "restarting" else "running")
        state.children.remove(child)
        return ("ok", None)

    def admin_get_childspec(self, child_id: Any, state: _State) -> tuple[str, Any]:
        child = self.find(child_id, state)
        return ("error", "not_found") if child is None else ("ok", child.spec)

    def handle_info(self, msg: Any, state: _State) -> NoReply | Stop:
        if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "EXIT":
            return self.child_exited(msg[1], msg[2], state)
        if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "try_again_restart":
            child = next((c for c in state.children if c.spec.id == msg[1]), None)
            if child is None or child.pid != "restarting":
                return NoReply(state)
            return self.restart_child(child, state)
        return super().handle_info(msg, state)

    def child_exited(self, pid: Pid, reason: Any, state: _State) -> NoReply | Stop:
        """Apply the child's restart value and the strategy to one exit."""
        if pid.__class__ is not Pid:  # a signal from a plain thread: not a child's
            return NoReply(state)
        child = next((c for c in state.children if c.pid == pid), None)
        if child is None:
            return NoReply(state)  # a child we stopped ourselves, or a stranger
        restart = child.spec.restart
        normal = is_normal(reason)
        if restart == "temporary":
            state.children.remove(child)
            return NoReply(state)
        if restart == "transient" and normal:
            child.pid = None
            return NoReply(state)
        return self.restart_child(child, state)

    def restart_child(self, child: _Running, state: _State) -> NoReply | Stop:
        """Restart ``child`` (and its siblings, by strategy) unless intensity is spent."""
        if not self.add_restart(state):
            self.giving_up = True  # its parent may start a successor, which may take over
            return Stop("shutdown", state)  # terminate stops the children, as supervisor.erl
        children = state.children
        i = children.index(child)
        strategy = state.flags.strategy
        again = (
            [child]
            if strategy == "one_for_one"
            else children
            if strategy == "one_for_all"
            else children[i:]
        )
        siblings = [c for c in again if c is not child]
        self.stop_children(siblings)
        for c in siblings:  # as OTP: a temporary sibling stopped here is gone, spec and all
            if c.spec.restart == "temporary":
                children.remove(c)
        again = [c for c in again if c is child or c.spec.restart != "temporary"]
        child.pid = None
        for c in again:
            try:
                self.start_child(c)
            except StartError:
                c.pid = "restarting"
                Process.send(current().pid, ("try_again_restart", c.spec.id))  # type: ignore[union-attr]
                break
        return NoReply(state)

    @staticmethod
    def add_restart(state: _State) -> bool:
        """Record a restart now; return False if that exceeds the intensity."""
        now = int(time.monotonic())
        threshold = now - state.flags.max_seconds
        state.restarts = [now, *(t for t in state.restarts if t >= threshold)]
        return len(state.restarts) <= state.flags.max_restarts

    def terminate(self, reason: Any, state: _State) -> None:
        if self.module is not None:
            try:
                self.module.prep_stop(reason)
            except Exception:
                log.exception("%s.prep_stop failed", type(self.module).__name__)
        self.stop_children(state.children)
        if not self.keeps_places(reason):  # no process will take them: orphans are lost
            for child in state.children:
                if child.place is not None:
                    child.place.finish()

    def keeps_places(self, reason: Any) -> bool:
        """Return whether the children's places outlive this supervisor (a subclass's say).

        A plain supervisor makes new places when it starts again, so it never keeps them.
        """
        return False


class Supervisor:
    """Start supervisors and ask them about their children."""

    #: Child spec defaults for module-based supervisors.
    restart: ClassVar[Restart] = "permanent"

    def prep_stop(self, reason: Any) -> None:
        """Prepare to stop, before any child is stopped; module-based supervisors may override.

        Not an OTP supervisor callback (OTP has it for applications): it lets a
        tree close its intake first, so a stop under load drains a bounded backlog.
        """

    @classmethod
    def child_spec(cls, arg: Any = None) -> ChildSpec:
        """Return the spec that starts this module-based supervisor under another."""
        return ChildSpec(
            id=cls.__name__,
            start=(cls.start_link, (arg,)),
            restart=cls.restart,
            shutdown="infinity",
            type="supervisor",
            modules=[cls.__name__],
        )

    @classmethod
    def start_link(cls, *args: Any, name: str | None = None, **flags: Any) -> Pid:
        """Start a supervisor linked to the caller and return its Pid.

        ``Supervisor.start_link(children, strategy=..., max_restarts=...,
        max_seconds=..., name=...)`` supervises a list of children;
        ``Supervisor.start_link(Module, arg, name=...)`` or ``Module.start_link(arg)``
        runs a module-based supervisor whose ``init(arg)`` returns the children.
        """
        if cls is not Supervisor:
            args = (cls, *args)
        if args and isinstance(args[0], type) and issubclass(args[0], Supervisor):
            module, arg = args[0], args[1] if len(args) > 1 else None
            if flags:
                raise TypeError(
                    f"unexpected options for a module-based supervisor: {sorted(flags)}"
                )
            return start_supervisor(SupervisorServer, (module(), arg), name)
        if len(args) != 1:
            raise TypeError("start_link takes a list of children, or a module and its arg")
        return start_supervisor(SupervisorServer, Supervisor.init(args[0], **flags), name)

    @staticmethod
    def init(
        children: Iterable[Any],
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5,
    ) -> SupervisorFlags:
        """Validate children and flags into what a supervisor runs with.

        Module-based supervisors override ``init(self, arg)`` and return this.
        """
        if isinstance(children, (str, bytes)) or not isinstance(children, Iterable):
            raise TypeError(f"children must be a list, got: {brief(children)}")
        if strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got: {brief(strategy)}"
            )
        positive_int("max_restarts", max_restarts, 0)
        positive_number("max_seconds", max_seconds)  # finite: OTP's invalid_period
        specs = [to_spec(c) for c in children]
        ids = [s.id for s in specs]
        counts = Counter(ids)  # linear: a quadratic check hangs on large partition counts
        dup = next((i for i in ids if counts[i] > 1), None)
        if dup is not None:
            raise ValueError(f"children must have unique ids, got: {brief(dup)} twice")
        return SupervisorFlags(specs, strategy, max_restarts, max_seconds)

    @staticmethod
    def which_children(sup: Any) -> list[Child]:
        """Return ``(id, pid, type, modules)`` per child, in reverse start order."""
        return GenServer.call(sup, "which_children", None)  # type: ignore[no-any-return]

    @staticmethod
    def count_children(sup: Any) -> dict[str, int]:
        """Return the counts ``specs``, ``active``, ``supervisors`` and ``workers``."""
        return GenServer.call(sup, "count_children", None)  # type: ignore[no-any-return]

    @staticmethod
    def stop(sup: Any, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the supervisor and its children (reverse order); wait until done.

        Raise `ExitError` if it exited with another reason than ``reason``.
        """
        GenServer.stop(sup, reason, timeout)

    @staticmethod
    def start_child(sup: Any, child: Any) -> Pid | None:
        """Add ``child`` (a class, ``(class, arg)`` or ChildSpec) and start it.

        Return its pid, or None if its ``init`` ignored. Raise `StartError`
        with ``("already_started", pid)``, ``"already_present"`` (the id is
        taken by a stopped child) or the reason the child failed to start.
        """
        spec = to_spec(child)
        return _admin(sup, "start_child", spec, StartError)  # type: ignore[no-any-return]

    @staticmethod
    def terminate_child(sup: Any, child_id: Any) -> None:
        """Stop the child ``child_id`` (keeping its spec, unless it is temporary)."""
        _admin(sup, "terminate_child", child_id, SupervisorError)

    @staticmethod
    def restart_child(sup: Any, child_id: Any) -> Pid | None:
        """Start the stopped child ``child_id`` again; return its pid (None if it ignored).

        Raise `StartError` with ``"running"``, ``"restarting"``, ``"not_found"``
        or the reason the child failed to start.
        """
        return _admin(sup, "restart_child", child_id, StartError)  # type: ignore[no-any-return]

    @staticmethod
    def delete_child(sup: Any, child_id: Any) -> None:
        """Forget the stopped child ``child_id``'s spec."""
        _admin(sup, "delete_child", child_id, SupervisorError)

    @staticmethod
    def get_childspec(sup: Any, child_id: Any) -> ChildSpec:
        """Return the spec of the child ``child_id``."""
        return _admin(sup, "get_childspec", child_id, SupervisorError)  # type: ignore[no-any-return]


_ADMIN = ("start_child", "terminate_child", "restart_child", "delete_child", "get_childspec")


def _admin(sup: Any, op: str, arg: Any, error: type[StartError | SupervisorError]) -> Any:
    """Ask the supervisor ``sup`` to do ``op``; raise ``error`` with OTP's reason if it refuses."""
    tag, value = GenServer.call(sup, (op, arg), None)
    if tag == "error":
        what = arg.id if isinstance(arg, ChildSpec) else arg
        raise error(value, f"{op} of child {what!r} on {sup!r} failed: {value!r}")
    return value


def start_one(spec: ChildSpec) -> Pid | None:
    """Start the child ``spec`` describes; raise StartError with the reason it failed."""
    try:
        pid = spec.start_child()
    except StartError:
        raise
    except BaseException as e:
        raise StartError(e, f"child {spec.id!r} failed to start: {e!r}") from e
    if pid is not None and not isinstance(pid, Pid):
        raise StartError(pid, f"child {spec.id!r} start returned {pid!r}, not a Pid")
    return pid


def shutdown_seconds(shutdown: Any) -> float | None:
    """Return how long to wait for a child's graceful exit; None is forever."""
    return None if shutdown == "infinity" else float(min(shutdown, TIMEOUT_MAX))


def start_supervisor(cls: type[GenServer], arg: Any, name: str | None) -> Pid:
    """Start a supervisor process; its ``init`` never ignores, so a Pid comes back."""
    pid = start(cls, arg, name)
    assert pid is not None
    return pid
