"""Hash a term exactly as Erlang's ``erlang:phash2/1,2`` does.

A PartitionSupervisor routes a non-integer key to partition ``phash2(key, n)``;
computing the same number the BEAM computes makes a Python run send every key to
the same partition the Livebook does::

    >>> phash2("1", 3)    # the Livebook's user "1" goes to partition 0 of 3
    0
    >>> phash2("1")       # phash2/1 keeps the low 27 bits of the hash
    59054609

Note that ``phash2(T, R)`` is not ``phash2(T) % R``: ``59054609 % 3 == 2``, yet
``phash2("1", 3) == 0``. With a range the *whole* 32-bit hash is reduced modulo
``R``; without one it is truncated to 27 bits, so the two forms agree only when
the hash is below ``2**27`` or ``R`` divides ``2**27``.

Supported terms are those a Python caller routes by: ``str`` (hashed as its
UTF-8 bytes, i.e. as an Elixir string, which is a binary), ``bytes``,
``bytearray`` and ``int`` of any size. ``bool`` is rejected: it is an ``int`` in
Python, but ``true``/``false`` are atoms in Erlang and would hash differently.

The algorithm is OTP's ``make_hash2`` restricted to these terms, in unsigned
32-bit arithmetic with wrap-around, built on Bob Jenkins' lookup2 ``MIX``:

- a binary is block-hashed (12-byte blocks as three little-endian words) with
  the initial value ``HCONST_13``; the empty binary hashes to ``HCONST_13``
  itself, without a single ``MIX``;
- an integer in ``-2**27 <= x < 2**27`` is mixed with ``GOLDEN`` (twice when
  negative, once with ``-x`` and once with ``x mod 2**32``);
- any other integer is mixed 64-bit limb by limb of ``abs(x)``, least
  significant first, with ``HCONST_11`` (or ``HCONST_10`` when negative).

Nothing is cached here: callers that hash the same key often keep the result.
"""

from __future__ import annotations

import struct

from .validate import brief

__all__ = ["phash2"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B9
_HCONST_10 = (_GOLDEN * 10) & _M32
_HCONST_11 = (_GOLDEN * 11) & _M32
_HCONST_13 = (_GOLDEN * 13) & _M32
_SMALL_MIN = -(2**27)  # smallest integer hashed as a "small" (28-bit signed)
_SMALL_END = 2**27  # first integer past the small ones
_PHASH2_1_MASK = 2**27 - 1
_RANGE_MAX = 2**32
# Zero padding that makes a binary's tail a whole 12-byte block (1 to 12 bytes).
_PADDING = [b"\0" * (12 - n % 12) for n in range(12)]


def phash2(term: str | bytes | bytearray | int, range: int | None = None) -> int:
    """Return ``erlang:phash2(term)``, or ``erlang:phash2(term, range)`` if given a range.

    Without a range the result is in ``0..2**27 - 1``; with one it is in
    ``0..range - 1``, for ``1 <= range <= 2**32``.
    """
    h = _hash(term)
    if range is None:
        return h & _PHASH2_1_MASK
    if type(range) is bool or not isinstance(range, int):
        raise TypeError(f"range must be an integer in 1..{_RANGE_MAX}, got: {brief(range)}")
    if not 1 <= range <= _RANGE_MAX:
        raise ValueError(f"range must be an integer in 1..{_RANGE_MAX}, got: {brief(range)}")
    return h % range


def _hash(term: str | bytes | bytearray | int) -> int:
    """Return the full unsigned 32-bit ``make_hash2`` value of a top-level term."""
    if isinstance(term, str):
        try:
            data = term.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 bytes to hash as the BEAM does
            raise ValueError(f"term must be valid UTF-8 text, got: {brief(term)}") from None
        return _binary_hash(data)
    if isinstance(term, (bytes, bytearray)):
        return _binary_hash(term)
    if isinstance(term, int) and type(term) is not bool:
        return _integer_hash(term)
    raise TypeError(f"term must be str, bytes or int, got: {type(term).__name__}")


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """Mix three unsigned 32-bit words with lookup2's ``MIX``."""
    m = _M32
    a = (a - b - c) & m
    a ^= c >> 13
    b = (b - c - a) & m
    b ^= (a << 8) & m
    c = (c - a - b) & m
    c ^= b >> 13
    a = (a - b - c) & m
    a ^= c >> 12
    b = (b - c - a) & m
    b ^= (a << 16) & m
    c = (c - a - b) & m
    c ^= b >> 5
    a = (a - b - c) & m
    a ^= c >> 3
    b = (b - c - a) & m
    b ^= (a << 10) & m
    c = (c - a - b) & m
    c ^= b >> 15
    return a, b, c


def _binary_hash(data: bytes | bytearray) -> int:
    """Hash a top-level binary as ``make_hash2`` does (lookup2's block hash)."""
    n = len(data)
    if n == 0:
        return _HCONST_13
    c = _HCONST_13
    # The tail (0 to 11 bytes) is zero-padded to one last block, so a single
    # unpack reads every word. That block's third word is shifted left by 8:
    # c's low byte holds the length, and byte 11 is always padding, so the
    # shift never overflows.
    words = struct.unpack(f"<{3 * (n // 12 + 1)}I", data + _PADDING[n % 12])
    last = len(words) - 3
    a = b = _GOLDEN
    mix = _mix
    m = _M32
    for i in range(0, last, 3):
        a, b, c = mix((a + words[i]) & m, (b + words[i + 1]) & m, (c + words[i + 2]) & m)
    c = (c + n + (words[last + 2] << 8)) & m
    return mix((a + words[last]) & m, (b + words[last + 1]) & m, c)[2]


def _uint32_hash_2(x: int, y: int, k: int, h: int) -> int:
    """Fold two 32-bit words into hash ``h`` with constant ``k`` (``UINT32_HASH_2``)."""
    return _mix((k + x) & _M32, (k + y) & _M32, h)[2]


def _integer_hash(x: int) -> int:
    """Hash a top-level integer of any size as ``make_hash2`` does."""
    h = 0
    if _SMALL_MIN <= x < _SMALL_END:
        if x < 0:
            h = _uint32_hash_2(-x, 0, _GOLDEN, h)
        return _uint32_hash_2(x & _M32, 0, _GOLDEN, h)
    k = _HCONST_10 if x < 0 else _HCONST_11
    magnitude = -x if x < 0 else x
    while magnitude:
        limb = magnitude & _M64
        h = _uint32_hash_2(limb & _M32, limb >> 32, k, h)
        magnitude >>= 64
    return h
