"""The campaign areas' reactions to order.paid and order.cancelled decide from the event's `promotion` (the
campaign the order was bought through, kept on the order at checkout) whether the order is theirs: an order
of another campaign, or of none, costs them no query; an older event (or an order placed before it was
kept) without it is looked up as before, and the area still finds its own rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.core.auth import system_principal
from siyu.core.events import Event
from siyu.core.models import OutboxEvent
from siyu.orders import events as order_events
from siyu.orders import service as orders
from siyu.orders.models import Order
from siyu.promotions.handlers import bargains, flash_sales, ladders, payment_offers, popups, team_buys
from siyu.promotions.models.flash_sales import FlashSaleItem, FlashSaleOrder
from siyu.promotions.models.ladders import LadderEntry
from tests.factories.customers import make_customer
from tests.factories.orders import make_sku, pay, place_order
from tests.factories.promotions import flash_promotion, make_flash_sale, make_ladder

# kind -> (the area's order.paid reaction, its order.cancelled reaction)
AREAS = {
    "flash_sale": (flash_sales.on_order_paid, flash_sales.on_order_cancelled),
    "team_buy": (team_buys.on_order_paid, team_buys.on_order_cancelled),
    "bargain": (bargains.on_order_paid, bargains.on_order_cancelled),
    "ladder": (ladders.on_order_paid, ladders.on_order_cancelled),
}


@contextlib.contextmanager
def statements(db: Session) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    sent: list[str] = []
    engine = db.get_bind().engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _emitted(db: Session, order: Order, name: str) -> Event:
    """The event `name` the order's service wrote (the outbox row), as a handler gets it."""
    rows = db.scalars(select(OutboxEvent).where(OutboxEvent.merchant_id == order.merchant_id,
                                                OutboxEvent.name == name)).all()
    row = next(r for r in rows if r.payload["order_id"] == order.id)
    return Event(id=row.id, name=row.name, merchant_id=row.merchant_id, payload=dict(row.payload),
                 created_at=row.created_at)


def _without_promotion(ev: Event) -> Event:
    """The event as it was written before orders named the campaign."""
    payload = {k: v for k, v in ev.payload.items() if k != "promotion"}
    return Event(id=ev.id, name=ev.name, merchant_id=ev.merchant_id, payload=payload)


def test_an_order_of_no_campaign_costs_the_campaign_reactions_no_query(db, merchant) -> None:
    # given an order placed and paid without a campaign, and another cancelled
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    customer = make_customer(db, merchant=merchant)
    paid = pay(db, place_order(db, customer=customer, items=[(sku, 1)]))
    cancelled = orders.cancel_order(db, place_order(db, customer=customer, items=[(sku, 1)]).id,
                                    actor=system_principal(merchant.id))
    assert paid.promotion == {} and cancelled.promotion == {}
    paid_event = _emitted(db, paid, order_events.ORDER_PAID)
    cancelled_event = _emitted(db, cancelled, order_events.ORDER_CANCELLED)
    assert paid_event.payload["promotion"] == {} and cancelled_event.payload["promotion"] == {}

    # when every campaign area reacts to both events
    with statements(db) as sent:
        for on_paid, on_cancelled in AREAS.values():
            on_paid(db, paid_event)
            on_cancelled(db, cancelled_event)

    # then none of them asked the database anything
    assert sent == []


def test_a_flash_order_is_named_in_its_events_and_only_the_flash_sale_reacts(db, merchant) -> None:
    # given a flash order paid
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=10)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 5, None)])
    order = pay(db, place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                                promotion=flash_promotion(sale)))
    ev = _emitted(db, order, order_events.ORDER_PAID)
    assert order.promotion == ev.payload["promotion"] == {"kind": "flash_sale", "campaign_id": sale.id}

    # when the other areas react: nothing is asked
    with statements(db) as sent:
        for kind, (on_paid, _) in AREAS.items():
            if kind != "flash_sale":
                on_paid(db, ev)
    assert sent == []
    # and when the flash sale reacts, its order counts as paid
    flash_sales.on_order_paid(db, ev)
    row = db.scalars(select(FlashSaleOrder).where(FlashSaleOrder.order_id == order.id)
                     .execution_options(populate_existing=True)).one()
    assert row.status == "paid"


def test_a_ladder_order_at_the_first_tier_has_no_adjustment_but_is_still_named(db, merchant) -> None:
    # given a ladder whose first tier is the SKU's own price (so the order carries no price adjustment)
    campaign = make_ladder(db, merchant=merchant)
    order = place_order(db, customer=make_customer(db, merchant=merchant), items=[(campaign.sku_id, 1)],
                        promotion={"kind": "ladder", "campaign_id": campaign.id})
    assert order.adjustments == []
    order = pay(db, order)
    ev = _emitted(db, order, order_events.ORDER_PAID)
    assert ev.payload["promotion"] == {"kind": "ladder", "campaign_id": campaign.id}

    # when the areas react
    for on_paid, _ in AREAS.values():
        on_paid(db, ev)

    # then the ladder counted the order as paid
    entry = db.scalars(select(LadderEntry).where(LadderEntry.order_id == order.id)
                       .execution_options(populate_existing=True)).one()
    assert entry.status == "paid"


def test_an_older_event_without_the_promotion_is_looked_up(db, merchant) -> None:
    # given a flash order paid, and its order.paid as it was written before orders named the campaign
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=10)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 5, None)])
    order = pay(db, place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                                promotion=flash_promotion(sale)))
    ev = _without_promotion(_emitted(db, order, order_events.ORDER_PAID))

    # when every area reacts
    with statements(db) as sent:
        for on_paid, _ in AREAS.values():
            on_paid(db, ev)

    # then each looked its own rows up, and the flash sale found its order
    assert len(sent) >= len(AREAS)
    row = db.scalars(select(FlashSaleOrder).where(FlashSaleOrder.order_id == order.id)
                     .execution_options(populate_existing=True)).one()
    assert row.status == "paid"


def test_an_order_placed_before_the_campaign_was_kept_is_looked_up_on_cancellation(db, merchant) -> None:
    # given a flash order whose row does not name its campaign (placed before orders kept it)
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=10)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 5, None)])
    order = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 2)],
                        promotion=flash_promotion(sale))
    order.promotion = None
    db.flush()

    # when it is cancelled and the flash sale reacts
    order = orders.cancel_order(db, order.id, actor=system_principal(merchant.id))
    ev = _emitted(db, order, order_events.ORDER_CANCELLED)
    assert ev.payload["promotion"] is None
    flash_sales.on_order_cancelled(db, ev)

    # then its units went back to the allocation
    item = db.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == sale.id)
                      .execution_options(populate_existing=True)).one()
    assert item.sold == 0


def test_the_conversion_reactions_share_one_read_for_a_customer_who_met_nothing(db, merchant) -> None:
    # given a paid order of a customer who was shown no payment offer and saw no pop-up
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    order = pay(db, place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)]))
    ev = _emitted(db, order, order_events.ORDER_PAID)

    # when both conversion reactions run on the event (as they do, in one session)
    with statements(db) as sent:
        payment_offers.on_order_paid(db, ev)
        popups.on_order_paid(db, ev)

    # then one statement answered both
    assert len(sent) == 1
