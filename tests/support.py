"""What every test shares: the wait bound, the tree's names, and small helpers.

The fixtures (``no_leaks``, ``tree``) are in conftest.py; import the rest from here::

    from support import COLLECTORS, WAIT, live_children
"""

from __future__ import annotations

from typing import Any

from summarizer import COLLECTORS, FLUSHERS, Buffer
from summarizer.otp import GenServer, NoProcess, PartitionSupervisor, Pid, Process

__all__ = [
    "COLLECTORS",
    "FLUSHERS",
    "TREE_DEFAULTS",
    "WAIT",
    "held",
    "live_children",
    "queued",
    "routed_pids",
]

#: Seconds: the bound of every wait on another thread; a passing test never waits this long.
WAIT = 10.0

#: The tree fixture's defaults: no periodic flush within a test, 3 partitions, no sinks.
TREE_DEFAULTS: dict[str, Any] = {"flush_interval": 60.0, "partitions": 3, "sinks": []}


def live_children(supervisor: str) -> list[Pid]:
    """Return the live pids under a PartitionSupervisor, by partition (a call)."""
    rows = sorted(PartitionSupervisor.which_children(supervisor), key=lambda c: c.id)
    return [c.pid for c in rows if isinstance(c.pid, Pid)]


def routed_pids(supervisor: str) -> list[Pid]:
    """Return the live pids a PartitionSupervisor routes to now, without a call.

    Under 8 producers a call round-trip costs several GIL hand-offs, which would
    slow an injector far below its pace.
    """
    try:
        n = PartitionSupervisor.partitions(supervisor)
    except NoProcess:
        return []
    pids = (PartitionSupervisor.route(supervisor, p) for p in range(n))
    return [p for p in pids if p is not None and Process.alive(p)]


def queued(pid: Pid) -> int:
    """Return how many messages wait in ``pid``'s mailbox now; 0 once it is dead."""
    info = Process.info(pid)
    return 0 if info is None else int(info["message_queue_len"])


def held(partition: int) -> int:
    """Return the events collector ``partition`` holds once its mailbox is read (a call)."""
    pid = PartitionSupervisor.route(COLLECTORS, partition)
    assert pid is not None, "no collector runs"
    buffer: Buffer = GenServer.get_state(pid, WAIT)
    return buffer.count
