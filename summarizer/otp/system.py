"""System facts the runtime sizes itself by, as Elixir's ``System``.

::

    schedulers_online()  # 2 on a 2-core machine: the default partitions and concurrency
"""

from __future__ import annotations

import os

__all__ = ["schedulers_online"]


def schedulers_online() -> int:
    """Return how many CPUs this process may run on, like ``System.schedulers_online/0``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
