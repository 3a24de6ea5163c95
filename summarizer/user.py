"""User: the event the Livebook records, an immutable record with three required fields.

As the Livebook's ``@enforce_keys [:id, :name, :plan]`` struct::

    User(id="1", name="MegaCorp", plan="enterprise")
    User(id="1", name="MegaCorp")
    # TypeError: User.__init__() missing 1 required positional argument: 'plan'

``id`` routes the event to a partition, so it must be what the BEAM can hash
the same way: a str (hashed as its UTF-8 bytes) or an int.
"""

from __future__ import annotations

from dataclasses import dataclass

from .otp.validate import brief

__all__ = ["TEST_USERS", "User"]


@dataclass(frozen=True, slots=True)
class User:
    """Identify who caused an event: ``id``, ``name`` and ``plan``, all required."""

    id: str | int
    name: str
    plan: str

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, (str, int)):
            raise TypeError(f"id must be a str or an int, got: {brief(self.id)}")
        if isinstance(self.id, str) and not self.id.isascii():
            try:
                self.id.encode()  # routing hashes the UTF-8 bytes, as the BEAM does
            except UnicodeEncodeError:
                raise ValueError(f"id must be valid UTF-8 text, got: {brief(self.id)}") from None
        for field in ("name", "plan"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise TypeError(f"{field} must be a str, got: {brief(value)}")


#: The Livebook's ``test_users``: five customers on three plans.
TEST_USERS = (
    User(id="1", name="MegaCorp", plan="enterprise"),
    User(id="2", name="Gundam", plan="basic"),
    User(id="3", name="CoffeeCentral", plan="free"),
    User(id="4", name="CodeTogether", plan="enterprise"),
    User(id="5", name="FPFunHouse", plan="basic"),
)
