"""Events the channels domain emits (payloads are ids and plain values). Messaging journeys and
analytics may subscribe: a new follower, an unfollow, a customer added to a guide's WeCom."""

from __future__ import annotations

import dataclasses

OA_SUBSCRIBED = "channels.oa_subscribed"
OA_UNSUBSCRIBED = "channels.oa_unsubscribed"
WECOM_CONTACT_ADDED = "channels.wecom_contact_added"
WECOM_CONTACT_REMOVED = "channels.wecom_contact_removed"


@dataclasses.dataclass(frozen=True)
class OaSubscribed:
    customer_id: int
    openid: str
    qr_code_id: int | None
    staff_id: int | None
    store_id: int | None
    touch_id: int | None
    customer_created: bool


@dataclasses.dataclass(frozen=True)
class OaUnsubscribed:
    customer_id: int | None


@dataclasses.dataclass(frozen=True)
class WecomContactAdded:
    customer_id: int
    staff_id: int | None
    store_id: int | None
    touch_id: int | None
    customer_created: bool


@dataclasses.dataclass(frozen=True)
class WecomContactRemoved:
    customer_id: int | None
    staff_id: int | None
    by: str  # "guide" or "customer"
