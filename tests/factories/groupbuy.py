"""Factories for group buying: compounds, leaders (active pickup points), waves with items, and
leader orders placed and paid through the real checkout."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy.orm import Session

from siyu.catalog.models import Sku
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.customers.models import Customer
from siyu.groupbuy import service
from siyu.groupbuy.models import Compound, Leader, Wave
from siyu.groupbuy.service.community import CompoundIn
from siyu.groupbuy.service.leaders import LeaderApplication
from siyu.groupbuy.service.waves import WaveIn, WaveItemIn
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer

_seq = itertools.count(1)


def make_compound(session: Session, *, merchant: Merchant, name: str | None = None, households: int = 500,
                  latitude: float | None = 31.23, longitude: float | None = 121.47, region: str = "浦东") -> Compound:
    return service.community.create_compound(session, actor=system_principal(merchant.id), data=CompoundIn(
        name=name or f"小区{next(_seq)}", address="上海市", region=region, latitude=latitude, longitude=longitude,
        households=households))


def make_leader(session: Session, *, merchant: Merchant, customer: Customer | None = None, latitude: float = 31.23,
                longitude: float = 121.47, route: str = "A", region: str = "", compound: Compound | None = None,
                commission_bps: int | None = None, status: str = "active", name: str | None = None) -> Leader:
    """An active leader (a customer signed up by staff); `status="applied"` leaves the application."""
    n = next(_seq)
    customer = customer or make_customer(session, merchant=merchant, nickname=f"团长{n}")
    application = LeaderApplication(name=name or f"团长{n}", phone=f"139{n:08d}", point_name=f"自提点{n}",
                                    address=f"上海市某路 {n} 号", latitude=latitude, longitude=longitude,
                                    opening_hours="08:00-20:00", compound_id=compound.id if compound else None,
                                    region=region)
    if status == "applied":
        from tests.factories.orders import customer_principal

        return service.leaders.apply(session, actor=customer_principal(customer), application=application)
    return service.leaders.create_leader(session, actor=system_principal(merchant.id), customer_id=customer.id,
                                         application=application, route=route, commission_bps=commission_bps)


def make_wave(session: Session, *, merchant: Merchant, items: list[tuple[Sku, int, int] | tuple[Sku, int, int, int | None]],
              starts_at: dt.datetime | None = None, cutoff_at: dt.datetime | None = None,
              delivery_date: dt.date | None = None, status: str = "open", leader_ids: list[int] | None = None,
              regions: list[str] | None = None, commission_bps: int | None = None, title: str | None = None) -> Wave:
    """A wave of (sku, group price, allocation[, per-customer limit]) items, opened unless `status="draft"`."""
    now = clock.now()
    starts_at = starts_at or now - dt.timedelta(hours=1)
    cutoff_at = cutoff_at or now + dt.timedelta(days=1)
    delivery_date = delivery_date or (clock.local(cutoff_at).date() + dt.timedelta(days=1))  # type: ignore[union-attr]
    system = system_principal(merchant.id)
    wave = service.waves.create_wave(session, actor=system, data=WaveIn(
        title=title or f"团购第{next(_seq)}期", starts_at=starts_at, cutoff_at=cutoff_at, delivery_date=delivery_date,
        items=[WaveItemIn(sku_id=i[0].id, price_cents=i[1], allocation=i[2],
                          per_customer_limit=i[3] if len(i) > 3 else None) for i in items],
        leader_ids=leader_ids or [], regions=regions or [], commission_bps=commission_bps))
    if status == "open":
        service.waves.open_wave(session, wave.id, actor=system)
    return wave


def leader_fulfilment(leader: Leader) -> dict[str, Any]:
    return {"type": "leader", "leader_id": leader.id}
