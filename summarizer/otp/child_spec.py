"""Child specs: how a supervisor starts, restarts and stops one child.

A spec is what Elixir's ``child_spec/1`` returns::

    ChildSpec(id="Stack", start=(Stack.start_link, (["hello"],)))
    Stack.child_spec(["hello"])  # the same, built by the class

* ``id``: unique among the supervisor's children;
* ``start``: ``(function, args)`` or ``(function, args, kwargs)``; the
  function starts a linked process and returns its Pid (or None to ignore);
* ``restart``: ``"permanent"`` (always), ``"transient"`` (only after an
  abnormal exit), ``"temporary"`` (never);
* ``shutdown``: seconds to wait for a graceful exit before a kill,
  ``"brutal_kill"``, or ``"infinity"``; by default 5.0 for a worker and
  ``"infinity"`` for a supervisor, as OTP's 5000 ms and ``infinity``;
* ``type``: ``"worker"`` or ``"supervisor"``; ``modules`` for introspection;
* ``mailbox``: None (OTP's delivery), or a `Mailbox` that counts the casts sent to
  the child, bounds its mailbox, or hands casts its process could not handle to
  the next process (see `summarizer.otp.mailbox`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .mailbox import Mailbox
from .validate import brief

__all__ = ["ChildSpec", "ChildType", "Restart", "Shutdown"]

#: When a child is restarted: always, only after an abnormal exit, or never.
Restart = Literal["permanent", "transient", "temporary"]
#: What a child is; a supervisor child gets an infinite shutdown by default.
ChildType = Literal["worker", "supervisor"]
#: Seconds to wait for a graceful exit before a kill, or one of OTP's two atoms.
Shutdown = float | Literal["brutal_kill", "infinity"]

RESTARTS: tuple[Restart, ...] = get_args(Restart)
TYPES: tuple[ChildType, ...] = get_args(ChildType)


def validate_name(name: Any) -> None:
    """Raise unless ``name`` is None or a non-empty str."""
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty str or None, got: {brief(name)}")


@dataclass(frozen=True)
class ChildSpec:
    """Describe one child of a supervisor."""

    id: Any
    start: tuple[Any, ...]
    restart: Restart = "permanent"
    shutdown: Shutdown | None = None  # None: 5.0 for a worker, "infinity" for a supervisor
    type: ChildType = "worker"
    modules: list[str] = field(default_factory=list)
    mailbox: Mailbox | None = None

    def __post_init__(self) -> None:
        if self.shutdown is None:
            default: Shutdown = "infinity" if self.type == "supervisor" else 5.0
            object.__setattr__(self, "shutdown", default)
        start = self.start
        if (
            not isinstance(start, tuple)
            or len(start) not in (2, 3)
            or not callable(start[0])
            or not isinstance(start[1], (tuple, list))
            or (len(start) == 3 and not isinstance(start[2], dict))
        ):
            raise TypeError(
                f"start must be (function, args) or (function, args, kwargs), got: {brief(start)}"
            )
        if self.restart not in RESTARTS:
            raise ValueError(
                f"restart must be one of {', '.join(RESTARTS)}, got: {brief(self.restart)}"
            )
        if self.type not in TYPES:
            raise ValueError(f"type must be 'worker' or 'supervisor', got: {brief(self.type)}")
        s = self.shutdown
        if s not in ("brutal_kill", "infinity") and (
            isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0  # NaN too
        ):
            raise ValueError(
                f"shutdown must be seconds >= 0, 'brutal_kill' or 'infinity', got: {brief(s)}"
            )

        if self.mailbox is not None and not isinstance(self.mailbox, Mailbox):
            raise TypeError(f"mailbox must be a Mailbox or None, got: {brief(self.mailbox)}")

    def start_child(self) -> Any:
        """Call the start function; return what it returned (a Pid or None)."""
        fn, args, *kwargs = self.start
        return fn(*args, **(kwargs[0] if kwargs else {}))
