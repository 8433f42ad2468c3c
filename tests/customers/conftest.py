from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from siyu.config import get_settings
from siyu.core.auth import Role
from siyu.merchants.models import Agent, Merchant, Staff, Store
from tests.factories.merchants import make_agent, make_merchant, make_staff, make_store
from tests.fakes import INVALID_CODE, JsonServer


@dataclasses.dataclass
class Org:
    merchant: Merchant
    agent: Agent
    store_a: Store  # under the agent
    store_b: Store  # directly under the brand
    admin: Staff
    agent_admin: Staff
    manager_a: Staff
    guide_a: Staff
    guide_a2: Staff
    guide_b: Staff
    other_admin: Staff  # another merchant's brand admin


@pytest.fixture
def org(db) -> Org:
    merchant = make_merchant(db)
    agent = make_agent(db, merchant=merchant)
    store_a = make_store(db, merchant=merchant, agent=agent)
    store_b = make_store(db, merchant=merchant)
    other = make_merchant(db)
    return Org(
        merchant=merchant, agent=agent, store_a=store_a, store_b=store_b,
        admin=make_staff(db, merchant=merchant),
        agent_admin=make_staff(db, merchant=merchant, role=Role.AGENT_ADMIN, agent=agent),
        manager_a=make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store_a),
        guide_a=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a),
        guide_a2=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a),
        guide_b=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_b),
        other_admin=make_staff(db, merchant=other),
    )


class FakeWechat(JsonServer):
    """A local stand-in for WeChat's API: answers /sns/jscode2session from `answers` by code."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        super().__init__(lambda _path, params: self.answers.get(params.get("js_code", [""])[0], INVALID_CODE))


@pytest.fixture
def fake_wechat(monkeypatch):
    fake = FakeWechat()
    monkeypatch.setattr(get_settings(), "wechat_api_base", fake.url)
    yield fake
    fake.close()


@pytest.fixture
def dev_login_off(monkeypatch):
    monkeypatch.setattr(get_settings(), "dev_login", False)
