"""The one shape of every status machine: an enum, a table of allowed moves, and a check that refuses an
illegal move with 409 `invalid_transition` (DESIGN.md: statuses change only through
`assert_transition`; an illegal move raises, it is never patched up afterwards)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from siyu.core.errors import Conflict

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(Conflict):
    code = "invalid_transition"
    message = "This cannot move from {old} to {new}."


class Transitions(Generic[S]):
    """`Transitions(OrderStatus, {A: {B, C}, …}, message="This order cannot move from {old} to {new}.")`."""

    def __init__(self, status: type[S], table: Mapping[S, frozenset[S]], *, message: str,
                 stay_is_move: bool = True) -> None:
        missing = set(status) - set(table)
        if missing:
            raise ValueError(f"transition table lacks {sorted(missing)}")
        self.status = status
        self.table = dict(table)
        self.message = message
        # When False, "moving" to the status one is already in is allowed (a no-op).
        self.stay_is_move = stay_is_move

    def allowed(self, old: str, new: str) -> bool:
        try:
            old_s, new_s = self.status(old), self.status(new)
        except ValueError:
            return False
        if old_s == new_s and not self.stay_is_move:
            return True
        return new_s in self.table[old_s]

    def check(self, old: str, new: str) -> None:
        """Raise InvalidTransition (409) unless the move from `old` to `new` is in the table."""
        if not self.allowed(old, new):
            raise InvalidTransition(self.message, details={"from": old, "to": new}, old=old, new=new)

    def targets(self, old: str) -> frozenset[S]:
        return self.table[self.status(old)]
