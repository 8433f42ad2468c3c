from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from siyu.core.auth import Role, system_principal
from siyu.core.demo import DEMO_PASSWORD, DemoContext
from siyu.core.errors import PermissionDenied
from siyu.merchants import demo, service
from siyu.merchants.models import Agent, Merchant, Staff, Store
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of

NOW = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)


def _seed(db) -> DemoContext:
    ctx = DemoContext(rng=random.Random(2026), now=NOW, scale=0.01)
    demo.seed(db, ctx)
    return ctx


def test_demo_seed_builds_the_org_tree_and_fills_the_context(db):
    # when
    ctx = _seed(db)
    # then the merchant
    merchant = db.get(Merchant, ctx.merchant_id)
    assert (merchant.slug, merchant.name, merchant.settings) == ("demo", "示例品牌", {"protection_days": 30})
    # one agent, three stores in Shanghai, Hangzhou and Suzhou with locations and hours
    agent = db.scalars(select(Agent).where(Agent.merchant_id == merchant.id)).one()
    assert agent.name == "华东代理"
    stores = db.scalars(select(Store).where(Store.merchant_id == merchant.id).order_by(Store.id)).all()
    assert [s.id for s in stores] == ctx.store_ids
    assert [s.address[:3] for s in stores] == ["上海市", "杭州市", "苏州市"]
    assert all(s.latitude and s.longitude and s.opening_hours and s.phone and s.active for s in stores)
    assert [s.agent_id for s in stores] == [None, agent.id, agent.id]
    # the logins
    staff = db.scalars(select(Staff).where(Staff.merchant_id == merchant.id).order_by(Staff.id)).all()
    by_name = {s.username: s for s in staff}
    assert set(by_name) == {"admin", "agent1", "manager1", "manager2", "manager3", *(f"guide{i}" for i in range(1, 13))}
    assert by_name["admin"].role == "brand_admin"
    assert (by_name["agent1"].role, by_name["agent1"].agent_id) == ("agent_admin", agent.id)
    assert [by_name[f"manager{i}"].store_id for i in (1, 2, 3)] == ctx.store_ids
    assert all(by_name[f"manager{i}"].role == "store_manager" for i in (1, 2, 3))
    # four guides per store, guide1..4 in the first store
    assert ctx.guide_ids == [by_name[f"guide{i}"].id for i in range(1, 13)]
    assert ctx.guide_store == {by_name[f"guide{i}"].id: ctx.store_ids[(i - 1) // 4] for i in range(1, 13)}
    assert all(by_name[f"guide{i}"].role == "guide" for i in range(1, 13))
    # the password was hashed once and works for every login
    assert len({s.password_hash for s in staff}) == 1
    assert service.authenticate(db, username="admin", password=DEMO_PASSWORD).id == by_name["admin"].id
    assert service.authenticate(db, username="guide1", password=DEMO_PASSWORD).id == by_name["guide1"].id
    # times come from ctx.now, not the wall clock
    assert all(s.created_at == NOW - dt.timedelta(days=400) for s in staff)
    # the admin principal
    assert ctx.admin.role == Role.BRAND_ADMIN and ctx.admin.merchant_id == merchant.id
    assert ctx.admin.subject_id == by_name["admin"].id
    # the agent admin sees the agent's two stores
    assert service.principal_for(db, by_name["agent1"]).store_ids == tuple(ctx.store_ids[1:])


def test_demo_guides_are_four_per_store(db):
    first = _seed(db)
    shape = (len(first.store_ids), len(first.guide_ids), sorted(first.guide_store.values()))
    assert shape == (3, 12, sorted(first.store_ids * 4))


def test_public_settings_hide_the_secret(db):
    merchant = make_merchant(db)
    assert service.public_settings(merchant) == {"wechat_miniprogram_appid": "", "wechat_miniprogram_secret_set": False,
                                                 "protection_days": 30}
    admin = make_staff(db, merchant=merchant)
    service.update_merchant(db, actor=principal_of(db, admin), settings={"wechat_miniprogram_secret": "abc", "protection_days": 7})
    assert service.public_settings(merchant) == {"wechat_miniprogram_appid": "", "wechat_miniprogram_secret_set": True,
                                                 "protection_days": 7}
    assert service.merchant_setting(db, merchant.id, "protection_days", 30) == 7


def test_update_merchant_merges_settings_and_needs_the_brand(db):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    store = make_store(db, merchant=merchant)
    manager = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store)
    service.update_merchant(db, actor=principal_of(db, admin), settings={"a": 1})
    service.update_merchant(db, actor=principal_of(db, admin), name="新名字", settings={"b": 2})
    assert (merchant.name, merchant.settings) == ("新名字", {"a": 1, "b": 2})
    with pytest.raises(PermissionDenied):
        service.update_merchant(db, actor=principal_of(db, manager), name="店长改名")
    assert merchant.name == "新名字"


def test_system_principal_creates_any_role(db):
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    staff = service.create_staff(db, actor=system_principal(merchant.id), username="sys-made", password="longenough1",
                                 name="系统建", role=Role.STORE_MANAGER, store_id=store.id)
    assert (staff.role, staff.store_id) == ("store_manager", store.id)
