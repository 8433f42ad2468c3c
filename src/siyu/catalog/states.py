"""Product statuses and the moves allowed between them."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ON_SALE = "on_sale"
    OFF_SALE = "off_sale"


STATUS_LABELS = {
    ProductStatus.DRAFT: "Draft",
    ProductStatus.ON_SALE: "On sale",
    ProductStatus.OFF_SALE: "Off sale",
}

# A product on sale can only be taken off sale (not back to draft: customers have seen it and
# orders may point at it).
TRANSITIONS: dict[ProductStatus, frozenset[ProductStatus]] = {
    ProductStatus.DRAFT: frozenset({ProductStatus.ON_SALE, ProductStatus.OFF_SALE}),
    ProductStatus.ON_SALE: frozenset({ProductStatus.OFF_SALE}),
    ProductStatus.OFF_SALE: frozenset({ProductStatus.ON_SALE}),
}


MACHINE = Transitions(ProductStatus, TRANSITIONS, message="A product cannot go from {old} to {new}.",
                      stay_is_move=False)


def can_transition(old: str, new: str) -> bool:
    return MACHINE.allowed(old, new)


def assert_transition(old: str, new: str) -> None:
    """Raise 409 `invalid_transition` when a product cannot move from `old` to `new` (staying put is
    not a move)."""
    MACHINE.check(old, new)
