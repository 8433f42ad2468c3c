"""attribution: shares demo data. Counter QR codes for every store and guide, product shares by guides and by
customers who share (some of whom were themselves brought by a share, so the fission trees have depth), the
touches of a year (customers arriving through shares, anonymous visitors), the fission edges those touches make,
and exposure / view / add-to-cart funnel rows. Order and pay rows follow when the orders demo writes its orders
(`funnel.record_order_steps`).

Written with bulk inserts in one pass, deterministic from ctx.rng (share codes included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service.funnel import FUNNEL_KINDS
from siyu.attribution.service.shares import CODE_ALPHABET, CODE_LENGTH
from siyu.core import clock
from siyu.core.demo import DemoContext

YEAR = dt.timedelta(days=365)
CHUNK = 2000


def _insert_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    table = model.__table__
    ids: list[int] = []
    for start in range(0, len(rows), CHUNK):
        ids.extend(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                   rows[start:start + CHUNK]))
    return ids


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(model.__table__), rows[start:start + CHUNK])


def seed(session: Session, ctx: DemoContext) -> None:
    customers: list[int] = list(ctx.data.get("customer_ids") or [])
    products: list[int] = list(ctx.data.get("on_sale_product_ids") or [])
    if not customers or not products or not ctx.guide_ids:
        return
    rng, now, merchant_id = ctx.rng, ctx.now, ctx.merchant_id
    used: set[str] = set()

    def code() -> str:
        while True:
            c = "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if c not in used:
                used.add(c)
                return c

    start = now - YEAR
    # Customers were inserted in creation order over the year: spread them evenly (close enough for a demo).
    joined = {cid: start + YEAR * (i + 0.5) / len(customers) for i, cid in enumerate(customers)}

    share_rows: list[dict[str, Any]] = []

    def add_share(**row: Any) -> dict[str, Any]:
        row = {"merchant_id": merchant_id, "code": code(), "target_id": 0, "sharer_staff_id": None,
               "sharer_customer_id": None, "campaign": None, **row}
        share_rows.append(row)
        return row

    for store_id in ctx.store_ids:
        add_share(target_type="store", target_id=store_id, channel="store_qr", created_at=start)
    for guide_id in ctx.guide_ids:
        store_id = ctx.guide_store.get(guide_id)
        add_share(target_type="store" if store_id else "page", target_id=store_id or 0, channel="guide_qr",
                  sharer_staff_id=guide_id, created_at=start)
        for product_id in rng.sample(products, min(len(products), 6)):
            add_share(target_type="product", target_id=product_id, channel=rng.choice(("chat", "chat", "moments")),
                      sharer_staff_id=guide_id, created_at=start + dt.timedelta(days=rng.randrange(300)),
                      campaign="618" if rng.random() < 0.2 else None)

    staff_shares = list(share_rows)
    customer_shares: list[dict[str, Any]] = []
    touches: list[dict[str, Any]] = []
    visitor_n = 0

    def visitor() -> str:
        nonlocal visitor_n
        visitor_n += 1
        return f"demo-v{merchant_id}-{visitor_n:07d}"

    for index, customer_id in enumerate(customers):
        arrived = joined[customer_id]
        brought_by_customer = False
        if index > len(customers) // 20 and rng.random() < 0.45:
            ready = [s for s in customer_shares[-400:] if s["created_at"] < arrived]
            pick_customer = ready and rng.random() < 0.45
            share = rng.choice(ready) if pick_customer else rng.choice(staff_shares)
            brought_by_customer = bool(pick_customer)
            channel = share["channel"] if share["channel"] in ("store_qr", "guide_qr") else rng.choice(
                (share["channel"], "chat", "moments", "community"))
            touches.append({"share": share, "channel": channel, "customer_id": customer_id, "visitor_id": visitor(),
                            "at": max(share["created_at"], arrived - dt.timedelta(minutes=rng.randrange(5, 600)))})
        elif rng.random() < 0.5:
            touches.append({"share": None, "channel": rng.choice(("direct", "search", "ad", "oa")),
                            "customer_id": customer_id, "visitor_id": visitor(),
                            "at": arrived - dt.timedelta(minutes=rng.randrange(5, 600))})
        # Some customers share in turn; those a friend brought are likelier to (that is fission).
        if rng.random() < (0.3 if brought_by_customer else 0.08):
            for product_id in rng.sample(products, rng.choice((1, 1, 2, 3))):
                customer_shares.append(add_share(
                    target_type="product", target_id=product_id, channel=rng.choice(("chat", "moments")),
                    sharer_customer_id=customer_id,
                    created_at=min(now - dt.timedelta(hours=1), arrived + dt.timedelta(days=rng.randrange(1, 30)))))

    # Anonymous visits of every share, and repeat visits by customers.
    for share in share_rows:
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
            touches.append({"share": share, "channel": share["channel"], "customer_id": None, "visitor_id": visitor(),
                            "at": share["created_at"] + dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 20))})
    touches = [t for t in touches if t["at"] < now]

    share_ids = _insert_ids(session, Share, share_rows)
    for row, share_id in zip(share_rows, share_ids, strict=True):
        row["id"] = share_id
    touches.sort(key=lambda t: t["at"])
    touch_rows = []
    for t in touches:
        s = t["share"]
        touch_rows.append({
            "merchant_id": merchant_id, "channel": t["channel"], "share_id": s["id"] if s else None,
            "share_code": s["code"] if s else None, "sharer_staff_id": s["sharer_staff_id"] if s else None,
            "sharer_customer_id": s["sharer_customer_id"] if s else None,
            "target_type": s["target_type"] if s else None, "target_id": s["target_id"] if s else None,
            "campaign": (s["campaign"] or f"{s['target_type']}:{s['target_id']}") if s else None,
            "visitor_id": t["visitor_id"], "customer_id": t["customer_id"], "at": t["at"]})
    touch_ids = _insert_ids(session, Touch, touch_rows)

    edges: dict[int, dict[str, Any]] = {}
    funnel_rows: list[dict[str, Any]] = []
    for touch_id, row in zip(touch_ids, touch_rows, strict=True):
        row["id"] = touch_id
        cid = row["customer_id"]
        has_sharer = row["sharer_staff_id"] is not None or row["sharer_customer_id"] is not None
        if cid is not None and has_sharer and cid not in edges and row["sharer_customer_id"] != cid:
            edges[cid] = {"merchant_id": merchant_id, "customer_id": cid, "by_customer_id": row["sharer_customer_id"],
                          "by_staff_id": row["sharer_staff_id"] if row["sharer_customer_id"] is None else None,
                          "touch_id": touch_id, "share_id": row["share_id"], "campaign": row["campaign"],
                          "at": row["at"]}
        # What the visit did next: it saw the target, often more of the shop, sometimes put something in the cart.
        product_id = row["target_id"] if row["target_type"] == "product" else rng.choice(products)
        base = {"merchant_id": merchant_id, "customer_id": cid, "visitor_id": row["visitor_id"], "touch_id": touch_id,
                "channel": row["channel"], "share_id": row["share_id"], "order_id": None, "amount_cents": 0}
        steps = [("view", product_id, 1)]
        if row["target_type"] != "product" or rng.random() < 0.6:
            steps.append(("exposure", rng.choice(products), 2))
        if cid is not None and rng.random() < 0.3:
            steps.append(("add_to_cart", product_id, 4))
        for kind, pid, minutes in steps:
            at = min(now - dt.timedelta(seconds=1), row["at"] + dt.timedelta(minutes=minutes))
            funnel_rows.append({**base, "kind": FUNNEL_KINDS[kind], "product_id": pid, "at": at,
                                "day": at.astimezone(clock.SHANGHAI).date()})
    _insert(session, FissionEdge, sorted(edges.values(), key=lambda e: e["at"]))
    _insert(session, FunnelEvent, funnel_rows)
    ctx.data["attribution_share_ids"] = share_ids
    session.flush()
