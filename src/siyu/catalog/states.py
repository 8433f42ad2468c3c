"""Product statuses and the moves allowed between them."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.errors import Conflict


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


def can_transition(old: str, new: str) -> bool:
    return ProductStatus(new) in TRANSITIONS[ProductStatus(old)]


def assert_transition(old: str, new: str) -> None:
    """Raise Conflict when a product cannot move from `old` to `new` (staying put is not a move)."""
    if old == new:
        return
    if not can_transition(old, new):
        raise Conflict("A product cannot go from {old} to {new}.", code="invalid_transition",
                       details={"from": old, "to": new}, old=old, new=new)
