"""User is the seed's ``@enforce_keys [:id, :name, :plan]`` struct: immutable, all keys required."""

from __future__ import annotations

import dataclasses

import pytest

from summarizer import User

FIELDS = {"id": "1", "name": "MegaCorp", "plan": "enterprise"}


def test_a_user_holds_its_id_name_and_plan() -> None:
    user = User(**FIELDS)
    assert (user.id, user.name, user.plan) == ("1", "MegaCorp", "enterprise")


def test_a_user_takes_its_fields_by_position_in_the_seeds_order() -> None:
    assert User("1", "MegaCorp", "enterprise") == User(**FIELDS)


@pytest.mark.parametrize("field", ["id", "name", "plan"])
def test_a_user_is_immutable(field: str) -> None:
    user = User(**FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(user, field, "other")


@pytest.mark.parametrize("missing", ["id", "name", "plan"])
def test_a_user_without_a_field_raises_a_type_error_naming_it(missing: str) -> None:
    fields = {k: v for k, v in FIELDS.items() if k != missing}
    with pytest.raises(TypeError, match=f"'{missing}'"):
        User(**fields)


def test_equal_users_are_equal_and_hash_alike() -> None:
    assert User(**FIELDS) == User(**FIELDS)
    assert len({User(**FIELDS), User(**FIELDS)}) == 1


def test_an_int_id_is_accepted_as_the_beam_hashes_ints_too() -> None:
    assert User(1, "MegaCorp", "enterprise").id == 1


@pytest.mark.parametrize("bad_id", [None, 1.5, True, b"1", ["1"], ("1",)])
def test_an_id_that_is_not_a_str_or_an_int_raises_naming_id_and_what_it_got(
    bad_id: object,
) -> None:
    with pytest.raises(TypeError, match=r"^id must be a str or an int, got: ") as info:
        User(bad_id, "MegaCorp", "enterprise")  # type: ignore[arg-type]
    assert repr(bad_id) in str(info.value)


@pytest.mark.parametrize("field", ["name", "plan"])
def test_a_name_or_plan_that_is_not_a_str_raises_naming_the_field(field: str) -> None:
    with pytest.raises(TypeError, match=rf"^{field} must be a str, got: 3$"):
        User(**{**FIELDS, field: 3})


def test_an_id_that_has_no_utf8_bytes_to_route_by_raises_naming_id() -> None:
    with pytest.raises(ValueError, match=r"^id must be valid UTF-8 text, got: '\\ud800'$"):
        User("\ud800", "MegaCorp", "enterprise")


def test_a_non_ascii_id_is_accepted() -> None:
    assert User("ユーザー", "MegaCorp", "enterprise").id == "ユーザー"


def test_an_error_message_shows_at_most_80_characters_of_what_it_got() -> None:
    with pytest.raises(TypeError) as info:
        User(["x" * 10_000], "MegaCorp", "enterprise")  # type: ignore[arg-type]
    assert len(str(info.value)) < 120 and "..." in str(info.value)
