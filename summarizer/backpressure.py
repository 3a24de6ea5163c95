"""Backpressure: bound how many casts wait in a collector's mailbox.

OTP mailboxes are unbounded: when producers outpace a process, its mailbox,
and memory, grow without limit. ``max_mailbox`` bounds them::

    SummarizerSupervisor.start_link(max_mailbox=10_000, overflow="block")

A producer looks at the mailbox's length (one C call) before it casts: below
the bound it casts at once; at the bound it waits for room (``"block"``) or
drops the event and counts it (``"drop_newest"``). The collector wakes waiting
producers once its mailbox has drained to half the bound, so they resume in a
batch. Producers that look at the same moment may each add one event, so a
mailbox can exceed the bound by up to one event per producer thread.
"""

from __future__ import annotations

import threading
from queue import SimpleQueue
from typing import Any

__all__ = ["Room"]


class Room:
    """Make producers wait for room in one collector's mailbox."""

    __slots__ = ("_cond", "_low", "limit", "mailbox", "waiting")

    def __init__(self, mailbox: SimpleQueue[Any], limit: int) -> None:
        self.mailbox = mailbox
        self.limit = limit
        self._low = limit // 2
        self._cond = threading.Condition(threading.Lock())
        self.waiting = 0

    def full(self) -> bool:
        """Return whether the mailbox holds ``limit`` casts or more."""
        return self.mailbox.qsize() >= self.limit

    def wait(self, alive: Any) -> None:
        """Wait until the mailbox has room, or ``alive()`` turns false (it died)."""
        with self._cond:
            self.waiting += 1
            try:
                while self.full() and alive():
                    self._cond.wait(0.05)  # a missed wake-up costs at most this
            finally:
                self.waiting -= 1

    def taken(self) -> None:
        """Wake the waiting producers once the mailbox has drained to half the bound."""
        if self.waiting and self.mailbox.qsize() <= self._low:
            with self._cond:
                self._cond.notify_all()
