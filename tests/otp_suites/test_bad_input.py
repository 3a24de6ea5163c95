"""Bad input to the toolkit's new names: a TypeError/ValueError at the call site, saying "got:"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from summarizer.otp import DynamicSupervisor, NoReply, Ok, Process, Reply, Supervisor

pytestmark = pytest.mark.usefixtures("no_leaks")

NAN, INF = float("nan"), float("inf")

CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("monitor dest", lambda: Process.monitor(42), TypeError, "dest must be"),
    ("demonitor ref", lambda: Process.demonitor(None), TypeError, "ref must be"),  # type: ignore[arg-type]
    ("start_child child", lambda: Supervisor.start_child("any", 42), TypeError, "child must be"),
    (
        "dynamic start_child child",
        lambda: DynamicSupervisor.start_child("any", "x"),
        TypeError,
        "child must be",
    ),
    (
        "dynamic strategy",
        lambda: DynamicSupervisor.start_link(strategy="one_for_all"),  # type: ignore[arg-type]
        ValueError,
        "strategy must be 'one_for_one'",
    ),
    (
        "dynamic max_children",
        lambda: DynamicSupervisor.start_link(max_children=1.5),
        TypeError,
        "max_children",
    ),  # type: ignore[arg-type]
    (
        "dynamic max_seconds inf",
        lambda: DynamicSupervisor.start_link(max_seconds=INF),
        ValueError,
        "max_seconds",
    ),
    (
        "dynamic max_seconds nan",
        lambda: DynamicSupervisor.start_link(max_seconds=NAN),
        ValueError,
        "max_seconds",
    ),
    ("dynamic name", lambda: DynamicSupervisor.start_link(name=""), TypeError, "name must be"),
    (
        "dynamic child_spec options",
        lambda: DynamicSupervisor.child_spec("x"),
        TypeError,
        "options must be",
    ),  # type: ignore[arg-type]
    (
        "supervisor max_seconds inf",
        lambda: Supervisor.start_link([], max_seconds=INF),
        ValueError,
        "max_seconds",
    ),
    ("NoReply timeout str", lambda: NoReply(None, timeout="1"), TypeError, "timeout must be"),  # type: ignore[arg-type]
    ("NoReply timeout bool", lambda: NoReply(None, timeout=True), TypeError, "timeout must be"),
    ("Reply timeout negative", lambda: Reply(1, None, timeout=-1), ValueError, "timeout must be"),
    ("Ok timeout nan", lambda: Ok(None, timeout=NAN), ValueError, "timeout must be"),
    ("link from a plain thread", lambda: Process.link("x"), RuntimeError, "inside a process"),
    ("unlink from a plain thread", lambda: Process.unlink("x"), RuntimeError, "inside a process"),
]


@pytest.mark.parametrize(("what", "call", "error", "text"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_rejected_at_the_call_site(
    what: str, call: Callable[[], Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text) as info:
        call()
    assert error is RuntimeError or "got: " in str(info.value)
