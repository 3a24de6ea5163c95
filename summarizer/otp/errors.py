"""One exception hierarchy for the runtime.

Every error the runtime raises on purpose is an `OtpError`, so a caller can
catch them all at once::

    try:
        GenServer.call("NoSuchServer", "ping")
    except NoProcess as e:
        e.reason  # "noproc", as Erlang's exit reason

`ExitError` mirrors an Erlang exit seen by a caller (``{reason, {GenServer,
:call, ...}}``); `StartError` mirrors ``{:error, reason}`` from ``start_link``
and ``start_child``; `SupervisorError` mirrors ``{:error, reason}`` from a
supervisor's other child administration (``terminate_child``, ``delete_child``,
``get_childspec``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyStarted",
    "CallTimeout",
    "ExitError",
    "NoProcess",
    "OtpError",
    "StartError",
    "SupervisorError",
]


class OtpError(Exception):
    """Base class of every error the runtime raises on purpose."""


class ExitError(OtpError):
    """A call failed because the server exited, or never answered."""

    def __init__(self, reason: Any, message: str | None = None) -> None:
        super().__init__(message or f"server exited: {reason!r}")
        self.reason = reason


class NoProcess(ExitError):
    """The server addressed by a call is not running."""

    def __init__(self, server: Any) -> None:
        super().__init__("noproc", f"no process is running as {server!r}")
        self.server = server


class CallTimeout(ExitError, TimeoutError):
    """A call got no reply in time; the server keeps running."""

    def __init__(self, server: Any, timeout: float) -> None:
        super().__init__("timeout", f"call to {server!r} got no reply within {timeout} s")
        self.server = server
        self.timeout = timeout


class StartError(OtpError):
    """A process failed to start: its ``init`` raised or asked to stop."""

    def __init__(self, reason: Any, message: str | None = None) -> None:
        super().__init__(message or f"failed to start: {reason!r}")
        self.reason = reason


class AlreadyStarted(StartError):
    """A process is already registered under the requested name."""

    def __init__(self, name: str, pid: Any) -> None:
        super().__init__(("already_started", pid), f"name {name!r} is already taken by {pid!r}")
        self.name = name
        self.pid = pid


class SupervisorError(OtpError):
    """A supervisor refused a request about a child: ``.reason`` is OTP's term.

    ``"not_found"`` (no child has that id, or that pid), ``"running"`` or
    ``"restarting"`` (delete or restart a child that is not stopped): check the
    id, or `Supervisor.terminate_child` it first.
    """

    def __init__(self, reason: Any, message: str | None = None) -> None:
        super().__init__(message or f"supervisor refused: {reason!r}")
        self.reason = reason
