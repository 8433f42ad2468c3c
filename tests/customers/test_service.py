from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.demo import DemoContext
from siyu.core.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.core.models import OutboxEvent
from siyu.customers import demo, service, signin
from siyu.customers.models import (
    Customer,
    CustomerIdentity,
    CustomerStatChange,
    CustomerTag,
    CustomerTimeline,
    CustomerToken,
    Tag,
)
from tests.factories.customers import make_customer, make_tag
from tests.factories.merchants import make_merchant, principal_of

T0 = dt.datetime(2025, 3, 1, 4, 0, tzinfo=dt.UTC)


def _events(db, name):
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id))]


# ---------------------------------------------------------------- identities


def test_find_or_create_by_identity_creates_once(db):
    # given
    merchant = make_merchant(db)
    # when
    first, created = service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="openid", value="o-1",
                                                        nickname="小王")
    again, created_again = service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="openid", value="o-1",
                                                              nickname="别的")
    # then
    assert created is True and created_again is False
    assert again.id == first.id and again.nickname == "小王"
    assert db.scalar(select(func.count()).select_from(CustomerIdentity)
                     .where(CustomerIdentity.merchant_id == merchant.id)) == 1
    assert [t.kind for t in service.timeline(db, customer=first)] == ["created"]
    assert _events(db, "customer.created") == [{"customer_id": first.id, "identity_kind": "openid"}]


def test_same_identity_value_in_two_merchants_is_two_customers(db):
    a, b = make_merchant(db), make_merchant(db)
    ca, _ = service.find_or_create_by_identity(db, merchant_id=a.id, kind="phone", value="13800000001")
    cb, _ = service.find_or_create_by_identity(db, merchant_id=b.id, kind="phone", value="13800000001")
    assert ca.id != cb.id
    assert ca.phone == "13800000001"


def test_bad_identity_is_refused(db):
    merchant = make_merchant(db)
    with pytest.raises(ValidationFailed):
        service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="email", value="x@y")
    with pytest.raises(ValidationFailed):
        service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="phone", value="not-a-phone")
    with pytest.raises(ValidationFailed):
        service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="openid", value="x" * 129)
    assert db.scalar(select(func.count()).select_from(Customer).where(Customer.merchant_id == merchant.id)) == 0


def test_binding_a_phone_held_by_another_customer_merges_them(db):
    # given an in-store customer with a phone, and the same person signing in online
    merchant = make_merchant(db)
    older = make_customer(db, merchant=merchant, nickname="门店顾客", phone="13900000002")
    newer = make_customer(db, merchant=merchant, nickname="线上", openid="o-new")
    # when the online customer binds that phone
    survivor = service.bind_identity(db, merchant_id=merchant.id, customer_id=newer.id, kind="phone",
                                     value="139-0000-0002")
    # then they are one customer: the older one, holding both identities
    assert survivor.id == older.id
    db.refresh(newer)
    assert newer.merged_into_id == older.id
    kinds = {(i.kind, i.value) for i in service.identities(db, customer=older)}
    assert ("openid", "o-new") in kinds and ("phone", "13900000002") in kinds
    # and signing in with the merged customer's openid resolves to the survivor
    found, created = service.find_or_create_by_identity(db, merchant_id=merchant.id, kind="openid", value="o-new")
    assert (found.id, created) == (older.id, False)


def test_bind_identity_adds_a_new_identity(db):
    merchant = make_merchant(db)
    c = make_customer(db, merchant=merchant)
    same = service.bind_identity(db, merchant_id=merchant.id, customer_id=c.id, kind="unionid", value="u-1")
    again = service.bind_identity(db, merchant_id=merchant.id, customer_id=c.id, kind="unionid", value="u-1")
    assert same.id == again.id == c.id
    assert [i.kind for i in service.identities(db, customer=c)] == ["openid", "unionid"]
    assert [t.kind for t in service.timeline(db, customer=c)] == ["identity_added"]


# ---------------------------------------------------------------- stats


def test_record_paid_order_updates_stats_and_is_idempotent(db):
    # given
    merchant = make_merchant(db)
    c = make_customer(db, merchant=merchant)
    # when: two orders, the second one paid earlier than the first (events can arrive out of order)
    assert service.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=11, amount_cents=5000,
                                     paid_at=T0) is True
    assert service.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=12, amount_cents=9900,
                                     paid_at=T0 - dt.timedelta(days=3)) is True
    replay = service.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=11, amount_cents=5000,
                                       paid_at=T0)
    # then
    assert replay is False
    db.refresh(c)
    assert (c.paid_orders, c.total_spent_cents, c.max_order_cents, c.last_order_cents) == (2, 14900, 9900, 5000)
    assert c.first_purchase_at == T0 - dt.timedelta(days=3)
    assert c.last_purchase_at == T0
    assert db.scalar(select(func.count()).select_from(CustomerStatChange).where(CustomerStatChange.customer_id == c.id)) == 2


def test_record_refund_is_idempotent_per_order_and_per_refund(db):
    merchant = make_merchant(db)
    c = make_customer(db, merchant=merchant)
    service.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=21, amount_cents=10000, paid_at=T0)
    assert service.record_refund(db, merchant_id=merchant.id, customer_id=c.id, order_id=21, amount_cents=3000,
                                 refunded_at=T0) is True
    assert service.record_refund(db, merchant_id=merchant.id, customer_id=c.id, order_id=21, amount_cents=3000,
                                 refunded_at=T0) is False
    assert service.record_refund(db, merchant_id=merchant.id, customer_id=c.id, order_id=21, amount_cents=1000,
                                 refunded_at=T0, refund_id=7) is True
    db.refresh(c)
    assert (c.paid_orders, c.total_spent_cents, c.refunded_cents) == (1, 6000, 4000)


def test_stats_of_unknown_or_foreign_customer_raise(db):
    a, b = make_merchant(db), make_merchant(db)
    c = make_customer(db, merchant=a)
    with pytest.raises(NotFound):
        service.record_paid_order(db, merchant_id=b.id, customer_id=c.id, order_id=1, amount_cents=1, paid_at=T0)
    with pytest.raises(ValueError):
        service.record_paid_order(db, merchant_id=a.id, customer_id=c.id, order_id=1, amount_cents=-1, paid_at=T0)
    db.refresh(c)
    assert c.paid_orders == 0
    assert db.scalar(select(func.count()).select_from(CustomerStatChange)) == 0


# ---------------------------------------------------------------- merge


def test_merge_moves_everything_and_combines_stats(db, org):
    # given two records of the same person
    m = org.merchant
    t1, t2, t3 = (make_tag(db, merchant=m) for _ in range(3))
    target = make_customer(db, merchant=m, nickname="目标", owner=org.guide_a, tags=[t1, t2], openid="o-target")
    target.notes = "喜欢红色"
    source = make_customer(db, merchant=m, nickname="来源", phone="13700000003", owner=org.guide_b, tags=[t2, t3],
                           openid="o-source")
    source.notes = "周末到店"
    source.name = "李四"
    db.flush()
    service.record_paid_order(db, merchant_id=m.id, customer_id=target.id, order_id=1, amount_cents=1000, paid_at=T0)
    service.record_paid_order(db, merchant_id=m.id, customer_id=target.id, order_id=2, amount_cents=3000,
                              paid_at=T0 + dt.timedelta(days=1))
    service.record_paid_order(db, merchant_id=m.id, customer_id=source.id, order_id=3, amount_cents=2000,
                              paid_at=T0 - dt.timedelta(days=10))
    service.record_paid_order(db, merchant_id=m.id, customer_id=source.id, order_id=4, amount_cents=500,
                              paid_at=T0 + dt.timedelta(days=5))
    service.record_refund(db, merchant_id=m.id, customer_id=source.id, order_id=3, amount_cents=200, refunded_at=T0)
    token = signin.issue_customer_token(db, source)
    admin = principal_of(db, org.admin)
    # when
    merged = service.merge_customers(db, source_id=source.id, target_id=target.id, actor=admin)
    # then the target holds both
    db.refresh(source)
    assert merged.id == target.id
    assert (merged.paid_orders, merged.total_spent_cents, merged.refunded_cents) == (4, 6300, 200)
    assert merged.first_purchase_at == T0 - dt.timedelta(days=10)
    assert merged.last_purchase_at == T0 + dt.timedelta(days=5)
    assert (merged.last_order_cents, merged.max_order_cents) == (500, 3000)
    assert merged.nickname == "目标" and merged.name == "李四" and merged.phone == "13700000003"
    assert merged.notes == "喜欢红色\n周末到店"
    assert merged.owner_id == org.guide_a.id
    assert sorted(db.scalars(select(CustomerTag.tag_id).where(CustomerTag.customer_id == target.id))) == sorted([t1.id, t2.id, t3.id])
    assert db.scalars(select(CustomerTag.tag_id).where(CustomerTag.customer_id == source.id)).all() == []
    assert {i.value for i in service.identities(db, customer=merged)} == {"o-target", "o-source", "13700000003"}
    # the source stays for history, marked and emptied
    assert source.merged_into_id == target.id and source.merged_at is not None
    assert (source.paid_orders, source.total_spent_cents, source.last_purchase_at) == (0, 0, None)
    # the source's session now signs in as the target; replays of its orders stay no-ops
    assert signin.resolve_customer_token(db, token, merchant_id=m.id).customer_id == target.id
    assert db.scalar(select(CustomerToken.customer_id)) == target.id
    assert service.record_paid_order(db, merchant_id=m.id, customer_id=source.id, order_id=3, amount_cents=2000,
                                     paid_at=T0) is False
    # timeline and event
    assert [t.kind for t in service.timeline(db, customer=merged)][0] == "merged"
    assert [t.kind for t in service.timeline(db, customer=source)] == ["merged"]
    assert _events(db, "customer.merged") == [{"source_id": source.id, "target_id": target.id}]
    # a later paid order for the merged-away customer lands on the target
    service.record_paid_order(db, merchant_id=m.id, customer_id=source.id, order_id=5, amount_cents=100, paid_at=T0)
    db.refresh(target)
    assert target.paid_orders == 5


def test_merge_needs_permission_and_distinct_live_customers(db, org):
    m = org.merchant
    a = make_customer(db, merchant=m, owner=org.guide_a)
    b = make_customer(db, merchant=m, owner=org.guide_a)
    with pytest.raises(PermissionDenied):
        service.merge_customers(db, source_id=a.id, target_id=b.id, actor=principal_of(db, org.manager_a))
    admin = principal_of(db, org.admin)
    with pytest.raises(Exception) as exc:
        service.merge_customers(db, source_id=a.id, target_id=a.id, actor=admin)
    assert getattr(exc.value, "code", "") == "merge_same_customer"
    other = make_customer(db, merchant=make_merchant(db))
    with pytest.raises(NotFound):
        service.merge_customers(db, source_id=other.id, target_id=b.id, actor=admin)
    service.merge_customers(db, source_id=a.id, target_id=b.id, actor=admin)
    with pytest.raises(Exception) as exc:
        service.merge_customers(db, source_id=a.id, target_id=b.id, actor=admin)
    assert getattr(exc.value, "code", "") == "customer_merged"
    assert len(_events(db, "customer.merged")) == 1


# ---------------------------------------------------------------- owner, profile, tags


def test_set_owner_takes_the_guides_store_and_writes_timeline(db, org):
    m = org.merchant
    c = make_customer(db, merchant=m, owner=org.guide_b)
    system = system_principal(m.id)
    service.set_owner(db, customer_id=c.id, owner_id=org.guide_a.id, store_id=None, actor=system, reason="transfer")
    assert (c.owner_id, c.store_id) == (org.guide_a.id, org.store_a.id)
    entry = service.timeline(db, customer=c)[0]
    assert entry.kind == "owner_changed"
    assert entry.details == {"from": {"owner_id": org.guide_b.id, "store_id": org.store_b.id},
                             "to": {"owner_id": org.guide_a.id, "store_id": org.store_a.id}, "reason": "transfer"}
    assert _events(db, "customer.owner_changed")[0]["previous_owner_id"] == org.guide_b.id
    other_guide = principal_of(db, org.other_admin)
    with pytest.raises(NotFound):
        service.set_owner(db, customer_id=c.id, owner_id=None, store_id=None, actor=other_guide)
    with pytest.raises(NotFound):
        service.set_owner(db, customer_id=c.id, owner_id=org.other_admin.id, store_id=None, actor=system)
    assert c.owner_id == org.guide_a.id


def test_update_profile_validates_every_field(db, org):
    c = make_customer(db, merchant=org.merchant, owner=org.guide_a)
    guide = principal_of(db, org.guide_a)
    with pytest.raises(ValidationFailed) as exc:
        service.update_profile(db, c.id, actor=guide, nickname="", gender="x", birthday="1990-13-01", phone="abc")
    assert set(exc.value.details["fields"]) == {"nickname", "gender", "birthday", "phone"}
    assert c.nickname == "顾客"
    service.update_profile(db, c.id, actor=guide, name="王五", birthday="1990-05-01", gender="female", phone="13600000009")
    assert (c.name, c.birthday, c.gender, c.phone) == ("王五", dt.date(1990, 5, 1), "female", "13600000009")
    assert ("phone", "13600000009") in {(i.kind, i.value) for i in service.identities(db, customer=c)}
    assert service.timeline(db, customer=c)[0].details == {"fields": ["birthday", "gender", "name", "phone"]}


def test_tags_need_permission_and_stay_in_tenant(db, org):
    with pytest.raises(PermissionDenied):
        service.create_tag_group(db, actor=principal_of(db, org.guide_a), name="来源")
    admin = principal_of(db, org.admin)
    group = service.create_tag_group(db, actor=admin, name="来源")
    with pytest.raises(ValidationFailed):
        service.create_tag_group(db, actor=admin, name="来源")
    tag = service.create_tag(db, actor=admin, group_id=group.id, name="门店")
    with pytest.raises(ValidationFailed):
        service.create_tag(db, actor=principal_of(db, org.other_admin), group_id=group.id, name="x")
    assert db.scalar(select(func.count()).select_from(Tag).where(Tag.group_id == group.id)) == 1
    c = make_customer(db, merchant=org.merchant, owner=org.guide_a)
    assert [t.id for t in service.add_tags(db, c.id, tag_ids=[tag.id], actor=principal_of(db, org.guide_a))] == [tag.id]
    assert service.add_tags(db, c.id, tag_ids=[tag.id], actor=admin) == []


# ---------------------------------------------------------------- dashboard figures and demo


def test_new_customer_counts_by_shanghai_day(db):
    m = make_merchant(db)
    day = dt.date(2025, 3, 1)
    start, _ = clock.local_day_bounds(day)
    make_customer(db, merchant=m, created_at=start - dt.timedelta(minutes=1))  # Feb 28 local
    make_customer(db, merchant=m, created_at=start)  # Mar 1, 00:00 local
    make_customer(db, merchant=m, created_at=start + dt.timedelta(hours=23, minutes=59))
    make_customer(db, merchant=m, created_at=start + dt.timedelta(days=2, hours=1))
    merged = make_customer(db, merchant=m, created_at=start + dt.timedelta(hours=1))
    merged.merged_into_id = db.scalar(select(Customer.id).where(Customer.merchant_id == m.id).order_by(Customer.id))
    db.flush()
    assert service.count_new_customers(db, merchant_id=m.id, start=day, end=day + dt.timedelta(days=3)) == 3
    assert service.new_customers_by_day(db, merchant_id=m.id, start=day, end=day + dt.timedelta(days=3)) == [
        (dt.date(2025, 3, 1), 2), (dt.date(2025, 3, 2), 0), (dt.date(2025, 3, 3), 1)]


def test_demo_seed_is_deterministic_and_bulk(db, org):
    def run():
        ctx = DemoContext(rng=random.Random(7), now=T0, merchant_id=org.merchant.id, scale=0.01,
                          store_ids=[org.store_a.id, org.store_b.id], guide_ids=[org.guide_a.id, org.guide_b.id],
                          guide_store={org.guide_a.id: org.store_a.id, org.guide_b.id: org.store_b.id})
        demo.seed(db, ctx)
        return ctx

    ctx = run()
    ids = ctx.data["customer_ids"]
    assert len(ids) == 50
    customers = db.scalars(select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)).all()
    assert all(c.nickname for c in customers)
    assert all(c.created_at <= T0 and c.created_at > T0 - dt.timedelta(days=366) for c in customers)
    assert all(c.store_id == {org.guide_a.id: org.store_a.id, org.guide_b.id: org.store_b.id}[c.owner_id]
               for c in customers if c.owner_id)
    assert db.scalar(select(func.count()).select_from(CustomerIdentity)
                     .where(CustomerIdentity.customer_id.in_(ids), CustomerIdentity.kind == "openid")) == 50
    assert db.scalar(select(func.count()).select_from(CustomerTimeline).where(CustomerTimeline.customer_id.in_(ids))) == 50
    first = [(c.nickname, c.phone) for c in customers]
    # the same seed builds the same customers (in a second merchant)
    org.merchant = make_merchant(db)
    ctx2 = run()
    again = db.scalars(select(Customer).where(Customer.id.in_(ctx2.data["customer_ids"])).order_by(Customer.id)).all()
    assert [(c.nickname, c.phone) for c in again] == first


def test_new_customer_counts_in_an_actors_scope(db, org):
    day = dt.date(2025, 3, 1)
    start, _ = clock.local_day_bounds(day)
    make_customer(db, merchant=org.merchant, owner=org.guide_a, created_at=start + dt.timedelta(hours=1))
    make_customer(db, merchant=org.merchant, owner=org.guide_a2, created_at=start + dt.timedelta(hours=2))
    make_customer(db, merchant=org.merchant, owner=org.guide_b, created_at=start + dt.timedelta(hours=3))
    end = day + dt.timedelta(days=1)
    m = org.merchant.id
    assert service.count_new_customers(db, merchant_id=m, start=day, end=end) == 3
    assert service.count_new_customers(db, merchant_id=m, start=day, end=end, actor=principal_of(db, org.guide_a)) == 1
    assert service.count_new_customers(db, merchant_id=m, start=day, end=end, actor=principal_of(db, org.manager_a)) == 2
    assert service.new_customers_by_day(db, merchant_id=m, start=day, end=end,
                                        actor=principal_of(db, org.guide_b)) == [(day, 1)]
    with pytest.raises(NotFound):
        service.count_new_customers(db, merchant_id=m, start=day, end=end, actor=principal_of(db, org.other_admin))
