"""The users table: `User` records in a table sortable by any column, like Kino.DataTable.

::

    table = users_table([User("1", "MegaCorp", "enterprise"), User("2", "Gundam", "basic")])
    table.sort("name", ascending=False)
    table.frame()  # the rows in the order shown, as a DataFrame
    table  # display it: a column dropdown, an order toggle, the table

Its output carries the table as static HTML too, so a notebook that is not trusted
still shows the rows (see `summarizer.widgets._html`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..user import User
from ._html import with_html

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["USER_COLUMNS", "UsersTable", "users_table"]

USER_COLUMNS = ("id", "name", "plan")


def _users_frame(users: Iterable[User]) -> pd.DataFrame:
    """Return one row per user: id, name, plan."""
    import pandas as pd

    rows: list[tuple[str | int, str, str]] = []
    for user in users:
        if not isinstance(user, User):
            raise TypeError(f"users must be User records, got: {user!r}")
        rows.append((user.id, user.name, user.plan))
    frame: pd.DataFrame = pd.DataFrame(rows, columns=list(USER_COLUMNS))
    return frame


def _sort_key(column: pd.Series) -> pd.Series:
    """Compare as text when a column mixes types (ids may be str or int)."""
    return column.astype(str) if column.map(type).nunique() > 1 else column


class UsersTable(widgets.VBox):  # type: ignore[misc]
    """Show User records in a table sortable by any column, like Kino.DataTable."""

    def __init__(self, users: Iterable[User]) -> None:
        self._frame = _users_frame(users)
        self.column = widgets.Dropdown(
            options=list(USER_COLUMNS), value="id", description="Sort by"
        )
        self.order = widgets.ToggleButtons(
            options=[("ascending", True), ("descending", False)], value=True
        )
        self.table = widgets.HTML()
        super().__init__([widgets.HBox([self.column, self.order]), self.table])
        self.column.observe(self._redraw, names="value")
        self.order.observe(self._redraw, names="value")
        self._redraw()

    def frame(self) -> pd.DataFrame:
        """Return the rows in the order shown."""
        column: str = self.column.value
        ascending: bool = self.order.value
        frame: pd.DataFrame = self._frame.sort_values(
            column, ascending=ascending, kind="stable", ignore_index=True, key=_sort_key
        )
        return frame

    def sort(self, column: str, ascending: bool = True) -> None:
        """Sort by ``column``, as choosing it in the dropdown does."""
        if column not in USER_COLUMNS:
            raise ValueError(f"column must be one of {', '.join(USER_COLUMNS)}, got: {column!r}")
        self.column.value = column
        self.order.value = bool(ascending)
        self._redraw()

    def html(self) -> str:
        """Return the table as shown, as static HTML."""
        frame = self.frame()
        table = frame.to_html(index=False, classes="summarizer-users", border=0)
        return f"{table}<div><small>{len(frame)} rows</small></div>"

    def _redraw(self, _change: Any = None) -> None:
        self.table.value = self.html()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        plain = f"UsersTable({len(self._frame)} users, sorted by {self.column.value})"
        return with_html(super(), self.html(), plain, **kwargs)


def users_table(users: Iterable[User]) -> UsersTable:
    """Return a table widget of ``users`` (id, name, plan), sortable by any column."""
    return UsersTable(users)
