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
  ``"brutal_kill"``, or ``"infinity"`` (the default for supervisors);
* ``type``: ``"worker"`` or ``"supervisor"``; ``modules`` for introspection;
* ``mailbox``: None (OTP's delivery), or a `Mailbox` that counts the casts sent to
  the child, bounds its mailbox, or hands casts its process could not handle to
  the next process (see `summarizer.otp.mailbox`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .mailbox import Mailbox
from .validate import brief

__all__ = ["ChildSpec"]

RESTARTS = ("permanent", "transient", "temporary")
TYPES = ("worker", "supervisor")


def validate_name(name: Any) -> None:
    """Raise unless ``name`` is None or a non-empty str."""
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty str or None, got: {brief(name)}")


@dataclass(frozen=True)
class ChildSpec:
    """Describe one child of a supervisor."""

    id: Any
    start: tuple[Any, ...]
    restart: str = "permanent"
    shutdown: float | str = 5.0
    type: str = "worker"
    modules: list[str] = field(default_factory=list)
    mailbox: Mailbox | None = None

    def __post_init__(self) -> None:
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
