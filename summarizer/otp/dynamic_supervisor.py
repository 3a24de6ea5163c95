"""DynamicSupervisor: a supervisor that starts its children on demand.

It starts with no children; each ``start_child`` adds one, as Elixir's::

    DynamicSupervisor.start_link(name="Rooms", max_children=1_000)
    pid = DynamicSupervisor.start_child("Rooms", (Room, "lobby"))
    DynamicSupervisor.which_children("Rooms")  # [(None, pid, 'worker', ['Room'])]
    DynamicSupervisor.count_children("Rooms")  # {'specs': 1, 'active': 1, ...}
    DynamicSupervisor.terminate_child("Rooms", pid)
    DynamicSupervisor.stop("Rooms")

Children are known by pid, not by id: ``which_children`` reads the ids as
None (Elixir's ``:undefined``), and ``terminate_child`` takes the pid. A child
restarts by its spec's ``restart`` with the same start arguments, under a new
pid, counted against ``max_restarts`` in ``max_seconds`` as a `Supervisor`'s.
A restart that fails leaves the child ``"restarting"`` and is tried again;
a restart that ignores drops the child.

Options, with Elixir's defaults:

* ``strategy``: only ``"one_for_one"``;
* ``max_restarts`` (3) and ``max_seconds`` (5): the restart intensity;
* ``max_children`` (None: no limit): ``start_child`` beyond it raises
  `StartError` with reason ``"max_children"``; children restarting count;
* ``extra_arguments`` (``()``): prepended to every child's start arguments.

On stop every child gets its exit signal at once and they stop in parallel,
each within its own ``shutdown`` (then it is killed), as Elixir's do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .child_spec import ChildSpec, validate_name
from .errors import StartError, SupervisorError
from .gen_server import GenServer, NoReply, Ok, Reply, Stop, join
from .process import Pid, Process, current, is_normal, signal
from .supervisor import (
    Child,
    Supervisor,
    shutdown_seconds,
    start_one,
    start_supervisor,
    to_spec,
)
from .validate import brief, positive_int

__all__ = ["DynamicSupervisor"]


@dataclass
class _Child:
    spec: ChildSpec
    restarting: bool = False


@dataclass
class _State:
    max_restarts: int
    max_seconds: float
    max_children: int | None
    extra_arguments: tuple[Any, ...]
    children: dict[Pid, _Child] = field(default_factory=dict)  # by first pid while restarting
    restarts: list[int] = field(default_factory=list)


class _DynamicServer(GenServer):
    """The process behind a DynamicSupervisor."""

    def init(self, state: _State) -> Ok:
        Process.flag("trap_exit", True)
        return Ok(state)

    def handle_call(self, request: Any, from_: Any, state: _State) -> Reply:
        if request == "which_children":
            rows = [
                Child(None, "restarting" if c.restarting else pid, c.spec.type, c.spec.modules)
                for pid, c in sorted(state.children.items())
            ]
            return Reply(rows, state)
        if request == "count_children":
            kinds = [c.spec.type for c in state.children.values()]
            active = sum(
                1 for pid, c in state.children.items() if not c.restarting and pid._proc.alive
            )
            counts = {
                "specs": len(kinds),
                "active": active,
                "supervisors": kinds.count("supervisor"),
                "workers": kinds.count("worker"),
            }
            return Reply(counts, state)
        if not (isinstance(request, tuple) and len(request) == 2):
            raise ValueError(f"unknown dynamic supervisor request: {request!r}")
        op, arg = request
        if op == "start_child":
            return Reply(self.start_new(arg, state), state)
        if op == "terminate_child":
            child = state.children.pop(arg, None) if isinstance(arg, Pid) else None
            if child is None:
                return Reply(("error", "not_found"), state)
            if not child.restarting:
                stop_in_parallel({arg: child})
            return Reply(("ok", None), state)
        raise ValueError(f"unknown dynamic supervisor request: {request!r}")

    def start_new(self, spec: ChildSpec, state: _State) -> tuple[str, Any]:
        if state.max_children is not None and len(state.children) >= state.max_children:
            return ("error", "max_children")
        fn, args, *kwargs = spec.start
        spec = replace(spec, start=(fn, (*state.extra_arguments, *args), *kwargs))
        try:
            pid = start_one(spec)
        except StartError as e:
            return ("error", e.reason)
        if pid is not None:
            state.children[pid] = _Child(spec)
        return ("ok", pid)

    def handle_info(self, msg: Any, state: _State) -> NoReply | Stop:
        if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "EXIT":
            _exit, pid, reason = msg
            child = state.children.get(pid) if isinstance(pid, Pid) else None
            if child is None or child.restarting:
                return NoReply(state)  # not a child of ours: a stranger's signal
            if child.spec.restart == "temporary" or (
                child.spec.restart == "transient" and is_normal(reason)
            ):
                del state.children[pid]
                return NoReply(state)
            return self.restart_child(pid, child, state)
        if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "try_again_restart":
            child = state.children.get(msg[1])
            if child is None or not child.restarting:
                return NoReply(state)
            return self.restart_child(msg[1], child, state)
        return super().handle_info(msg, state)

    def restart_child(self, pid: Pid, child: _Child, state: _State) -> NoReply | Stop:
        """Restart ``child`` under a new pid unless intensity is spent."""
        now = int(time.monotonic())
        threshold = now - state.max_seconds
        state.restarts = [now, *(t for t in state.restarts if t >= threshold)]
        if len(state.restarts) > state.max_restarts:
            return Stop("shutdown", state)
        del state.children[pid]
        try:
            new = start_one(child.spec)
        except StartError:
            state.children[pid] = _Child(child.spec, restarting=True)
            Process.send(current().pid, ("try_again_restart", pid))  # type: ignore[union-attr]
            return NoReply(state)
        if new is not None:  # a restart that ignores drops the child, as Elixir's
            state.children[new] = _Child(child.spec)
        return NoReply(state)

    def terminate(self, reason: Any, state: _State) -> None:
        stop_in_parallel(state.children)
        state.children.clear()


def stop_in_parallel(children: dict[Pid, _Child]) -> None:
    """Signal every running child at once, then kill each still running at its deadline."""
    me = current()
    now = time.monotonic()
    waits = []
    for pid, child in children.items():
        if child.restarting:
            continue
        shutdown = child.spec.shutdown
        if shutdown == "brutal_kill":
            signal(pid._proc, None, "kill")
            waits.append((now, pid))
            continue
        signal(pid._proc, None if me is None else me.pid, "shutdown")
        seconds = shutdown_seconds(shutdown)
        waits.append((now + seconds if seconds is not None else float("inf"), pid))
    waits.sort(key=lambda w: w[0])  # the earliest deadline first; "infinity" last
    for deadline, pid in waits:
        proc = pid._proc
        left = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
        if not proc.exited.wait(left):
            signal(proc, None, "kill")
    for _deadline, pid in waits:
        pid._proc.exited.wait()
        join(pid._proc)


class DynamicSupervisor:
    """Start dynamic supervisors, add and remove their children."""

    @staticmethod
    def start_link(
        *,
        strategy: Literal["one_for_one"] = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5,
        max_children: int | None = None,
        extra_arguments: tuple[Any, ...] | list[Any] = (),
        name: str | None = None,
    ) -> Pid:
        """Start a DynamicSupervisor with no children, linked to the caller."""
        if strategy != "one_for_one":
            raise ValueError(f"strategy must be 'one_for_one', got: {brief(strategy)}")
        flags = Supervisor.init([], max_restarts=max_restarts, max_seconds=max_seconds)
        if max_children is not None:
            positive_int("max_children", max_children, 0)
        if not isinstance(extra_arguments, (tuple, list)):
            raise TypeError(f"extra_arguments must be a list, got: {brief(extra_arguments)}")
        validate_name(name)
        state = _State(max_restarts, flags.max_seconds, max_children, tuple(extra_arguments))
        return start_supervisor(_DynamicServer, state, name)

    @staticmethod
    def child_spec(options: dict[str, Any] | None = None) -> ChildSpec:
        """Return the spec that starts a DynamicSupervisor under another supervisor."""
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict, got: {brief(options)}")
        return ChildSpec(
            id=options.get("name", "DynamicSupervisor"),
            start=(DynamicSupervisor.start_link, (), dict(options)),
            type="supervisor",
            modules=["DynamicSupervisor"],
        )

    @staticmethod
    def start_child(sup: Any, child: Any) -> Pid | None:
        """Start ``child`` (a class, ``(class, arg)`` or ChildSpec) under ``sup``.

        Return its pid, or None if its ``init`` ignored. Raise `StartError`
        with ``"max_children"`` at the limit, or the reason it failed to start.
        """
        spec = to_spec(child)
        tag, value = GenServer.call(sup, ("start_child", spec), None)
        if tag == "error":
            raise StartError(value, f"start_child on {sup!r} failed: {value!r}")
        return value  # type: ignore[no-any-return]

    @staticmethod
    def terminate_child(sup: Any, pid: Pid) -> None:
        """Stop the child ``pid`` and forget it; `SupervisorError` "not_found" if unknown."""
        tag, value = GenServer.call(sup, ("terminate_child", pid), None)
        if tag == "error":
            raise SupervisorError(value, f"{pid!r} is not a child of {sup!r}")

    @staticmethod
    def which_children(sup: Any) -> list[Child]:
        """Return ``(None, pid, type, modules)`` per child (pid ``"restarting"`` meanwhile)."""
        return GenServer.call(sup, "which_children", None)  # type: ignore[no-any-return]

    @staticmethod
    def count_children(sup: Any) -> dict[str, int]:
        """Return the counts ``specs``, ``active``, ``supervisors`` and ``workers``."""
        return GenServer.call(sup, "count_children", None)  # type: ignore[no-any-return]

    @staticmethod
    def stop(sup: Any, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the supervisor; its children stop in parallel. Wait until done."""
        GenServer.stop(sup, reason, timeout)
