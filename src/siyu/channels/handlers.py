"""Reactions of channels to other domains' events."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.channels import events
from siyu.channels.service import oa, wecom
from siyu.core.events import Event, handles
from siyu.customers import events as customer_events


@handles(customer_events.CUSTOMER_MERGED)
def move_merged_customer(session: Session, event: Event) -> None:
    """A merged customer's follower rows, WeCom contacts and channel history go to the survivor."""
    source_id, target_id = int(event.payload["source_id"]), int(event.payload["target_id"])
    oa.move_customer(session, merchant_id=event.merchant_id, source_id=source_id, target_id=target_id)
    wecom.move_customer(session, merchant_id=event.merchant_id, source_id=source_id, target_id=target_id)


@handles(events.OA_SUBSCRIBED)
def link_follower_unionid(session: Session, event: Event) -> None:
    """A new follower's unionid links them to the customer who signed in through the mini-program."""
    oa.link_unionid(session, merchant_id=event.merchant_id, customer_id=int(event.payload["customer_id"]),
                    openid=str(event.payload["openid"]))
