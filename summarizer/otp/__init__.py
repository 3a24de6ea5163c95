"""A small Erlang/OTP runtime on Python threads.

Each process is one named OS thread reading its own mailbox; supervisors
restart them as OTP's do::

    from summarizer.otp import GenServer, Ok, Reply, Supervisor


    class Pong(GenServer):
        def handle_call(self, request, from_, state):
            return Reply("pong", state)


    sup = Supervisor.start_link([Pong], strategy="one_for_one")
    [(_id, pid, _type, _modules)] = Supervisor.which_children(sup)
    GenServer.call(pid, "ping")  # "pong"

Children can come and go while a tree runs (``Supervisor.start_child``,
`DynamicSupervisor`), and any thread, the notebook's too, can wait for a
process to end::

    ref = Process.monitor(pid)
    Supervisor.terminate_child(sup, "Pong")
    ref.wait(5.0)  # ("DOWN", ref, "process", pid, "shutdown")
    Supervisor.stop(sup)
"""

from .child_spec import ChildSpec
from .dynamic_supervisor import DynamicSupervisor
from .errors import (
    AlreadyStarted,
    CallTimeout,
    ExitError,
    NoProcess,
    OtpError,
    StartError,
    SupervisorError,
)
from .gen_server import From, GenServer, Ignore, NoReply, Ok, Reply, Stop
from .mailbox import Mailbox, MailboxStats, Overflow
from .partition_supervisor import PartitionStats, PartitionSupervisor
from .phash2 import phash2
from .process import MonitorRef, Pid, Process, TimerRef
from .supervisor import Child, Supervisor, SupervisorFlags
from .system import schedulers_online
from .task import TaskTimeout, async_stream
from .trace import Trace, trace

__all__ = [
    "AlreadyStarted",
    "CallTimeout",
    "Child",
    "ChildSpec",
    "DynamicSupervisor",
    "ExitError",
    "From",
    "GenServer",
    "Ignore",
    "Mailbox",
    "MailboxStats",
    "MonitorRef",
    "NoProcess",
    "NoReply",
    "Ok",
    "OtpError",
    "Overflow",
    "PartitionStats",
    "PartitionSupervisor",
    "Pid",
    "Process",
    "Reply",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "SupervisorFlags",
    "TaskTimeout",
    "TimerRef",
    "Trace",
    "async_stream",
    "phash2",
    "schedulers_online",
    "trace",
]
