"""Argument checks shared by the runtime and the pipeline: errors that say "got: X".

Every public function checks its arguments at the call site and raises a
``TypeError`` (wrong kind) or ``ValueError`` (wrong value) naming the argument,
what it must be, and what it got, shortened if long::

    positive_int("partitions", 0)
    # ValueError: partitions must be a positive integer, got: 0
    positive_number("flush_interval", "1")
    # TypeError: flush_interval must be a positive number, got: '1'
    check_timeout(float("nan"))
    # ValueError: timeout must be a positive number or None, got: nan
"""

from __future__ import annotations

import math
import numbers
import reprlib
import threading
from typing import Any

__all__ = ["brief", "check_timeout", "non_negative_number", "positive_int", "positive_number"]

_brief = reprlib.Repr()
_brief.maxstring = _brief.maxlong = _brief.maxother = 80


def brief(value: Any) -> str:
    """Return ``repr(value)``, shortened if long: what an error message quotes as "got"."""
    try:
        return _brief.repr(value)
    except Exception:  # a broken __repr__
        return f"<{type(value).__name__} object>"


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``; raise naming ``name``."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {what}, got: {brief(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got: {brief(value)}")
    return value


def positive_number(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive finite real number; raise naming ``name``.

    The rule every duration but a timeout follows: any real number (``int``,
    ``float``, ``Fraction``), never a bool, NaN or infinity. (A timeout may be
    infinite, or None: see `check_timeout`.)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got: {brief(value)}")
    try:
        seconds = float(value)
    except OverflowError:  # too large for a float: no time is that long
        seconds = math.inf
    if not 0 < seconds < math.inf:
        raise ValueError(f"{name} must be a positive number, got: {brief(value)}")
    return seconds


def non_negative_number(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0; raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative finite number, got: {brief(value)}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not 0 <= seconds < math.inf:
        raise ValueError(f"{name} must be a non-negative finite number, got: {brief(value)}")
    return seconds


def check_timeout(value: Any, name: str = "timeout") -> float | None:
    """Return a timeout in seconds, None for no limit; raise unless positive or None.

    A timeout no clock can wait for (infinity, or more than `threading.TIMEOUT_MAX`,
    some 290 years) means no limit. Checked before any side effect.
    """
    if value is None:
        return None
    message = f"{name} must be a positive number or None, got: {brief(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, numbers.Real)):
        raise TypeError(message)
    if isinstance(value, int):  # exact, even beyond what a float holds
        if value < 1:
            raise ValueError(message)
        return None if value >= threading.TIMEOUT_MAX else float(value)
    try:
        seconds = float(value)
    except OverflowError:  # a Fraction, say, too large or small for a float
        raise ValueError(message) from None
    if not seconds > 0:  # also rejects NaN
        raise ValueError(message)
    return None if seconds >= threading.TIMEOUT_MAX else seconds
