"""Widgets: the Livebook's Kino views, for JupyterLab.

Four views, the Python counterparts of what a Livebook reader sees::

    from summarizer.widgets import Dashboard, mermaid_seq_trace, mermaid_sup_tree, users_table

    users_table(TEST_USERS)  # Kino.DataTable: sortable (users.py)
    dash = Dashboard("SummarizerSupervisor")  # counts, chart, tree, log, live (dashboard.py)
    mermaid_sup_tree(sup)  # Kino.Process.sup_tree: 'graph TD ...' (sup_tree.py)
    mermaid_seq_trace(t)  # Kino.Process.render_seq_trace: 'sequenceDiagram ...' (seq_trace.py)

The two Mermaid views return text and need no ipywidgets: importing them does not
import it. The table and the dashboard are ipywidgets, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .seq_trace import mermaid_seq_trace
from .sup_tree import mermaid_sup_tree

if TYPE_CHECKING:
    from .dashboard import Dashboard
    from .users import UsersTable, users_table

__all__ = ["Dashboard", "UsersTable", "mermaid_seq_trace", "mermaid_sup_tree", "users_table"]

_LAZY = {"Dashboard": "dashboard", "UsersTable": "users", "users_table": "users"}


def __getattr__(name: str) -> Any:
    """Import the ipywidgets views on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
