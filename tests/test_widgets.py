"""Widgets: the users table sorts, the Mermaid tree tracks restarts, the dashboard counts right.

No kernel: ipywidgets run without a front end here, so every view is checked
through its HTML value or its plain-data accessors. Waits are bounded polls of
state (``which_children``, ``Dashboard.wait``), never sleeps.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import COLLECTORS, WAIT

from summarizer import EventCollector, MemorySink, SummarizerSupervisor, User
from summarizer.otp import GenServer, NoProcess, NoReply, Pid, Process, Stop, Supervisor
from summarizer.user import TEST_USERS
from summarizer.widgets import Dashboard, mermaid_sup_tree, users_table

pytestmark = pytest.mark.usefixtures("no_leaks")


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = WAIT) -> Any:
    """Call ``fetch`` until ``done(value)``; return the value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value: {value!r}"


def rows(html: str) -> list[list[str]]:
    """Return the cell texts of each <tr> in the <tbody> of ``html``."""
    [body] = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)
    return [
        re.findall(r"<td>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def dashboards() -> Iterator[Callable[..., Dashboard]]:
    """Make dashboards; close them after the test."""
    made: list[Dashboard] = []

    def make(*args: Any, **options: Any) -> Dashboard:
        dash = Dashboard(*args, **options)
        made.append(dash)
        return dash

    yield make
    for dash in made:
        dash.close()


def collector(partition: int) -> Any:
    """Return what the collectors' supervisor holds for ``partition`` now."""
    [pid] = [c.pid for c in Supervisor.which_children(COLLECTORS) if c.id == partition]
    return pid


# -- users_table ---------------------------------------------------------------------


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("column", ["id", "name", "plan"])
def test_users_table_sorts_by_each_column(column: str, ascending: bool) -> None:
    table = users_table(TEST_USERS)
    table.sort(column, ascending)
    expected = sorted(TEST_USERS, key=lambda u: getattr(u, column), reverse=not ascending)
    if column == "plan":  # ties keep the input order, as a stable sort does
        plans = sorted({u.plan for u in TEST_USERS}, reverse=not ascending)
        expected = [u for plan in plans for u in TEST_USERS if u.plan == plan]
    assert rows(table.table.value) == [[u.id, u.name, u.plan] for u in expected]
    assert list(table.frame()["id"]) == [u.id for u in expected]


def test_users_table_redraws_when_the_controls_change() -> None:
    table = users_table(TEST_USERS)
    first = lambda: rows(table.table.value)[0][1]  # noqa: E731
    assert first() == "MegaCorp"  # by id, ascending
    table.column.value = "name"
    assert first() == "CodeTogether"
    table.order.value = False
    assert first() == "MegaCorp"


def test_users_table_has_a_findable_table_and_checks_its_input() -> None:
    html = users_table(TEST_USERS).table.value
    assert re.search(r'<table[^>]*class="[^"]*\bsummarizer-users\b', html)
    assert "5 rows" in html
    with pytest.raises(TypeError, match="got: 'MegaCorp'"):
        users_table(["MegaCorp"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="got: 'email'"):
        users_table(TEST_USERS).sort("email")


def test_users_table_sorts_mixed_ids_as_text() -> None:
    table = users_table([User(10, "a", "free"), User("9", "b", "free")])
    assert [r[0] for r in rows(table.table.value)] == ["10", "9"]


# -- mermaid_sup_tree ----------------------------------------------------------------


def every_child(sup: Any) -> Iterator[tuple[Any, Any, str]]:
    """Yield ``(id, pid, type)`` for every process under ``sup``, recursively."""
    for child in Supervisor.which_children(sup):
        yield child.id, child.pid, child.type
        if child.type == "supervisor" and isinstance(child.pid, Pid):
            yield from every_child(child.pid)


def node_line(text: str, pid: Pid) -> str:
    """Return the node definition line that shows ``pid``."""
    [line] = [line for line in text.splitlines() if f"<br/>{pid!r}" in line]
    return line


def test_mermaid_sup_tree_draws_every_process_with_its_pid(tree: Callable[..., Pid]) -> None:
    sup = tree(sinks=[MemorySink()])
    text = mermaid_sup_tree(sup)
    assert text.splitlines()[0] == "graph TD"
    assert node_line(text, sup).endswith(":::root")
    assert "SummarizerSupervisor<br/>" in node_line(text, sup)
    children = list(every_child(sup))
    assert len(children) == 3 + 1 + 3 + 3  # supervisors, one sink's worker, 3 partitions
    for child_id, pid, kind in children:
        line = node_line(text, pid)
        assert line.endswith(f":::{kind}")
        if kind == "worker":
            assert re.search(rf'"(EventCollector|EventFlusher|SinkDelivery) {child_id}<br/>', line)
        else:
            assert f'"{child_id}<br/>' in line
    assert text.count(" --> ") == len(children)
    for kind in ("root", "supervisor", "worker", "notstarted"):
        assert f"classDef {kind} " in text
    assert mermaid_sup_tree("SummarizerSupervisor") == text  # by name; deterministic


def test_mermaid_sup_tree_draws_children_in_start_order(tree: Callable[..., Pid]) -> None:
    text = mermaid_sup_tree(tree(sinks=[MemorySink(), MemorySink()]))
    labels = re.findall(r'\["([^<]*)<br/>', text)
    assert labels == [
        "SummarizerSupervisor",
        "DeliverySupervisor",
        "SinkDelivery 0",
        "SinkDelivery 1",
        "EventCollectorPartitionSupervisor",
        "EventCollector 0",
        "EventCollector 1",
        "EventCollector 2",
        "EventFlusherPartitionSupervisor",
        "EventFlusher 0",
        "EventFlusher 1",
        "EventFlusher 2",
    ]


def test_mermaid_sup_tree_shows_the_restarted_collector(tree: Callable[..., Pid]) -> None:
    sup = tree()
    old = collector(0)
    before = mermaid_sup_tree(sup)
    Process.exit(old, "kill")
    new = until(lambda: collector(0), lambda p: isinstance(p, Pid) and p != old)
    after = mermaid_sup_tree(sup)
    assert after != before
    assert repr(old) not in after
    assert node_line(after, new) == node_line(before, old).replace(repr(old), repr(new))


class Quitter(GenServer):
    """Stop normally on any cast."""

    def handle_cast(self, request: Any, state: Any) -> NoReply | Stop:
        return Stop("normal", state)


def test_mermaid_sup_tree_greys_a_child_that_is_not_running() -> None:
    spec = {"id": "once", "start": (Quitter.start_link, (None,)), "restart": "transient"}
    sup = Supervisor.start_link([spec])
    try:
        [(_, pid, _, _)] = Supervisor.which_children(sup)
        GenServer.cast(pid, "quit")
        until(lambda: Supervisor.which_children(sup)[0].pid, lambda p: p is None)
        text = mermaid_sup_tree(sup)
        assert '"once<br/>undefined"]:::notstarted' in text
        assert node_line(text, sup).endswith(":::root")
    finally:
        Supervisor.stop(sup)


def test_mermaid_sup_tree_of_nothing_raises() -> None:
    with pytest.raises(NoProcess):
        mermaid_sup_tree("NoSuchSupervisor")


# -- Dashboard -----------------------------------------------------------------------


def test_on_flush_from_many_threads_converges_to_the_totals(
    dashboards: Callable[..., Dashboard],
) -> None:
    dash = dashboards(users=TEST_USERS)
    threads, per_thread = 8, 250
    barrier = threading.Barrier(threads)

    def flusher(i: int) -> None:
        barrier.wait()
        for _ in range(per_thread):
            dash.on_flush(i % 3, {"1": 1, "4": 2})

    workers = [threading.Thread(target=flusher, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    expected = threads * per_thread * 3
    assert dash.wait(lambda d: d.total() == expected, WAIT)
    assert dash.totals() == {"1": threads * per_thread, "4": 2 * threads * per_thread}
    assert dash.partition_totals() == {0: 3 * 750, 1: 3 * 750, 2: 3 * 500}
    assert dash.flushes() == threads * per_thread
    assert dash.sync(WAIT)
    html = dash.counts.value
    assert 'class="summarizer-live-counts"' in html
    assert "<b>6,000</b> in 2,000 flushes" in html
    assert "<td>4</td><td>CodeTogether</td><td>4,000</td>" in html
    assert "<svg" in html


def test_redraws_are_throttled(dashboards: Callable[..., Dashboard]) -> None:
    dash = dashboards(redraw_every=60.0)
    for i in range(1000):
        dash.on_flush(0, {"1": i})
    assert dash.sync(WAIT)
    assert dash.total() == sum(range(1000))
    assert 1 <= dash.redraws <= 2  # one for the first batch maybe, one for the sync


def test_the_dashboard_counts_a_real_tree_and_redraws_its_restarts(
    tree: Callable[..., Pid], dashboards: Callable[..., Dashboard]
) -> None:
    dash = dashboards(users=TEST_USERS, tree_every=0.05)
    sup = tree(on_flush=dash.on_flush)
    for user in TEST_USERS * 20:
        EventCollector.record_event(user)
    old = collector(1)
    assert dash.wait(lambda d: repr(old) in d.tree_text, WAIT)
    drawn = dash.tree_redraws
    Process.exit(old, "kill")  # users "3" and "4" live on partition 1: their 40 events die
    new = until(lambda: collector(1), lambda p: isinstance(p, Pid) and p != old)
    assert dash.wait(lambda d: repr(new) in d.tree_text, WAIT)
    assert repr(old) not in dash.tree_text
    assert dash.tree_redraws > drawn
    assert dash.tree.outputs[0]["data"]["text/markdown"].startswith("```mermaid\ngraph TD\n")
    assert "summarizer-sup-tree" in dash.tree._dom_classes
    Supervisor.stop(sup)  # flushes partitions 0 and 2 through on_flush before it returns
    assert dash.sync(WAIT)
    assert dash.totals() == {"1": 20, "2": 20, "5": 20}
    assert SummarizerSupervisor.accounting().lost == {"killed": 40}
    dash.close()  # its last look at the tree finds it stopped
    assert repr(new) in dash.tree_text  # the closed dashboard keeps the last drawing
    assert dash.tree.outputs[0]["data"]["text/markdown"].startswith("```mermaid\ngraph TD\n")


def test_the_log_panel_receives_summarizer_log_lines(dashboards: Callable[..., Dashboard]) -> None:
    logger = logging.getLogger("summarizer")
    saved = (logger.propagate, logger.level)
    dash = dashboards()
    assert logger.propagate is False  # nothing reaches a root handler that prints into cells
    assert logger.isEnabledFor(logging.INFO)
    logger.info("hello from the main thread")
    thread = threading.Thread(
        target=lambda: logging.getLogger("summarizer.sub").warning("hello <from> a thread")
    )
    thread.start()
    thread.join()
    logging.getLogger("other").warning("not for the panel")
    assert dash.sync(WAIT)
    lines = dash.log_lines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "[INFO] hello from the main thread",
        "[WARNING] hello <from> a thread",
    ]
    assert "class='summarizer-log'" in dash.logs.value
    assert "hello &lt;from&gt; a thread" in dash.logs.value
    dash.close()
    assert (logger.propagate, logger.level) == saved
    logger.info("after close")
    assert dash.log_lines() == lines


def test_the_log_panel_never_raises_the_loggers_level(
    dashboards: Callable[..., Dashboard],
) -> None:
    logger = logging.getLogger("summarizer")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        dash = dashboards(log_level=logging.INFO)
        assert logger.level == logging.DEBUG
        logger.debug("for other handlers only")
        logger.info("for the panel")
        assert dash.sync(WAIT)
        assert [line.split(" ", 1)[1] for line in dash.log_lines()] == ["[INFO] for the panel"]
        dash.close()
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(saved)


def test_the_log_panel_keeps_the_last_lines(dashboards: Callable[..., Dashboard]) -> None:
    dash = dashboards(log_size=5)
    for i in range(20):
        logging.getLogger("summarizer").warning("line %d", i)
    assert dash.sync(WAIT)
    assert [line.rsplit(" ", 1)[1] for line in dash.log_lines()] == [str(i) for i in range(15, 20)]


def test_close_stops_the_thread_and_is_idempotent() -> None:
    before = set(threading.enumerate())
    dash = Dashboard(redraw_every=0.01, tree_every=0.01)
    [thread] = [t for t in set(threading.enumerate()) - before]
    assert thread.name == "summarizer-dashboard"
    assert thread.daemon
    dash.on_flush(0, {"1": 3})
    dash.close()
    dash.close()
    assert not thread.is_alive()
    assert set(threading.enumerate()) - before == set()
    assert dash.closed
    assert dash.total() == 3  # what was queued before close was counted
    dash.on_flush(0, {"1": 3})  # ignored once closed
    assert not dash.sync(0.1)
    assert dash.total() == 3
    assert "(closed)" in dash.counts.value
    assert repr(dash) == "Dashboard('SummarizerSupervisor', closed, 3 events flushed)"


def test_the_dashboard_is_displayable_and_checks_its_options() -> None:
    with Dashboard() as dash:
        bundle = dash._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert dash.wait(lambda d: d.tree_redraws >= 1, WAIT)
        assert dash.tree.outputs[0]["data"]["text/markdown"] == (
            "*SummarizerSupervisor is not running*"
        )
    assert dash.closed
    with pytest.raises(ValueError, match="redraw_every must be a positive number, got: 0"):
        Dashboard(redraw_every=0)
    with pytest.raises(ValueError, match="log_size must be a positive integer, got: 0"):
        Dashboard(log_size=0)


def test_each_view_carries_a_static_html_table_for_an_untrusted_notebook() -> None:
    table = users_table(TEST_USERS)
    bundle = table._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert len(rows(bundle["text/html"])) == len(TEST_USERS)
    assert 'class="dataframe summarizer-users"' in bundle["text/html"]
    assert bundle["text/plain"] == "UsersTable(5 users, sorted by id)"
    with Dashboard(users=TEST_USERS) as dash:
        dash.on_flush(0, {"1": 3})
        assert dash.sync(WAIT)
        bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "summarizer-live-counts" in bundle["text/html"]
    assert "<tr><td>1</td><td>MegaCorp</td><td>3</td></tr>" in bundle["text/html"]
    assert "<svg" not in bundle["text/html"]  # an untrusted notebook's sanitizer drops it
    assert not bundle["text/plain"].startswith("VBox(")


def test_the_mermaid_views_import_without_ipywidgets() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from summarizer.widgets import mermaid_seq_trace, mermaid_sup_tree; "
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
