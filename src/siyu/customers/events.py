"""Events the customers domain emits (payloads are ids and plain values, never ORM objects).

Other domains subscribe with `@handles(CUSTOMER_MERGED)` etc.; on `customer.merged` every domain
that keeps rows per customer (orders, ledgers, coupons …) moves them from source to target.
"""

from __future__ import annotations

import dataclasses

CUSTOMER_CREATED = "customer.created"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_OWNER_CHANGED = "customer.owner_changed"
# A customer signed in to the shop; `visitor_id` is the browser's anonymous visitor cookie (siyu_vid), when
# it had one, so that attribution can give that visitor's anonymous touches to the customer.
CUSTOMER_SIGNED_IN = "customer.signed_in"


@dataclasses.dataclass(frozen=True)
class CustomerCreated:
    customer_id: int
    identity_kind: str


@dataclasses.dataclass(frozen=True)
class CustomerMerged:
    source_id: int
    target_id: int


@dataclasses.dataclass(frozen=True)
class CustomerOwnerChanged:
    customer_id: int
    owner_id: int | None
    store_id: int | None
    previous_owner_id: int | None
    previous_store_id: int | None
    reason: str


@dataclasses.dataclass(frozen=True)
class CustomerSignedIn:
    customer_id: int
    visitor_id: str | None
