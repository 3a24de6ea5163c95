"""A trace as a Mermaid sequence diagram, like ``Kino.Process.render_seq_trace``.

::

    with trace() as t:
        EventCollector.record_event(User("1", "MegaCorp", "enterprise"))
        EventCollector.flush_events(0)
    text = mermaid_seq_trace(t)  # 'sequenceDiagram ...'
    Markdown(f"```mermaid\\n{text}\\n```")  # JupyterLab draws it

One lifeline per process (its name or class, and its pid) or plain thread, in
order of first appearance; one arrow per message: solid for a cast, a call and an
info, dashed for a reply, crossed for an exit signal. Needs no ipywidgets.
"""

from __future__ import annotations

import re
from typing import Any

from ..otp.trace import Message, Trace
from ..otp.validate import brief

__all__ = ["mermaid_seq_trace"]

ARROWS = {
    "cast": "-)",
    "call": "->>",
    "reply": "-->>",
    "info": "->>",
    "exit": "-x",
    "stop": "->>",
    "start": "->>",
}
WIDTH = 48  # characters of a message's term shown on its arrow


def _text(text: str) -> str:
    """Escape what Mermaid reads as syntax or HTML: ``# ; < >`` become entity codes."""
    return re.sub(r"[#;<>]", lambda m: f"#{ord(m.group())};", text)


def _term(term: Any) -> str:
    text = term if isinstance(term, str) else brief(term)
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def _arrow(m: Message, ids: dict[Any, str]) -> str:
    if m.kind == "start":
        what = f"start_link {m.term}"
    elif m.kind in ("cast", "call", "reply"):
        what = f"{m.kind} {_term(m.term)}"
    else:
        what = f"{m.kind}: {_term(m.term)}"
    return f"    {ids[m.sender]}{ARROWS[m.kind]}{ids[m.receiver]}: {_text(what)}"


def mermaid_seq_trace(t: Trace) -> str:
    """Return the messages of ``t`` as Mermaid ``sequenceDiagram`` text."""
    if not isinstance(t, Trace):
        raise TypeError(f"t must be a Trace, got: {brief(t)}")
    ids = {who: f"p{i}" for i, who in enumerate(t.participants())}
    lines = ["sequenceDiagram"]
    lines += [f"    participant {pid} as {_text(t.label(who))}" for who, pid in ids.items()]
    lines += [_arrow(m, ids) for m in t.messages]
    if t.dropped:
        first = next(iter(ids.values()), None)
        if first is not None:
            lines.append(f"    Note over {first}: {t.dropped} more messages not recorded")
    return "\n".join(lines)
