"""The demo merchant 示例品牌: one agent, three stores (Shanghai, Hangzhou, Suzhou), a brand admin,
an agent admin, a manager per store and four guides per store. Every login's password is
core.demo.DEMO_PASSWORD."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.auth import Role, hash_password, system_principal
from siyu.core.demo import DEMO_PASSWORD, DEMO_SLUG, DemoContext
from siyu.merchants import service

MERCHANT_NAME = "示例品牌"
AGENT_NAME = "华东代理"
GUIDES_PER_STORE = 4

# (name, address, latitude, longitude, opening hours, phone, under the agent)
STORES = (
    ("上海南京西路店", "上海市静安区南京西路1266号恒隆广场2楼215室", 31.229088, 121.452566, "10:00-22:00", "021-62881266", False),
    ("杭州湖滨银泰店", "杭州市上城区延安路258号湖滨银泰in77 B区1楼B112", 30.259244, 120.164905, "10:00-22:00", "0571-87001258", True),
    ("苏州观前街店", "苏州市姑苏区观前街245号", 31.310737, 120.622910, "09:30-21:30", "0512-65230245", True),
)
MANAGER_NAMES = ("陈晓华", "王立群", "周敏")
GUIDE_NAMES = ("李娜", "张伟", "刘洋", "赵静", "孙悦", "杨帆", "吴婷", "郑浩", "黄蕾", "何佳", "林晨", "徐露")


def seed(session: Session, ctx: DemoContext) -> None:
    """Create the demo merchant and its org tree; fill ctx with the ids later domains use."""
    merchant = service.create_merchant(session, slug=DEMO_SLUG, name=MERCHANT_NAME,
                                       settings={"protection_days": service.DEFAULT_PROTECTION_DAYS})
    since = ctx.now - dt.timedelta(days=400)
    merchant.created_at = since
    system = system_principal(merchant.id)
    # argon2 is slow on purpose: hash the one demo password once and reuse it for every login.
    password_hash = hash_password(DEMO_PASSWORD)

    def staff(username: str, name: str, role: Role, *, store_id: int | None = None, agent_id: int | None = None,
              phone: str = ""):
        row = service.create_staff(session, actor=system, username=username, password=DEMO_PASSWORD, name=name,
                                   role=role, phone=phone, store_id=store_id, agent_id=agent_id,
                                   password_hash=password_hash)
        row.created_at = since
        return row

    agent = service.create_agent(session, actor=system, name=AGENT_NAME, region="华东")
    agent.created_at = since
    admin = staff("admin", "品牌管理员", Role.BRAND_ADMIN, phone="13800000001")
    staff("agent1", "华东代理管理员", Role.AGENT_ADMIN, agent_id=agent.id, phone="13800000002")

    ctx.store_ids, ctx.guide_ids, ctx.guide_store = [], [], {}
    guide_no = 0
    for i, (name, address, lat, lng, hours, phone, under_agent) in enumerate(STORES):
        store = service.create_store(session, actor=system, name=name, address=address, latitude=lat, longitude=lng,
                                     opening_hours=hours, phone=phone, agent_id=agent.id if under_agent else None)
        store.created_at = since
        ctx.store_ids.append(store.id)
        staff(f"manager{i + 1}", MANAGER_NAMES[i], Role.STORE_MANAGER, store_id=store.id,
              phone=f"1390000{i + 1:04d}")
        for _ in range(GUIDES_PER_STORE):
            guide_no += 1
            guide = staff(f"guide{guide_no}", GUIDE_NAMES[guide_no - 1], Role.GUIDE, store_id=store.id,
                          phone=f"1370000{guide_no:04d}")
            ctx.guide_ids.append(guide.id)
            ctx.guide_store[guide.id] = store.id

    session.flush()
    ctx.merchant_id = merchant.id
    ctx.admin = service.principal_for(session, admin)
