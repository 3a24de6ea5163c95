"""Give a widget a static HTML view next to its live one.

JupyterLab shows a widget's live view only in a trusted notebook, and only while its
state is known; elsewhere (an untrusted notebook, GitHub, nbviewer) it shows the
richest *safe* type of the output's bundle. Without ``text/html`` that is the
widget's ``text/plain`` repr, ``VBox(children=(HBox(...``. With it, the reader sees
a table::

    def _repr_mimebundle_(self, **kwargs):
        return with_html(self.widget, self.html())
"""

from __future__ import annotations

from typing import Any

__all__ = ["with_html"]


def with_html(widget: Any, html: str, plain: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Return ``widget``'s mime bundle with ``html`` (and ``plain``) as its static views."""
    bundle: dict[str, Any] = dict(widget._repr_mimebundle_(**kwargs) or {})
    bundle["text/html"] = html
    if plain is not None:
        bundle["text/plain"] = plain
    return bundle
