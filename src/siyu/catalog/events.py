"""Events the catalogue emits (payloads are ids and values, never ORM objects)."""

from __future__ import annotations

import dataclasses

PRODUCT_STATUS_CHANGED = "catalog.product_status_changed"


@dataclasses.dataclass(frozen=True)
class ProductStatusChanged:
    product_id: int
    old_status: str
    new_status: str
