"""The supervision tree as Mermaid text, like ``Kino.Process.sup_tree``; needs no ipywidgets.

::

    sup = SummarizerSupervisor.start_link(partitions=3)
    text = mermaid_sup_tree(sup)  # 'graph TD ...', one node per process with its pid
    Markdown(f"```mermaid\n{text}\n```")  # JupyterLab draws it

Supervisors are violet, workers blue, children that are not running grey (Kino's
palette); children are drawn in start order.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..otp import OtpError, Pid, Process, Supervisor
from ..otp.errors import NoProcess

__all__ = ["CLASS_DEFS", "mermaid_sup_tree"]

# Kino.Process's palette: supervisors violet, workers blue, children not running grey.
CLASS_DEFS = (
    "classDef root fill:#c4b5fd,stroke:#374151,stroke-width:3px",
    "classDef supervisor fill:#c4b5fd,stroke:#374151,stroke-width:1px",
    "classDef worker fill:#93c5fd,stroke:#374151,stroke-width:1px",
    "classDef notstarted color:#777,fill:#d9d9d9,stroke:#777,stroke-dasharray:4 2",
)


def _label(text: str) -> str:
    """Quote ``text`` as a Mermaid node label."""
    return '"' + text.replace('"', "#quot;") + '"'


def mermaid_sup_tree(sup: Any) -> str:
    """Return the supervision tree under ``sup`` as Mermaid ``graph TD`` text.

    Like ``Kino.Process.sup_tree``: one node per process, labelled with its
    registered name (else its child id, after its module when the id is a
    partition number) and its pid; supervisors and workers styled apart;
    children that are not running greyed. Children are drawn in start order.
    """
    root = sup if isinstance(sup, Pid) else Process.whereis(sup)
    if root is None:
        raise NoProcess(sup)
    names = {}
    for name in Process.registered():
        pid = Process.whereis(name)
        if pid is not None:
            names[pid] = name
    counter = itertools.count()
    nodes: list[str] = []
    edges: list[str] = []

    def node(title: str, pid: Any, kind: str) -> str:
        nid = f"n{next(counter)}"
        if isinstance(pid, Pid):
            text, style = f"{names.get(pid, title)}<br/>{pid!r}", kind
        else:
            text, style = f"{title}<br/>{pid or 'undefined'}", "notstarted"
        nodes.append(f"    {nid}[{_label(text)}]:::{style}")
        return nid

    def walk(parent: str, pid: Pid) -> None:
        try:
            children = Supervisor.which_children(pid)
        except OtpError:
            return  # it died since its parent listed it; the next snapshot shows why
        for child in reversed(children):
            title = str(child.id)
            if isinstance(child.id, int) and child.modules:
                title = f"{child.modules[0]} {child.id}"
            nid = node(title, child.pid, child.type)
            edges.append(f"    {parent} --> {nid}")
            if child.type == "supervisor" and isinstance(child.pid, Pid):
                walk(nid, child.pid)

    walk(node(names.get(root, "supervisor"), root, "root"), root)
    return "\n".join(["graph TD", *nodes, *edges, *(f"    {c}" for c in CLASS_DEFS)])
