"""Workers the ported OTP and Elixir suites share, and a bounded wait."""

from __future__ import annotations

from typing import Any

from summarizer.otp import (
    ChildSpec,
    GenServer,
    Ignore,
    NoReply,
    Ok,
    Process,
    Reply,
    Stop,
    Supervisor,
)

#: Upper bound of every wait; a passing test never waits this long.
WAIT = 5.0


class Sup1(GenServer):
    """OTP's ``supervisor_1``: a worker whose ``init`` does what its arg says.

    ``"ignore"`` ignores, ``"error"`` raises, ``"trap"`` traps exits, anything
    else is the state. A ``("block", event)`` info keeps it busy until the event
    is set (or `WAIT`); a ``("stop", reason)`` info makes it exit with ``reason``.
    """

    def init(self, arg: Any) -> Ok | Ignore:
        if arg == "ignore":
            return Ignore()
        if arg == "error":
            raise RuntimeError("init failed on purpose")
        if arg == "trap":
            Process.flag("trap_exit", True)
        return Ok(arg)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(state, state)

    def handle_info(self, msg: Any, state: Any) -> NoReply | Stop:
        if isinstance(msg, tuple) and msg[0] == "block":
            msg[1].wait(WAIT)
        if isinstance(msg, tuple) and msg[0] == "stop":
            return Stop(msg[1], state)
        return NoReply(state)


def spec(child_id: Any, arg: Any = None, **options: Any) -> ChildSpec:
    """Return the spec of a `Sup1` child: the suites' ``{Id, {supervisor_1, start_child, []}}``."""
    return ChildSpec(id=child_id, start=(Sup1.start_link, (arg,)), **options)


def counts(sup: Any) -> list[int]:
    """Return ``[specs, active, supervisors, workers]``, as the suite's ``get_child_counts``."""
    c = Supervisor.count_children(sup)
    return [c["specs"], c["active"], c["supervisors"], c["workers"]]
