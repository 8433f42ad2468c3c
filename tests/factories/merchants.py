from __future__ import annotations

import itertools
from functools import lru_cache

from sqlalchemy.orm import Session

from siyu.core.auth import Principal, Role, hash_password
from siyu.merchants import service
from siyu.merchants.models import Agent, Merchant, Staff, Store

PASSWORD = "password-123"
_seq = itertools.count(1)


@lru_cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def make_merchant(session: Session, *, slug: str | None = None, name: str = "测试品牌") -> Merchant:
    n = next(_seq)
    return service.create_merchant(session, slug=slug or f"m{n:04d}x", name=name)


def make_agent(session: Session, *, merchant: Merchant, name: str | None = None) -> Agent:
    agent = Agent(merchant_id=merchant.id, name=name or f"代理{next(_seq)}")
    session.add(agent)
    session.flush()
    return agent


def make_store(session: Session, *, merchant: Merchant, name: str | None = None, agent: Agent | None = None,
               latitude: float | None = 31.2304, longitude: float | None = 121.4737, address: str = "上海市黄浦区") -> Store:
    store = Store(merchant_id=merchant.id, name=name or f"门店{next(_seq)}", agent_id=agent.id if agent else None,
                  latitude=latitude, longitude=longitude, address=address, opening_hours="10:00-22:00")
    session.add(store)
    session.flush()
    return store


def make_staff(session: Session, *, merchant: Merchant, role: str | Role = Role.BRAND_ADMIN, store: Store | None = None,
               agent: Agent | None = None, username: str | None = None, name: str | None = None,
               active: bool = True) -> Staff:
    n = next(_seq)
    staff = Staff(merchant_id=merchant.id, username=username or f"user{n}", password_hash=_password_hash(),
                  name=name or f"员工{n}", role=Role(role).value, store_id=store.id if store else None,
                  agent_id=agent.id if agent else (store.agent_id if store else None), active=active)
    session.add(staff)
    session.flush()
    return staff


def principal_of(session: Session, staff: Staff) -> Principal:
    return service.principal_for(session, staff)


def auth_headers(session: Session, staff: Staff) -> dict[str, str]:
    raw, _ = service.issue_token(session, staff, kind="api")
    session.flush()
    return {"Authorization": f"Bearer {raw}"}
