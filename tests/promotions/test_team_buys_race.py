"""The last seat of a team, raced by real threads on a real (committed) database: several friends with
pending orders pay at once for a team with one seat left. Exactly one takes the seat; every other
payment is refunded through the provider (on_full = "refund") or opens a team of its own
("new_team"); money and stock balance. Expiry run twice at once refunds each member once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.db import Database, use_database
from siyu.merchants.models import Merchant
from siyu.orders.models import Order, RefundRequest
from siyu.payments.models import PaymentRefund
from siyu.promotions.models.team_buys import Team, TeamMember
from siyu.promotions.service import team_buys as service
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import pay
from tests.factories.promotions import make_team_buy, team_buy_order
from tests.promotions.conftest import run_at_once

FRIENDS = 6
STOCK = 50


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h4_team_race") as database:
        yield database


def _setup(race_db: Database, *, on_full: str, team_size: int = 2) -> dict:
    """A team with one seat left (paid members) and FRIENDS pending orders for it, committed."""
    with use_database(race_db):
        with race_db.scope() as session:
            merchant = make_merchant(session)
            campaign = make_team_buy(session, merchant=merchant, team_size=team_size, on_full=on_full,
                                     team_price_cents=800, stock=STOCK)
            first = team_buy_order(session, customer=make_customer(session, merchant=merchant), campaign=campaign)
            ids = {"merchant": merchant.id, "campaign": campaign.id, "first": first.id,
                   "sku": service.campaign_skus(session, campaign.id)[0].sku_id}
        with race_db.scope() as session:
            pay(session, session.get(Order, ids["first"]))
        with race_db.scope() as session:
            ids["team"] = session.scalars(select(TeamMember.team_id).where(TeamMember.order_id == ids["first"])).one()
        for _ in range(team_size - 2):
            with race_db.scope() as session:
                merchant = session.get(Merchant, ids["merchant"])
                campaign = service.get_campaign(session, ids["campaign"], merchant_id=merchant.id)
                pay(session, team_buy_order(session, customer=make_customer(session, merchant=merchant),
                                            campaign=campaign, team=ids["team"]))
        with race_db.scope() as session:
            merchant = session.get(Merchant, ids["merchant"])
            campaign = service.get_campaign(session, ids["campaign"], merchant_id=merchant.id)
            ids["orders"] = [team_buy_order(session, customer=make_customer(session, merchant=merchant),
                                            campaign=campaign, team=ids["team"]).id for _ in range(FRIENDS)]
    return ids


def _pay_all(race_db: Database, order_ids: list[int]) -> dict[int, str]:
    results: dict[int, str] = {}
    started = threading.Barrier(len(order_ids))

    def run(order_id: int) -> None:
        with use_database(race_db):
            started.wait()
            try:
                with race_db.scope() as session:
                    pay(session, session.get(Order, order_id))
                results[order_id] = "ok"
            except Exception as exc:  # noqa: BLE001 — the assertion below names it
                results[order_id] = repr(exc)

    run_at_once(run, [(i,) for i in order_ids])
    return results


def test_last_seat_one_winner_others_refunded(race_db: Database) -> None:
    team_size = 3
    # given a team with one seat left and six friends with pending orders for it
    ids = _setup(race_db, on_full="refund", team_size=team_size)
    # when they all pay at once
    results = _pay_all(race_db, ids["orders"])
    # then every payment went through, exactly one took the seat, the rest were refunded
    assert set(results.values()) == {"ok"}
    with race_db.scope() as session:
        team = session.get(Team, ids["team"])
        assert (team.status, team.paid_count) == ("complete", team_size)
        members = {m.order_id: m for m in session.scalars(select(TeamMember).where(
            TeamMember.order_id.in_(ids["orders"])))}
        winners = [o for o, m in members.items() if m.status == "paid"]
        losers = [o for o, m in members.items() if m.status == "refunded"]
        assert len(winners) == 1 and len(losers) == FRIENDS - 1
        assert {members[o].refund_reason for o in losers} == {"team_full"}
        assert session.scalar(select(func.count()).select_from(TeamMember).where(
            TeamMember.team_id == ids["team"], TeamMember.status == "paid")) == team_size
        # money: each loser's 8.00 went back through the provider, once
        refunds = list(session.scalars(select(PaymentRefund)))
        assert len(refunds) == FRIENDS - 1
        assert sum(r.amount_cents for r in refunds) == 800 * (FRIENDS - 1)
        assert {r.status for r in refunds} == {"succeeded"}
        assert {o.status for o in session.scalars(select(Order).where(Order.id.in_(losers)))} == {"refunded"}
        assert session.scalar(select(func.count()).select_from(RefundRequest)) == FRIENDS - 1
        # stock: only the team's units left it
        left = catalog.stock_of(session, merchant_id=ids["merchant"], sku_ids=[ids["sku"]])[ids["sku"]]
        assert left == STOCK - team_size


def test_last_seat_losers_open_new_teams(race_db: Database) -> None:
    ids = _setup(race_db, on_full="new_team")
    results = _pay_all(race_db, ids["orders"])
    assert set(results.values()) == {"ok"}
    with race_db.scope() as session:
        team = session.get(Team, ids["team"])
        assert (team.status, team.paid_count) == ("complete", 2)
        members = list(session.scalars(select(TeamMember).where(TeamMember.order_id.in_(ids["orders"]))))
        assert {m.status for m in members} == {"paid"}
        moved = [m for m in members if m.team_id != ids["team"]]
        assert len(moved) == FRIENDS - 1
        assert {m.asked_team_id for m in moved} == {ids["team"]}
        new_teams = list(session.scalars(select(Team).where(Team.id.in_([m.team_id for m in moved]))))
        assert len(new_teams) == FRIENDS - 1
        assert {(t.status, t.paid_count) for t in new_teams} == {("forming", 1)}
        assert session.scalar(select(func.count()).select_from(PaymentRefund)) == 0


def test_expiry_twice_at_once_refunds_once(race_db: Database) -> None:
    # given two forming teams of 3 with two paid members each
    with use_database(race_db):
        team_ids = []
        for _ in range(2):
            ids = _setup(race_db, on_full="refund", team_size=3)
            team_ids.append(ids["team"])
        later = clock.now() + dt.timedelta(days=2)
        started = threading.Barrier(2)
        outcomes: list[object] = []

        def tick() -> None:
            with use_database(race_db):
                started.wait()
                try:
                    with race_db.scope() as session:
                        outcomes.append(service.expire_due(session, later))
                except Exception as exc:  # noqa: BLE001
                    outcomes.append(repr(exc))

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    # then the teams failed once between the two runs and each paid member was refunded once
    failed = sorted(i for out in outcomes if isinstance(out, list) for i in out)
    assert failed == sorted(team_ids), outcomes
    with race_db.scope() as session:
        assert {t.status for t in session.scalars(select(Team).where(Team.id.in_(team_ids)))} == {"failed"}
        refunds = list(session.scalars(select(PaymentRefund)))
        assert len(refunds) == 4
        assert len({r.payment_id for r in refunds}) == 4


def test_one_customers_simultaneous_orders_keep_the_per_customer_limit(race_db: Database) -> None:
    # given a campaign allowing one team per customer, and one customer
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_team_buy(session, merchant=merchant, per_customer_limit=1, stock=STOCK)
        customer = make_customer(session, merchant=merchant)
        ids = {"campaign": campaign.id, "customer": customer.id, "merchant": merchant.id}
    results: list[str] = []
    started = threading.Barrier(4)

    # when the customer opens four new teams at once
    def run() -> None:
        with use_database(race_db):
            started.wait()
            try:
                with race_db.scope() as session:
                    team_buy_order(session, customer=session.get(type(customer), ids["customer"]),
                                   campaign=service.get_campaign(session, ids["campaign"], merchant_id=ids["merchant"]))
                results.append("ok")
            except Exception as exc:  # noqa: BLE001 — the assertion below names it
                results.append(getattr(exc, "code", None) if hasattr(exc, "status_code") else repr(exc)[:300])

    run_at_once(run, [()] * 4)
    # then exactly one order holds a place; the others were refused by the limit and left nothing
    assert sorted(results) == ["ok", "team_limit_reached", "team_limit_reached", "team_limit_reached"]
    with race_db.scope() as session:
        assert session.scalar(select(func.count()).select_from(TeamMember)) == 1
        assert session.scalar(select(func.count()).select_from(Order)) == 1
