"""Bad input: every public function and option, with wrong types and values.

Each bad input must get a clear ``TypeError``/``ValueError`` at the call site
whose message names the argument and shows what it got (``"got:"``), or be
handled correctly (a valid-but-odd value does what it says). No bad input may
crash a process or lose an accepted event.

Inputs that could break the runtime for the whole interpreter (the shared
timer thread, memory) are tried in a subprocess each, followed by a health
check there; the others run in this process against a live tree. The last
test runs the in-process matrix against one tree and checks that its
collectors and flushers kept their pids and that its books balance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from support import COLLECTORS, FLUSHERS, WAIT, live_children

from summarizer import EventCollector, MemorySink, SQLiteSink, SummarizerSupervisor, User
from summarizer.otp import (
    AlreadyStarted,
    GenServer,
    PartitionSupervisor,
    Pid,
    Reply,
    StartError,
    Supervisor,
    async_stream,
    phash2,
)

from .helpers import USERS, child_env, join_threads, produce, stop_tree

PARTITIONS = 2
NAN, INF = float("nan"), float("inf")
HUGE = 10**100  # converts to a float (1e100): beyond every OS timeout
HUGER = 10**400  # does not convert to a float at all
LONG = "x" * 10_000
MESSAGE_MAX = 1_000  # characters: a clear message quotes a huge input, shortened


class Echo(GenServer):
    """Answer every call with its request; a child for the supervisor cases."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request, state)


def label(value: Any) -> str:
    """Return a short, unambiguous name for a test id."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"{'-' if value < 0 else ''}10**{len(str(abs(value))) - 1}"
    if isinstance(value, type):
        return value.__name__
    if getattr(value, "__name__", "") == "<lambda>":
        return "lambda"
    text = repr(value)
    return text if len(text) <= 24 else f"{type(value).__name__}({len(text)} chars)"


@dataclass(frozen=True)
class Case:
    """One bad input: the call, the argument its error must name, and what is acceptable."""

    id: str
    call: Callable[[], Any]
    names: str  # the argument the error message must name
    works: Callable[[Any], bool] | None = None  # if given, accepting the input is fine
    tree: bool = False  # needs a running tree
    got: bool = True  # the message must contain "got:" (not for a missing argument)
    records: Any = None  # the user id it records, if it is accepted


def stopped(result: Any) -> bool:
    """Stop a supervisor a case started; True if it was one (the option was handled)."""
    if not isinstance(result, Pid):
        return False
    Supervisor.stop(result)
    return True


def returns(expected: Any) -> Callable[[Any], bool]:
    return lambda result: result == expected


def collector_call(timeout: Any) -> Any:
    return GenServer.call(live_children(COLLECTORS)[0], "flush_events", timeout)


def slow_len(item: str) -> int:
    threading.Event().wait(0.002)  # makes the consumer wait: its timeout is used
    return len(item)


def user_cases() -> list[Case]:
    cases = []
    for bad in (None, 1.5, NAN, True, False, b"1", [1], {}, (1,), object(), User, [LONG]):
        cases.append(Case(f"User(id={label(bad)})", lambda b=bad: User(b, "n", "p"), "id"))
    for field in ("name", "plan"):
        for bad in (None, 42, -1, 1.5, b"x", ["x"], True):
            kw = {"id": "1", "name": "n", "plan": "p", field: bad}
            cases.append(Case(f"User({field}={label(bad)})", lambda kw=kw: User(**kw), field))
    cases += [
        Case("User(missing plan)", lambda: User("1", "n"), "plan", got=False),  # type: ignore[call-arg]
        Case("User(missing all)", lambda: User(), "id", got=False),  # type: ignore[call-arg]
        Case("User(unknown field)", lambda: User("1", "n", "p", x=1), "x", got=False),  # type: ignore[call-arg]
    ]
    return cases


class Fake(NamedTuple):
    """Looks like a User, is not one."""

    id: str
    name: str
    plan: str


def record_cases() -> list[Case]:
    bads = (None, 42, -1, "1", b"1", {"id": "1"}, ("1", "n", "p"), Fake("1", "n", "p"), User, LONG)
    cases = [
        Case(
            f"record_event({label(b)})",
            lambda b=b: EventCollector.record_event(b),
            "user",
            tree=True,
        )
        for b in bads
    ]
    # A lone surrogate is a str, yet it has no UTF-8 bytes to hash as the BEAM does.
    cases.append(
        Case(
            "record_event(User(id=lone surrogate))",
            lambda: EventCollector.record_event(User("\ud800", "n", "p")),
            "id",
            works=lambda result: result is None,
            tree=True,
            records="\ud800",
        )
    )
    return cases


def flush_cases() -> list[Case]:
    cases = [
        Case(
            f"flush_events({label(b)})",
            lambda b=b: EventCollector.flush_events(b),
            "partition",
            tree=True,
        )
        for b in (None, -1, PARTITIONS, HUGE, -HUGE, 1.5, NAN, "0", True, b"0", [0], LONG)
    ]
    for bad in (0, -1, -0.0, "5", True, NAN, b"1", []):
        cases.append(
            Case(
                f"flush_events(0, timeout={label(bad)})",
                lambda b=bad: EventCollector.flush_events(0, timeout=b),
                "timeout",
                tree=True,
            )
        )
    for odd in (INF, HUGE, 1e10, HUGER):  # "wait forever", or a clear error
        cases.append(
            Case(
                f"flush_events(0, timeout={label(odd)})",
                lambda o=odd: EventCollector.flush_events(0, timeout=o),
                "timeout",
                works=lambda result: isinstance(result, dict),
                tree=True,
            )
        )
    return cases


def call_cases() -> list[Case]:
    cases = [
        Case(
            f"GenServer.call(timeout={label(b)})",
            lambda b=b: collector_call(b),
            "timeout",
            tree=True,
        )
        for b in (0, -1, -0.0, "5", True, NAN, b"1", [], -INF)
    ]
    for odd in (INF, HUGE, 1e10, HUGER):
        cases.append(
            Case(
                f"GenServer.call(timeout={label(odd)})",
                lambda o=odd: collector_call(o),
                "timeout",
                works=lambda result: isinstance(result, dict),
                tree=True,
            )
        )
    return cases


TREE_OPTIONS: dict[str, tuple[Any, ...]] = {
    "flush_interval": (None, 0, -1, -0.0, "1", True, NAN, INF, -INF, HUGER, b"1", LONG),
    "partitions": (0, -1, 1.5, "2", True, NAN, b"2"),
    "on_flush": (42, "print", b"x", object()),
    "sinks": (42, "ab", [None], [object()], [MemorySink(), 42], MemorySink()),
    "max_mailbox": (0, -1, 1.5, "10", True, NAN),
    "overflow": ("x", None, 42, "DROP_NEWEST", "drop_oldest", True, LONG),
    "max_restarts": (-1, 1.5, "3", None, True, NAN),
    "max_seconds": (0, -1, "5", None, True, NAN, -INF),
    "exit_timeout": (0, -1, None, "1", True, NAN, INF, -INF, HUGER),
    "name": ("", 42, b"x", ["x"]),
}


def tree_option_cases() -> list[Case]:
    # A tree runs under the default name: an option that passes validation ends
    # in AlreadyStarted, which this matrix counts as "accepted".
    return [
        Case(
            f"SummarizerSupervisor.start_link({option}={label(bad)})",
            lambda o=option, b=bad: SummarizerSupervisor.start_link(**{o: b}),
            option,
            tree=True,
        )
        for option, bads in TREE_OPTIONS.items()
        for bad in bads
    ]


def supervisor_cases() -> list[Case]:
    children = [Echo]
    cases = []
    for bad in ("one_for_none", None, 42, "", "ONE_FOR_ONE", LONG):
        cases.append(
            Case(
                f"Supervisor.start_link(strategy={label(bad)})",
                lambda b=bad: Supervisor.start_link(children, strategy=b),
                "strategy",
            )
        )
    for bad in (-1, 1.5, "3", None, True, NAN):
        cases.append(
            Case(
                f"Supervisor.start_link(max_restarts={label(bad)})",
                lambda b=bad: Supervisor.start_link(children, max_restarts=b),
                "max_restarts",
            )
        )
    for bad in (0, -1, "5", None, True, NAN, -INF):
        cases.append(
            Case(
                f"Supervisor.start_link(max_seconds={label(bad)})",
                lambda b=bad: Supervisor.start_link(children, max_seconds=b),
                "max_seconds",
            )
        )
    for odd in (HUGE, INF):  # "never forget a restart": valid
        cases.append(
            Case(
                f"Supervisor.start_link(max_seconds={label(odd)})",
                lambda o=odd: Supervisor.start_link(children, max_seconds=o),
                "max_seconds",
                works=stopped,
            )
        )
    for bad in (None, 42, "abc", b"", [None], [42], ["Echo"], [(1, 2)], [Echo, Echo]):
        cases.append(
            Case(
                f"Supervisor.start_link(children={label(bad)})",
                lambda b=bad: Supervisor.start_link(b),
                "child",
            )
        )
    return cases


def partition_supervisor_cases() -> list[Case]:
    def start(**options: Any) -> Any:
        return PartitionSupervisor.start_link(
            **{"child_spec": Echo.child_spec(), "name": "BadInputPS", **options}
        )

    cases = []
    for bad in (0, -1, 1.5, "2", True, NAN, b"2"):
        cases.append(
            Case(
                f"PartitionSupervisor(partitions={label(bad)})",
                lambda b=bad: start(partitions=b),
                "partitions",
            )
        )
    for bad in (42, "f", lambda args, p: 42, lambda args, p: None):
        cases.append(
            Case(
                f"PartitionSupervisor(with_arguments={label(bad)})",
                lambda b=bad: start(with_arguments=b),
                "with_arguments",
            )
        )
    for bad in (None, "", 42, b"x"):
        cases.append(
            Case(f"PartitionSupervisor(name={label(bad)})", lambda b=bad: start(name=b), "name")
        )
    for bad in (None, 42, "Echo"):
        cases.append(
            Case(
                f"PartitionSupervisor(child_spec={label(bad)})",
                lambda b=bad: start(child_spec=b),
                "child",
            )
        )
    return cases


def async_stream_cases() -> list[Case]:
    words = ["a", "bb", "ccc"]

    def run(*args: Any, **options: Any) -> list[Any]:
        return list(async_stream(*args, **options))

    cases = []
    for bad in (42, None, 1.5):
        cases.append(
            Case(f"async_stream(iterable={label(bad)})", lambda b=bad: run(b, len), "iterable")
        )
    for bad in (42, None, "len"):
        cases.append(Case(f"async_stream(fn={label(bad)})", lambda b=bad: run(words, b), "fn"))
    for option, bads in {
        "max_concurrency": (0, -1, 1.5, "2", True, NAN),
        "ordered": ("yes", 1, None, 0, LONG),
        "timeout": (0, -1, "5", True, NAN, -INF, b"1"),
        "max_threads": (0, -1, 1.5, "2", True),
    }.items():
        for bad in bads:
            cases.append(
                Case(
                    f"async_stream({option}={label(bad)})",
                    lambda o=option, b=bad: run(words, slow_len, **{o: b}),
                    option,
                )
            )
    for odd in (INF, HUGE, 1e10, HUGER):  # no limit, or a clear error
        cases.append(
            Case(
                f"async_stream(timeout={label(odd)})",
                lambda o=odd: run(words, slow_len, timeout=o),
                "timeout",
                works=returns([1, 2, 3]),
            )
        )
    return cases


def phash2_cases() -> list[Case]:
    cases = [
        Case(f"phash2({label(b)})", lambda b=b: phash2(b), "term")
        for b in (None, 1.5, NAN, [1], True, object(), {}, ("a",), "\ud800")
    ]
    cases += [
        Case(f"phash2('x', range={label(b)})", lambda b=b: phash2("x", b), "range")
        for b in (0, -1, 1.5, "3", True, 2**32 + 1, HUGE, NAN, b"3", LONG)
    ]
    return cases


IN_PROCESS = [
    *user_cases(),
    *record_cases(),
    *flush_cases(),
    *call_cases(),
    *tree_option_cases(),
    *supervisor_cases(),
    *partition_supervisor_cases(),
    *async_stream_cases(),
    *phash2_cases(),
]


def verdict(case: Case) -> str | None:
    """Try one bad input; return None if it was rejected clearly or handled, else why not."""
    try:
        result = case.call()
    except (TypeError, ValueError) as e:
        text = str(e)
        if case.names not in text:
            return f"{type(e).__name__} does not name {case.names!r}: {text[:200]!r}"
        if case.got and "got:" not in text:
            return f"{type(e).__name__} does not say what it got: {text[:200]!r}"
        if len(text) > MESSAGE_MAX:
            return f"{type(e).__name__} message is {len(text):,} characters long: {text[:80]!r}..."
        return None
    except AlreadyStarted:
        return "accepted (it passed validation and hit the running tree's name)"
    except Exception as e:
        return f"raised {type(e).__name__} instead of TypeError/ValueError: {str(e)[:200]!r}"
    if case.works is None:
        stopped(result)
        return f"accepted, returned {result!r:.80}"
    if not case.works(result):
        return f"accepted but not handled correctly: returned {result!r:.80}"
    return None


@pytest.fixture
def tree_for(tree):
    """Start a tree (flush_interval 60 s, no sinks) if the case needs one."""

    def start(case: Case) -> None:
        if case.tree:
            tree(flush_interval=60.0, partitions=PARTITIONS)

    return start


@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_a_bad_input_is_rejected_at_the_call_site_naming_the_argument(case, tree_for):
    tree_for(case)
    problem = verdict(case)
    assert problem is None, f"{case.id}: {problem}"


# -- inputs that could break the whole runtime: one subprocess each ------------------

HAZARD = """
    import atexit, json, resource, sys, threading

    kind, value = sys.argv[1], eval(sys.argv[2])
    out, flushed = {}, []

    def report():  # registered before summarizer is imported: runs after its atexit stop
        if kind == "exit_timeout":
            out["result"] = sum(flushed) == 100
        print(json.dumps(out), flush=True)

    atexit.register(report)
    # A runaway allocation or loop fails fast instead of eating the machine
    # (small thread stacks, so that 256 MB of address space is plenty otherwise).
    threading.stack_size(512 << 10)
    resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (2, 3))

    from summarizer import EventCollector, SummarizerSupervisor, User
    from summarizer.otp import GenServer, NoReply, Ok, PartitionSupervisor, Process, Supervisor

    class Probe(GenServer):
        def init(self, ev):
            return Ok(ev)

        def handle_info(self, msg, ev):
            ev.set()
            return NoReply(ev)

    def timers_work():
        ev = threading.Event()
        pid = Probe.start_link(ev)
        Process.send_after(pid, "ping", 0.01)
        ok = ev.wait(2.0)
        GenServer.stop(pid)
        return ok

    def start_tree(**options):
        sup = SummarizerSupervisor.start_link(
            sinks=[], on_flush=lambda p, d: flushed.append(sum(d.values())), **options
        )
        for i in range(100):
            EventCollector.record_event(User(str(i), "n", "p"))
        return sup

    try:
        if kind == "send_after_seconds":
            probe = Probe.start_link(threading.Event())
            out["result"] = repr(Process.send_after(probe, "x", value))
        elif kind == "send_after_dest":
            out["result"] = repr(Process.send_after(value, "x", 0.01))
        elif kind == "tree":
            Supervisor.stop(start_tree(**value), "normal", 10.0)
            out["result"] = sum(flushed) == 100
        elif kind == "exit_timeout":
            start_tree(exit_timeout=value)  # left running: the atexit hook stops it
            out["result"] = "pending"
        elif kind == "partitions":
            out["result"] = repr(
                PartitionSupervisor.start_link(
                    child_spec=Probe.child_spec(None), name="P", partitions=value
                )
            )
    except BaseException as e:
        out["error"], out["message"] = type(e).__name__, str(e)[:300]
    out["timers_work"] = timers_work()
"""


class Hazard(NamedTuple):
    id: str
    kind: str
    value: str  # a Python expression, evaluated in the subprocess
    names: str
    may_work: bool  # accepting it is fine if it then works
    fails_cleanly: bool = False  # a StartError (no thread left to start) is fine too


HAZARDS = [
    *(
        Hazard(f"send_after(seconds={v})", "send_after_seconds", v, "seconds", ok)
        for v, ok in [
            ("float('nan')", False),
            ("float('inf')", False),
            ("-float('inf')", False),
            ("-1", False),
            ("'1'", False),
            ("None", False),
            ("True", False),
            ("1e10", True),  # beyond threading.TIMEOUT_MAX
            ("10**100", True),
            ("10**400", True),
        ]
    ),
    *(
        Hazard(f"send_after(dest={v})", "send_after_dest", v, "dest", False)
        for v in ("42", "None", "1.5", "object()", "b'x'")
    ),
    *(
        Hazard(
            f"start_link(flush_interval={v})",
            "tree",
            f"{{'flush_interval': {v}}}",
            "flush_interval",
            True,
        )
        for v in ("1e10", "10**100")
    ),
    *(
        Hazard(f"start_link(exit_timeout={v})", "exit_timeout", v, "exit_timeout", True)
        for v in ("1e10", "10**100")
    ),
    Hazard(
        "start_link(partitions=10**100)", "tree", "{'partitions': 10**100}", "partitions", False
    ),
    Hazard("PartitionSupervisor(partitions=10**100)", "partitions", "10**100", "partitions", False),
    # More partitions than threads can be started: a clear error, or a clean StartError.
    Hazard(
        "PartitionSupervisor(partitions=100_000)",
        kind="partitions",
        value="100_000",
        names="partitions",
        may_work=False,
        fails_cleanly=True,
    ),
]


def run_hazard(h: Hazard) -> dict[str, Any]:
    try:
        run = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(HAZARD), h.kind, h.value],
            cwd=tempfile.gettempdir(),
            env=child_env(MALLOC_ARENA_MAX="2"),
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return {"error": "hung", "message": "no answer within 20 s", "timers_work": False}
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    if "error" not in out and "result" not in out:  # killed by a limit mid-call
        why = f"no outcome, exit status {run.returncode} (a runaway loop?): {run.stderr[-300:]}"
        return {"error": "killed", "message": why, "timers_work": out.get("timers_work", False)}
    return out


@pytest.fixture(scope="module")
def hazard_results() -> dict[str, dict[str, Any]]:
    with ThreadPoolExecutor(4) as pool:
        return dict(zip([h.id for h in HAZARDS], pool.map(run_hazard, HAZARDS), strict=True))


@pytest.mark.parametrize("hazard", HAZARDS, ids=[h.id for h in HAZARDS])
def test_a_bad_input_that_could_break_the_runtime_is_rejected_or_handled(hazard, hazard_results):
    out = hazard_results[hazard.id]
    stuck = out.get("error") in ("hung", "killed", "crashed")
    assert not stuck, f"{hazard.id} never returned (ran into the subprocess's limits): {out}"
    assert out["timers_work"], f"{hazard.id} broke the shared timer service: {out}"
    if "error" in out and hazard.fails_cleanly and out["error"] == "StartError":
        pass
    elif "error" in out:
        assert out["error"] in ("TypeError", "ValueError"), out
        assert hazard.names in out["message"] and "got:" in out["message"], out
    else:
        assert hazard.may_work, f"{hazard.id} was accepted: {out}"
        assert out["result"] is not False, f"{hazard.id} was accepted but did not work: {out}"


# -- the whole matrix against one tree ------------------------------------------------


def run_matrix(expected: Counter[Any]) -> Counter[Any]:
    """Try every in-process bad input; return what accepted flush_events calls took."""
    taken: Counter[Any] = Counter()
    for case in IN_PROCESS:
        try:
            result = case.call()
        except Exception:  # rejected (verdicts are the parametrized tests' business)
            continue
        if case.records is not None:
            expected[case.records] += 1
        if isinstance(result, dict):
            taken.update(result)
        stopped(result)
    return taken


ODD_IDS = ["", "ユーザー", LONG, 0, -1, 2**27, -(2**27), 2**63 - 1, 2**64, HUGE, -HUGE, "1", 1]


def test_after_every_bad_input_no_process_crashed_and_no_accepted_event_was_lost(tree):
    memory, flushed = MemorySink(), threading.Event()
    sup = tree(
        flush_interval=0.05,
        partitions=PARTITIONS,
        sinks=[memory],
        on_flush=lambda p, data: flushed.set(),
    )
    collectors, flushers = live_children(COLLECTORS), live_children(FLUSHERS)
    odd_users = [User(uid, "odd", "free") for uid in ODD_IDS]
    expected: Counter[Any] = Counter()
    for k in range(1, 11):  # odd-but-valid ids, recorded before and after the matrix
        for user in odd_users:
            EventCollector.record_event(user)
            expected[user.id] += 1
        if k == 5:
            taken = run_matrix(expected)

    assert live_children(COLLECTORS) == collectors, "a bad input crashed a collector"
    assert live_children(FLUSHERS) == flushers, "a bad input crashed a flusher"
    flushed.clear()
    EventCollector.record_event(odd_users[0])
    expected[odd_users[0].id] += 1
    assert flushed.wait(WAIT), "the flushers stopped flushing after the matrix"
    stop_tree(sup)

    acc = SummarizerSupervisor.accounting()
    total = len(IN_PROCESS) + len(HAZARDS)
    print(f"\nbad inputs tried: {total} ({len(HAZARDS)} of them in a subprocess each)")
    assert acc.lost == {}
    assert acc.accepted == acc.flushed == sum(expected.values())
    assert acc.sink_errors == {}
    assert Counter(memory.totals()) + taken == expected


def test_odd_but_valid_user_ids_reach_the_sqlite_sink_exactly(tree, tmp_path):
    sqlite = SQLiteSink(tmp_path / "odd.sqlite")
    sup = tree(flush_interval=60.0, partitions=PARTITIONS, sinks=[sqlite])
    for uid in ODD_IDS:
        for _ in range(3):
            EventCollector.record_event(User(uid, "odd", "free"))
    stop_tree(sup)

    acc = SummarizerSupervisor.accounting()
    assert acc.sink_errors == {}, f"the SQLite sink failed a flush: {acc.sink_errors}"
    assert sqlite.totals() == {uid: 3 for uid in ODD_IDS}


def test_starting_a_second_tree_while_one_runs_fails_and_leaves_the_running_books_intact(tree):
    memory = MemorySink()
    sup = tree(flush_interval=60.0, partitions=PARTITIONS, sinks=[memory])
    users = USERS[:10]  # on both partitions
    for user in users:
        EventCollector.record_event(user)
    with pytest.raises(StartError):  # the collectors' names are taken
        SummarizerSupervisor.start_link(partitions=1, sinks=[], name="SecondTree")
    for user in users:  # the running tree must still take them, into its own books
        EventCollector.record_event(user)
    stop_tree(sup)

    acc = SummarizerSupervisor.accounting()
    assert len(acc.partitions) == PARTITIONS, "the books are the failed tree's"
    assert acc.accepted == acc.flushed == 20
    assert memory.totals() == {user.id: 2 for user in users}


def test_failed_second_tree_starts_do_not_disturb_producers_of_the_running_tree(tree):
    memory = MemorySink()
    sup = tree(flush_interval=0.05, partitions=PARTITIONS, sinks=[memory])
    halt, ticks = threading.Event(), threading.Semaphore(0)
    producers, _ = produce(10**9, stop=halt, ticks=ticks)  # until halted
    for _ in range(50):  # each attempt while the producers run
        assert ticks.acquire(timeout=WAIT), "the producers stalled (or died)"
        with pytest.raises(StartError):
            SummarizerSupervisor.start_link(partitions=1, sinks=[], name="SecondTree")
    halt.set()
    join_threads(producers, WAIT, "the producers")
    stop_tree(sup)

    acc = SummarizerSupervisor.accounting()
    assert len(acc.partitions) == PARTITIONS, "the books are a failed tree's"
    assert acc.lost == {}
    assert acc.accepted == acc.flushed, "events were counted in another tree's books"
    assert sum(memory.totals().values()) == acc.accepted
