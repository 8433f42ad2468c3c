"""The group-buying scenario over HTTP: 3 leaders, 50 customers, a wave, its cut-off, manifests that
match the orders exactly, a delivery with one shortage (refunded), pickups verified by the leaders,
and commissions settled only after the after-sales window."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.money import apply_bps
from siyu.customers.models import Customer
from siyu.groupbuy import jobs
from siyu.groupbuy.models import Commission, WaveOrder, WaveOrderLine
from siyu.ledger import service as ledger
from siyu.merchants.models import Merchant
from siyu.orders.models import Order, OrderLine
from tests.factories.customers import make_customer
from tests.factories.groupbuy import make_compound, make_leader
from tests.factories.merchants import auth_headers, make_staff
from tests.factories.orders import customer_headers, make_sku

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def test_wave_from_orders_to_settled_commissions(client: TestClient, db: Session, merchant: Merchant) -> None:
    rng = random.Random(8)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    shop = f"/api/v1/shop/{merchant.slug}"
    with clock.frozen(START):
        # given: three points on two routes, three SKUs, fifty customers
        compound = make_compound(db, merchant=merchant, households=400)
        leaders = [make_leader(db, merchant=merchant, route="东线", compound=compound, latitude=31.20, longitude=121.50),
                   make_leader(db, merchant=merchant, route="东线", latitude=31.21, longitude=121.51),
                   make_leader(db, merchant=merchant, route="西线", commission_bps=800, latitude=31.22, longitude=121.40)]
        leader_headers = [customer_headers(db, db.get(Customer, x.customer_id)) for x in leaders]
        skus = [make_sku(db, merchant=merchant, price_cents=p, stock=1000) for p in (1590, 990, 2990)]
        buyers = [make_customer(db, merchant=merchant, nickname=f"邻居{i:02d}") for i in range(50)]
        headers = [customer_headers(db, b) for b in buyers]
        # the wave, built and opened over the API: group prices, allocations, a per-customer limit
        r = client.post("/api/v1/admin/groupbuy/waves", headers=admin, json={
            "title": "周末鲜果团", "starts_at": START.isoformat(),
            "cutoff_at": (START + dt.timedelta(hours=10)).isoformat(), "delivery_date": "2026-03-03",
            "commission_bps": 1000,
            "items": [{"sku_id": skus[0].id, "price_cents": 1290, "allocation": 200, "per_customer_limit": 3},
                      {"sku_id": skus[1].id, "price_cents": 690, "allocation": 200, "commission_bps": 1500},
                      {"sku_id": skus[2].id, "price_cents": 2490, "allocation": 200}]})
        assert r.status_code == 201, r.text
        wave = r.json()
        assert client.post(f"/api/v1/admin/groupbuy/waves/{wave['id']}/open", headers=admin).status_code == 200

    # when: every customer orders at a point (two never pay)
    placed: list[int] = []
    unpaid: list[int] = []
    with clock.frozen(START + dt.timedelta(hours=1)):
        r = client.get(f"{shop}/groupbuy/points", params={"lat": 31.201, "lng": 121.501}, headers=headers[0])
        assert [p["id"] for p in r.json()["items"]][:2] == [leaders[0].id, leaders[1].id]
        for i, h in enumerate(headers):
            leader = leaders[i % 3]
            chosen = rng.sample(skus, rng.randint(1, 3))
            items = [{"sku_id": s.id, "quantity": rng.randint(1, 3)} for s in chosen]
            r = client.post(f"{shop}/orders", headers={**h, "Idempotency-Key": f"o{i}"},
                            json={"items": items, "fulfilment": {"type": "leader", "leader_id": leader.id}})
            assert r.status_code == 201, r.text
            order = r.json()
            placed.append(order["id"])
            if i in (7, 33):
                unpaid.append(order["id"])
                continue
            start = client.post(f"{shop}/orders/{order['id']}/pay", json={"method": "sandbox"},
                                headers={**h, "Idempotency-Key": f"p{i}"}).json()
            assert client.post(start["sandbox_confirm_url"], headers=h).status_code == 200
        # a fourth unit of the limited SKU is refused for customer 0, and nothing is written
        r = client.post(f"{shop}/orders", headers=headers[0], json={
            "items": [{"sku_id": skus[0].id, "quantity": 4}], "fulfilment": {"type": "leader", "leader_id": leaders[0].id}})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "wave_limit_exceeded")
        live = client.get(f"/api/v1/admin/groupbuy/waves/{wave['id']}", headers=admin).json()["totals"]
        assert live["orders"] == 50 and live["paid_orders"] == 48

    # the cut-off: the tick closes the wave (twice is harmless) and the unpaid orders leave it
    cut = START + dt.timedelta(hours=10, seconds=1)
    with clock.frozen(cut):
        assert jobs.close_waves(db, cut) == 1
        assert jobs.close_waves(db, cut) == 0
        db.commit()
        assert [db.get(Order, oid).status for oid in unpaid] == ["cancelled", "cancelled"]
        r = client.post(f"{shop}/orders", headers=headers[1], json={
            "items": [{"sku_id": skus[1].id, "quantity": 1}],
            "fulfilment": {"type": "leader", "leader_id": leaders[1].id}})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "not_in_wave")

    # then: the cut-off outputs match the paid orders exactly
    paid_ids = [oid for oid in placed if oid not in unpaid]
    lines = list(db.scalars(select(OrderLine).where(OrderLine.order_id.in_(paid_ids))))
    orders = {o.id: o for o in db.scalars(select(Order).where(Order.id.in_(paid_ids)))}
    expected_purchase = Counter()
    expected_sorting = Counter()
    expected_manifest = Counter()
    for line in lines:
        order = orders[line.order_id]
        expected_purchase[line.sku_id] += line.quantity
        expected_sorting[(order.leader_id, line.sku_id, order.customer_id)] += line.quantity
        expected_manifest[(order.leader_id, line.sku_id)] += line.quantity
    base = f"/api/v1/admin/groupbuy/waves/{wave['id']}"
    purchase = client.get(f"{base}/purchase-list", headers=admin).json()["items"]
    assert {p["sku_id"]: p["quantity"] for p in purchase} == dict(expected_purchase)
    assert sum(p["paid_cents"] for p in purchase) == sum(line.paid_cents for line in lines)
    sorting = client.get(f"{base}/sorting-list", headers=admin).json()["items"]
    got_sorting = Counter()
    for row in sorting:
        got_sorting[(row["leader_id"], row["sku_id"], row["customer_id"])] += row["quantity"]
    assert got_sorting == expected_sorting
    manifest = client.get(f"{base}/manifest", headers=admin).json()["points"]
    assert [(p["route"], p["leader_id"]) for p in manifest] == [("东线", leaders[0].id), ("东线", leaders[1].id),
                                                                 ("西线", leaders[2].id)]
    assert {(p["leader_id"], s["sku_id"]): s["quantity"] for p in manifest for s in p["skus"]} == dict(expected_manifest)
    csv_text = client.get(f"{base}/exports/sorting.csv", headers=admin).text
    assert len(csv_text.strip().splitlines()) == len(sorting) + 1

    # delivery: point 0 is one unit short on one line (refunded); the others arrive whole
    short_line = next(line for line in sorted(lines, key=lambda x: x.id)
                      if orders[line.order_id].leader_id == leaders[0].id and line.quantity >= 2)
    unit_cents = short_line.paid_cents // short_line.quantity
    deliver_at = cut + dt.timedelta(hours=12)
    with clock.frozen(deliver_at):
        r = client.post(f"{base}/leaders/{leaders[0].id}/deliver", headers=admin,
                        json={"shortages": [{"order_line_id": short_line.id, "quantity": 1}]})
        assert r.status_code == 200, r.text
        assert (r.json()["short_units"], len(r.json()["refund_ids"])) == (1, 1)
        for leader in leaders[1:]:
            assert client.post(f"{base}/leaders/{leader.id}/deliver", headers=admin, json={}).status_code == 200
    short_order = db.get(Order, short_line.order_id)
    db.refresh(short_order)
    assert short_order.refunded_cents in (unit_cents, unit_cents + 1)
    assert short_order.status == "paid"
    gb_line = db.scalars(select(WaveOrderLine).where(WaveOrderLine.order_line_id == short_line.id)).one()
    assert (gb_line.short_quantity, gb_line.refunded_quantity) == (1, 1)

    # pickups: every customer shows their code and their leader verifies it
    pickup_at = deliver_at + dt.timedelta(hours=2)
    with clock.frozen(pickup_at):
        for i, h in enumerate(headers):
            if placed[i] in unpaid:
                continue
            mine = client.get(f"{shop}/groupbuy/my-orders", headers=h).json()["items"]
            assert [o["status"] for o in mine] == ["delivered"]
            code = mine[0]["pickup_code"]
            lh = leader_headers[i % 3]
            wrong = client.post(f"{shop}/groupbuy/leader/verify", headers=lh, json={"code": "000000" if code != "000000" else "111111"})
            assert wrong.status_code == 404
            r = client.post(f"{shop}/groupbuy/leader/verify", headers=lh, json={"code": code})
            assert (r.status_code, r.json()["status"]) == (200, "picked_up"), r.text
            # another point's leader cannot hand it out
            assert client.post(f"{shop}/groupbuy/leader/verify", headers=leader_headers[(i + 1) % 3],
                               json={"code": code}).status_code == 404
    assert set(db.scalars(select(Order.status).where(Order.id.in_(paid_ids)))) == {"completed"}

    # commissions: pending until the after-sales window (7 days) closes, then settled
    def expected_commission(leader_id: int) -> int:
        """The wave item's rate (15%) or the wave's (10%), on what is left of each line after refunds."""
        refunded = dict(db.execute(select(OrderLine.id, OrderLine.refunded_cents)).tuples().all())
        return sum(apply_bps(line.paid_cents - refunded[line.id],
                             1500 if line.sku_id == skus[1].id else 1000)
                   for line in lines if orders[line.order_id].leader_id == leader_id)

    before = pickup_at + dt.timedelta(days=7) - dt.timedelta(minutes=1)
    assert jobs.settle_commissions(db, before) == 0
    after = pickup_at + dt.timedelta(days=7, minutes=1)
    settled = jobs.settle_commissions(db, after)
    assert settled == len(lines)
    assert jobs.settle_commissions(db, after) == 0
    with clock.frozen(after):
        for leader, lh in zip(leaders, leader_headers, strict=True):
            earned = client.get(f"{shop}/groupbuy/leader/earnings", headers=lh).json()
            assert (earned["pending_cents"], earned["settled_cents"]) == (0, expected_commission(leader.id))
    assert ledger.verify(db, merchant.id) == []
    assert {c.status for c in db.scalars(select(Commission))} == {"settled"}
    assert db.scalars(select(WaveOrder.status).where(WaveOrder.order_id.in_(unpaid))).all() == ["cancelled"] * 2
