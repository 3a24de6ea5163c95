"""phash2 must give the numbers a real Erlang VM gives, or routing disagrees with the BEAM."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from summarizer.otp.phash2 import phash2

#: Values produced by a real Erlang/OTP 25 VM (a copy of the team's shared fixture).
_DEFAULT_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "phash2.csv"
_FIXTURES_ENV = "SUMMARIZER_FIXTURES"  # a directory holding another phash2.csv to check


class Row(NamedTuple):
    """One str or int row of the fixture, as produced by Erlang/OTP 25."""

    kind: str  # "str" (term is UTF-8 bytes) or "int"
    term: bytes | int
    range: int | None
    expected: int


def _fixture_path() -> Path:
    """Return the fixture's path: the one under $SUMMARIZER_FIXTURES, else the repo's copy."""
    override = os.environ.get(_FIXTURES_ENV)
    return Path(override) / "phash2.csv" if override else _DEFAULT_FIXTURE


def _fixture_params() -> list[object]:
    """Read the fixture's str and int rows as test parameters (atom rows are skipped).

    A missing or empty fixture yields a single parameter that fails, never a skip:
    without the VM's values these tests would prove nothing.
    """
    path = _fixture_path()
    if not path.is_file():
        return [pytest.param(f"phash2 fixture not found at {path}", id="fixture-missing")]
    params: list[object] = []
    with path.open(newline="", encoding="utf-8") as f:
        for line, rec in enumerate(csv.DictReader(f), start=2):
            kind, term, range_, expected = rec["type"], rec["term"], rec["range"], rec["phash2"]
            if kind not in ("str", "int"):
                continue
            row = Row(
                kind=kind,
                term=bytes.fromhex(term) if kind == "str" else int(term),
                range=int(range_) if range_ else None,
                expected=int(expected),
            )
            params.append(pytest.param(row, id=f"line{line}-{kind}-{term[:16]}-{range_ or 'none'}"))
    if not params:
        return [pytest.param(f"no str or int rows in the phash2 fixture {path}", id="no-rows")]
    return params


@pytest.mark.parametrize("row", _fixture_params())
def test_phash2_gives_what_the_erlang_vm_gave_for_every_fixture_row(row: Row | str) -> None:
    if isinstance(row, str):
        pytest.fail(f"{row} (set {_FIXTURES_ENV} to a directory holding phash2.csv)")
    term = row.term.decode("utf-8") if isinstance(row.term, bytes) else row.term
    assert phash2(term, row.range) == row.expected


def test_the_seed_users_land_on_partitions_0_0_1_1_0_of_3() -> None:
    assert [phash2(user, 3) for user in ["1", "2", "3", "4", "5"]] == [0, 0, 1, 1, 0]


def test_the_seed_users_all_land_on_partition_1_of_2() -> None:
    assert [phash2(user, 2) for user in ["1", "2", "3", "4", "5"]] == [1, 1, 1, 1, 1]


def test_phash2_with_a_range_is_not_phash2_modulo_that_range() -> None:
    assert phash2("1") == 59054609
    assert phash2("1") % 3 == 2
    assert phash2("1", 3) == 0


def test_a_range_of_2_pow_32_keeps_the_whole_hash_and_phash2_1_its_low_27_bits() -> None:
    whole = phash2("1", 2**32)
    assert whole >= 2**27
    assert phash2("1") == whole & (2**27 - 1)
    assert phash2("1", 1) == 0


# Empty, one block short, exactly one block, one byte over, multi-byte UTF-8, many blocks.
@pytest.mark.parametrize(
    "text", ["", "1", "user-42", "exactly 12 b", "thirteen byte", "caf\u00e9 \u2603", "x" * 1000]
)
def test_bytes_bytearray_and_str_hash_alike(text: str) -> None:
    raw = text.encode("utf-8")
    assert phash2(raw) == phash2(bytearray(raw)) == phash2(text)
    assert phash2(raw, 7) == phash2(bytearray(raw), 7) == phash2(text, 7)


@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_is_rejected_because_erlang_booleans_are_atoms(flag: bool) -> None:
    with pytest.raises(TypeError, match=r"^term must be str, bytes or int, got: bool$"):
        phash2(flag)


@pytest.mark.parametrize(
    ("term", "type_name"),
    [(1.5, "float"), (None, "NoneType"), (("a",), "tuple"), (memoryview(b"a"), "memoryview")],
)
def test_an_unsupported_term_is_rejected_naming_its_type(term: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"^term must be str, bytes or int, got: {type_name}$"):
        phash2(term)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_range", [0, -1, 2**32 + 1])
def test_a_range_outside_1_to_2_pow_32_is_rejected(bad_range: int) -> None:
    message = rf"^range must be an integer in 1\.\.4294967296, got: {bad_range}$"
    with pytest.raises(ValueError, match=message):
        phash2("1", bad_range)


@pytest.mark.parametrize("bad_range", [3.0, "3", True])
def test_a_range_that_is_not_an_integer_is_rejected(bad_range: object) -> None:
    with pytest.raises(TypeError, match=r"^range must be an integer in 1\.\.4294967296, got: "):
        phash2("1", bad_range)  # type: ignore[arg-type]
