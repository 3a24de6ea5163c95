"""The dashboard: flushed counts, a chart, the supervision tree and the log, live.

::

    dash = Dashboard("SummarizerSupervisor", users=TEST_USERS)
    sup = SummarizerSupervisor.start_link(flush_interval=1.0, on_flush=dash.on_flush)
    dash.show()  # display it: it updates itself while events are flushed
    ...
    Supervisor.stop(sup)
    dash.close()  # stop updating; the views keep their last state, tree drawing too

Threads. A widget is not safe to write from several threads at once, and the
flushers are many threads. So the dashboard has one writer: flushers
(``on_flush``) and the log handler only put items into a queue, and one daemon
thread, ``summarizer-dashboard``, drains it, keeps the counts and redraws the
widgets at most every ``redraw_every`` seconds. The same thread polls the tree
every ``tree_every`` seconds and redraws it when it changed (a restarted
process has a new pid). Cells never receive a background thread's output.

Static view. The output also carries the counts as static HTML, for a notebook
that is not trusted (see `summarizer.widgets._html`); ``close`` redraws that
output, shown with `show`, with the last counts.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from queue import Empty, SimpleQueue
from typing import Any

import ipywidgets as widgets

from ..otp import OtpError
from ..user import User
from ._html import with_html
from .sup_tree import mermaid_sup_tree

__all__ = ["Dashboard"]

log = logging.getLogger("summarizer")


_STOP = ("stop",)

_logging_lock = threading.Lock()
_logging_users: list[logging.Handler] = []
_logging_saved: tuple[bool, int, int] = (True, logging.NOTSET, logging.WARNING)


def _attach(handler: logging.Handler, level: int) -> None:
    """Send ``summarizer`` records to ``handler`` instead of the root logger's handlers.

    The logger's level is lowered to ``level`` if needed (never raised) until the
    last handler is detached.
    """
    global _logging_saved
    with _logging_lock:
        if not _logging_users:
            _logging_saved = (log.propagate, log.level, log.getEffectiveLevel())
            log.propagate = False  # background threads must never print into a cell
        handler.setLevel(level)
        _logging_users.append(handler)
        log.setLevel(min(_logging_saved[2], *(h.level for h in _logging_users)))
        log.addHandler(handler)


def _detach(handler: logging.Handler) -> None:
    """Undo `_attach`; the last one out restores the logger's propagate and level."""
    with _logging_lock:
        log.removeHandler(handler)
        if handler not in _logging_users:
            return
        _logging_users.remove(handler)
        if _logging_users:
            log.setLevel(min(_logging_saved[2], *(h.level for h in _logging_users)))
        else:
            log.propagate, level, _ = _logging_saved
            log.setLevel(level)


class _QueueHandler(logging.Handler):
    """Put each formatted record into the dashboard's queue; never block."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        super().__init__()
        self._put = put
        self.setFormatter(
            logging.Formatter("%(asctime)s.%(msecs)03d [%(levelname)s] %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._put(("log", self.format(record)))
        except Exception:
            self.handleError(record)


class Dashboard:
    """Show flushed counts, the supervision tree and the log, live, in one widget.

    Pass `on_flush` as ``SummarizerSupervisor.start_link(on_flush=...)`` and
    display the dashboard. ``users`` give names to user ids; ``sup`` is the
    tree to draw. Redraws are throttled to one per ``redraw_every`` seconds;
    the chart shows events flushed per ``bucket`` seconds, the last ``bars``.
    """

    def __init__(
        self,
        sup: Any = "SummarizerSupervisor",
        users: Iterable[User] = (),
        *,
        redraw_every: float = 0.1,
        tree_every: float = 0.5,
        log_size: int = 200,
        log_level: int = logging.INFO,
        bucket: float = 1.0,
        bars: int = 30,
    ) -> None:
        for option, value in (
            ("redraw_every", redraw_every),
            ("tree_every", tree_every),
            ("bucket", bucket),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{option} must be a positive number, got: {value!r}")
        for option, value in (("log_size", log_size), ("bars", bars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got: {value!r}")
        self._sup = sup
        self._names = {u.id: u.name for u in users}
        self._redraw_every = float(redraw_every)
        self._tree_every = float(tree_every)
        self._bucket = float(bucket)
        self._bars = bars
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._changed = threading.Condition()  # guards the counts below
        self._totals: dict[Any, int] = {}
        self._partitions: dict[int, int] = {}
        self._flushes = 0
        self._history: dict[int, int] = {}  # bucket number -> events flushed in it
        self._log: deque[str] = deque(maxlen=log_size)
        self._tree = ""
        self._redraws = 0
        self._tree_redraws = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._handle: Any = None  # IPython's DisplayHandle, once shown
        self._started = time.monotonic()

        self.counts = widgets.HTML(self._counts_html())
        self.tree = widgets.Output()
        self.tree.add_class("summarizer-sup-tree")
        self.logs = widgets.HTML(self._log_html())
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [
                        self.counts,
                        widgets.VBox([widgets.HTML("<b>Supervision tree</b>"), self.tree]),
                    ]
                ),
                widgets.HTML("<b>Log</b> (logger <code>summarizer</code>)"),
                self.logs,
            ]
        )
        self._handler = _QueueHandler(self._queue.put)
        _attach(self._handler, log_level)
        self._thread = threading.Thread(target=self._run, name="summarizer-dashboard", daemon=True)
        self._thread.start()

    # -- producers: any thread ------------------------------------------------

    def on_flush(self, partition: int, data: Mapping[Any, int]) -> None:
        """Count one flush of ``partition`` (pass as ``on_flush``; any thread)."""
        if not self._closed:
            self._queue.put(("flush", partition, dict(data), time.monotonic()))

    # -- plain-data accessors -------------------------------------------------

    def totals(self) -> dict[Any, int]:
        """Return the events flushed per user id so far."""
        with self._changed:
            return dict(self._totals)

    def partition_totals(self) -> dict[int, int]:
        """Return the events flushed per partition so far."""
        with self._changed:
            return dict(self._partitions)

    def total(self) -> int:
        """Return the events flushed so far, all users."""
        with self._changed:
            return sum(self._totals.values())

    def flushes(self) -> int:
        """Return how many non-empty flushes were counted."""
        with self._changed:
            return self._flushes

    def log_lines(self) -> list[str]:
        """Return the log lines the panel holds, oldest first."""
        with self._changed:
            return list(self._log)

    @property
    def tree_text(self) -> str:
        """Return the Mermaid text the tree view shows now."""
        with self._changed:
            return self._tree

    @property
    def redraws(self) -> int:
        """Return how many times the counts and log views were redrawn."""
        with self._changed:
            return self._redraws

    @property
    def tree_redraws(self) -> int:
        """Return how many times the tree view was redrawn."""
        with self._changed:
            return self._tree_redraws

    @property
    def closed(self) -> bool:
        """Return whether `close` was called."""
        return self._closed

    def wait(self, predicate: Callable[[Dashboard], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds, re-checked after each update; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every item queued before this call is counted and drawn."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(("sync", done))
        return done.wait(timeout)

    def close(self) -> None:
        """Stop the updater thread and detach the log panel; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        _detach(self._handler)
        if threading.current_thread() is not self._thread:
            self._thread.join()
            if self._handle is not None:  # the static view too shows the last counts
                self._handle.update(self)

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def show(self) -> None:
        """Display the dashboard in the running cell; `close` redraws this output."""
        from IPython.display import display

        self._handle = display(self, display_id=True)  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        with self._changed:
            static = self._counts_html(chart=False) + self._log_html()  # sanitizers drop SVG
        return with_html(self.widget, static, repr(self), **kwargs)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live"
        return f"Dashboard({self._sup!r}, {state}, {self.total()} events flushed)"

    # -- the updater thread: the only writer of the widgets --------------------

    def _run(self) -> None:
        get = self._queue.get
        next_draw = next_tree = time.monotonic()
        dirty = False
        while True:
            wake = min(next_tree, next_draw) if dirty else next_tree
            syncs: list[threading.Event] = []
            stop = False
            try:
                item = get(timeout=max(0.0, wake - time.monotonic()))
            except Empty:
                item = None
            with self._changed:
                while item is not None:
                    kind = item[0]
                    if kind == "flush":
                        self._count(item[1], item[2], item[3])
                        dirty = True
                    elif kind == "log":
                        self._log.append(item[1])
                        dirty = True
                    elif kind == "sync":
                        syncs.append(item[1])
                    else:  # stop: finish this batch, so a sync queued with it is answered
                        stop = True
                    try:
                        item = self._queue.get_nowait()
                    except Empty:
                        item = None
            now = time.monotonic()
            if (dirty and now >= next_draw) or syncs or stop:
                self._draw()
                dirty = False
                next_draw = now + self._redraw_every
            if now >= next_tree or stop:
                self._draw_tree()
                next_tree = time.monotonic() + self._tree_every
            with self._changed:
                self._changed.notify_all()
            for done in syncs:
                done.set()
            if stop:
                return

    def _count(self, partition: int, data: Mapping[Any, int], at: float) -> None:
        n = 0
        for user_id, count in data.items():
            self._totals[user_id] = self._totals.get(user_id, 0) + count
            n += count
        self._partitions[partition] = self._partitions.get(partition, 0) + n
        self._flushes += 1
        slot = int((at - self._started) / self._bucket)
        self._history[slot] = self._history.get(slot, 0) + n
        for old in [s for s in self._history if s <= slot - self._bars]:
            del self._history[old]

    def _draw(self) -> None:
        try:
            self.counts.value = self._counts_html()
            self.logs.value = self._log_html()
        except Exception as e:  # a broken view must not stop the counting
            with self._changed:
                self._log.append(f"dashboard: redraw failed: {e!r}")
        with self._changed:
            self._redraws += 1

    def _draw_tree(self) -> None:
        try:
            text = mermaid_sup_tree(self._sup)
        except OtpError:
            text = ""
        except Exception as e:  # a broken view must not stop the counting
            with self._changed:
                self._log.append(f"dashboard: drawing the tree failed: {e!r}")
            return
        if text == self._tree and self._tree_redraws:
            return
        if not text and self._tree:
            return  # the tree stopped: keep its last drawing
        if text:
            markdown = f"```mermaid\n{text}\n```"
        else:
            markdown = f"*{html.escape(str(self._sup))} is not running*"
        # One assignment replaces the whole output: no `with out:` from a thread.
        self.tree.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/markdown": markdown, "text/plain": text or markdown},
                "metadata": {},
            },
        )
        with self._changed:
            self._tree = text
            self._tree_redraws += 1

    # -- rendering (updater thread) ------------------------------------------

    def _counts_html(self, chart: bool = True) -> str:
        total = sum(self._totals.values())
        names = self._names

        def name(uid: Any) -> str:
            return f"<td>{html.escape(names.get(uid, ''))}</td>" if names else ""

        users = "".join(
            f"<tr><td>{html.escape(str(uid))}</td>{name(uid)}<td>{n:,}</td></tr>"
            for uid, n in sorted(self._totals.items(), key=lambda kv: str(kv[0]))
        )
        parts = "".join(
            f"<tr><td>{p}</td><td>{n:,}</td></tr>" for p, n in sorted(self._partitions.items())
        )
        state = "closed" if self._closed else "live"
        return (
            '<div class="summarizer-live-counts">'
            f"<b>Flushed events</b> ({state}): <b>{total:,}</b> in {self._flushes:,} "
            f"flush{'' if self._flushes == 1 else 'es'}"
            "<div style='display:flex;gap:1.5em;align-items:flex-start'>"
            f"<table><thead><tr><th>user</th>{'<th>name</th>' if names else ''}"
            "<th>events</th></tr></thead>"
            f"<tbody>{users}</tbody></table>"
            "<table><thead><tr><th>partition</th><th>events</th></tr></thead>"
            f"<tbody>{parts}</tbody></table></div>"
            f"{self._chart_svg() if chart else ''}</div>"
        )

    def _chart_svg(self, width: int = 300, height: int = 60) -> str:
        now = int((time.monotonic() - self._started) / self._bucket)
        slots = range(max(0, now - self._bars + 1), now + 1)
        values = [self._history.get(s, 0) for s in slots]
        top = max(values, default=0) or 1
        bar = width / self._bars
        rects = "".join(
            f'<rect x="{i * bar:.1f}" y="{height - v / top * height:.1f}" '
            f'width="{max(bar - 1, 1):.1f}" height="{v / top * height:.1f}" fill="#6366f1">'
            f"<title>{v:,} events</title></rect>"
            for i, v in enumerate(values)
        )
        caption = f"events flushed per {self._bucket:g} s (last {self._bars}; max {max(values):,})"
        return (
            f'<svg class="summarizer-chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="background:#f3f4f6">{rects}</svg>'
            f"<div><small>{caption}</small></div>"
        )

    def _log_html(self) -> str:
        lines = html.escape("\n".join(self._log)) or "(no log lines yet)"
        return (
            "<div style='max-height:14em;overflow:auto;display:flex;"
            "flex-direction:column-reverse'>"
            "<pre class='summarizer-log' style='margin:0;flex:none;overflow:visible;"
            f"font-size:85%'>{lines}</pre></div>"
        )
