"""summarizer: Erlang/OTP supervision on Python threads, and an event summarizer built on it.

The Livebook "Supervisor - replication", in Python::

    from summarizer import EventCollector, SummarizerSupervisor, User
    from summarizer.otp import Supervisor

    sup = SummarizerSupervisor.start_link(flush_interval=1.0)
    EventCollector.record_event(User(id="1", name="MegaCorp", plan="enterprise"))
    Supervisor.stop(sup)  # flushes every buffer before it returns

The generic runtime (GenServer, Supervisor, PartitionSupervisor, async_stream,
phash2) lives in `summarizer.otp`.
"""

import logging

from .accounting import Accounting, PartitionAccount
from .collector import Buffer, EventCollector
from .delivery import RetryPolicy, SinkAccount
from .flusher import EventFlusher
from .options import COLLECTORS, FLUSHERS, TreeOptions
from .outlet import Outlet
from .postgres import PostgresSink
from .recorder import Recorder
from .sinks import LogSink, MemorySink, SQLiteSink
from .tree import SummarizerSupervisor
from .user import User

__all__ = [
    "COLLECTORS",
    "FLUSHERS",
    "Accounting",
    "Buffer",
    "EventCollector",
    "EventFlusher",
    "LogSink",
    "MemorySink",
    "Outlet",
    "PartitionAccount",
    "PostgresSink",
    "Recorder",
    "RetryPolicy",
    "SQLiteSink",
    "SinkAccount",
    "SummarizerSupervisor",
    "TreeOptions",
    "User",
]

# A library logs; the application decides where it goes (the notebook: a widget).
logging.getLogger("summarizer").addHandler(logging.NullHandler())
