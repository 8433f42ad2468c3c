"""Group buying's reaction to order.cancelled decides from the event's `fulfilment_type` whether the order can
be a wave order (only orders collected at a leader's point are): any other order costs it no query; an older
event without the type is looked up as before."""

from __future__ import annotations

from sqlalchemy import event, select

from siyu.core.auth import system_principal
from siyu.core.events import Event
from siyu.core.models import OutboxEvent
from siyu.groupbuy import handlers
from siyu.orders import events as order_events
from siyu.orders import service as orders
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import make_sku, place_order


def _sent_by(db, fn, ev: Event) -> list[str]:
    sent: list[str] = []
    engine = db.get_bind().engine

    def count(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        fn(db, ev)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return sent


def test_a_cancelled_delivery_order_costs_the_wave_reaction_no_query(db) -> None:
    # given a delivery order cancelled
    merchant = make_merchant(db)
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=5)
    order = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)])
    orders.cancel_order(db, order.id, actor=system_principal(merchant.id))
    row = next(r for r in db.scalars(select(OutboxEvent).where(OutboxEvent.merchant_id == merchant.id,
                                                               OutboxEvent.name == order_events.ORDER_CANCELLED))
               if r.payload["order_id"] == order.id)
    assert row.payload["fulfilment_type"] == "delivery"
    ev = Event(id=row.id, name=row.name, merchant_id=merchant.id, payload=dict(row.payload))

    # when group buying reacts: nothing is asked
    assert _sent_by(db, handlers.on_order_cancelled, ev) == []
    # and an older event without the type is looked up (and finds no wave order)
    older = Event(id=row.id, name=row.name, merchant_id=merchant.id,
                  payload={k: v for k, v in row.payload.items() if k != "fulfilment_type"})
    assert len(_sent_by(db, handlers.on_order_cancelled, older)) >= 1
