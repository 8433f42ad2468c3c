from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.models import Customer, CustomerIdentity, CustomerTag, Tag, TagGroup
from siyu.merchants.models import Merchant, Staff, Store

_seq = itertools.count(1)


def make_customer(session: Session, *, merchant: Merchant, owner: Staff | None = None, store: Store | None = None,
                  nickname: str = "顾客", phone: str = "", openid: str | None = None, name: str = "",
                  created_at: dt.datetime | None = None, tags: list[Tag] = (), **stats: object) -> Customer:
    """A customer with an openid identity (and a phone identity when `phone` is given). The store
    defaults to the owner's store."""
    n = next(_seq)
    if store is None and owner is not None and owner.store_id:
        store = session.get(Store, owner.store_id)
    customer = Customer(merchant_id=merchant.id, nickname=nickname, name=name, phone=phone,
                        owner_id=owner.id if owner else None, store_id=store.id if store else None,
                        created_at=created_at or clock.now(), **stats)
    session.add(customer)
    session.flush()
    session.add(CustomerIdentity(merchant_id=merchant.id, customer_id=customer.id, kind="openid",
                                 value=openid or f"openid-{n:06d}"))
    if phone:
        session.add(CustomerIdentity(merchant_id=merchant.id, customer_id=customer.id, kind="phone", value=phone))
    for tag in tags:
        session.add(CustomerTag(merchant_id=merchant.id, customer_id=customer.id, tag_id=tag.id))
    session.flush()
    return customer


def make_tag_group(session: Session, *, merchant: Merchant, name: str | None = None) -> TagGroup:
    group = TagGroup(merchant_id=merchant.id, name=name or f"分组{next(_seq)}")
    session.add(group)
    session.flush()
    return group


def make_tag(session: Session, *, merchant: Merchant, group: TagGroup | None = None, name: str | None = None) -> Tag:
    group = group or make_tag_group(session, merchant=merchant)
    tag = Tag(merchant_id=merchant.id, group_id=group.id, name=name or f"标签{next(_seq)}")
    session.add(tag)
    session.flush()
    return tag
