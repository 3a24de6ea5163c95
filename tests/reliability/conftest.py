"""Reliability tests: fixtures every test here gets (helpers are in helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_leaks(no_leaks: None) -> None:
    """Check every test here for threads and names left behind (conftest's ``no_leaks``)."""


@pytest.fixture
def tree_defaults() -> dict[str, Any]:
    """Start the trees here with the tree's own defaults, but no LogSink."""
    return {"sinks": []}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this directory's ``soak`` tests unless a ``-m`` expression picks tests."""
    if config.option.markexpr:
        return
    here = Path(__file__).parent
    keep, drop = [], []
    for item in items:
        on_demand = item.get_closest_marker("soak") is not None and here in item.path.parents
        (drop if on_demand else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
