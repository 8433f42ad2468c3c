"""Distinct people per funnel step over a period (service.people): the counts kept by the rebuild, the daily
job and the handlers give the same funnel and GMV people as walking the events and orders, with the
hand-computed numbers; a person active on several days (and before the period) is counted once, with the
channel group of their first day in the period."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from sqlalchemy import select

from siyu.analytics import service as analytics
from siyu.analytics.models import PeopleCount, PeopleDay
from siyu.analytics.service import aggregates, people
from siyu.analytics.service.common import Filters
from siyu.attribution.models.shares import FunnelEvent, Share
from siyu.attribution.service import shares
from siyu.core import clock
from siyu.core.auth import Role, system_principal
from siyu.customers import service as customers
from siyu.orders import service as orders
from tests.analytics.conftest import at, event, paid_order, refund, set_channel
from tests.analytics.test_aggregates import run_new_events
from tests.factories.attribution import make_share, make_touch
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of
from tests.factories.orders import pickup

NOW = at(2026, 6, 10, 10)
P = Filters(start=dt.date(2026, 6, 1), end=dt.date(2026, 6, 7))
P2 = dataclasses.replace(P, end=dt.date(2026, 6, 8))
P3 = Filters(start=dt.date(2026, 6, 5), end=dt.date(2026, 6, 10))


@pytest.fixture
def shop(db):
    """Shanghai times. cA (store A): view 05-28 (no touch: platform), a live touch 06-02 08:00, views 06-02,
    06-05 and today 06-10 (content), pays today 09:30 (live). cB (store B): paid 05-20 (delivery: platform),
    add to cart 06-03 23:59:59 and 06-04 00:00:01, paid 06-06 (moments: social), refunded whole 06-07.
    cC (no store): paid 06-02 (platform) and 06-08 (live). cD (no store): view 06-03; before signing in, as
    visitor-d, a view 06-01. v1: exposures 06-01, 06-06 and today."""
    m = make_merchant(db, name="人数品牌")
    store_a, store_b = make_store(db, merchant=m, name="A"), make_store(db, merchant=m, name="B")
    admin = make_staff(db, merchant=m, username="pp-boss")
    guide_a = make_staff(db, merchant=m, role=Role.GUIDE, store=store_a, username="pp-ga")
    guide_b = make_staff(db, merchant=m, role=Role.GUIDE, store=store_b, username="pp-gb")
    with clock.frozen(at(2026, 5, 1)):
        ca = make_customer(db, merchant=m, owner=guide_a, nickname="cA")
        cb = make_customer(db, merchant=m, owner=guide_b, nickname="cB")
        cc = make_customer(db, merchant=m, nickname="cC")
        cd = make_customer(db, merchant=m, nickname="cD")
    event(db, m, "view", at(2026, 5, 28), customer=ca)
    make_touch(db, merchant=m, customer=ca, channel="live", at=at(2026, 6, 2, 8))
    event(db, m, "view", at(2026, 6, 2, 9), customer=ca)
    event(db, m, "view", at(2026, 6, 5, 9), customer=ca)
    event(db, m, "view", at(2026, 6, 10, 9), customer=ca)
    event(db, m, "add_to_cart", at(2026, 6, 3, 23, 59, 59), customer=cb)
    event(db, m, "add_to_cart", at(2026, 6, 4, 0, 0, 1), customer=cb)
    event(db, m, "exposure", at(2026, 6, 1, 10), visitor="visitor-0001")
    event(db, m, "exposure", at(2026, 6, 6, 10), visitor="visitor-0001")
    event(db, m, "exposure", at(2026, 6, 10, 8), visitor="visitor-0001")
    event(db, m, "view", at(2026, 6, 1, 11), visitor="visitor-000d")
    event(db, m, "view", at(2026, 6, 3, 10), customer=cd)
    paid_order(db, m, cb, when=at(2026, 5, 20), price_cents=3000)
    o2 = paid_order(db, m, cb, when=at(2026, 6, 6, 15), price_cents=5000, channel="moments")
    refund(db, o2, when=at(2026, 6, 7, 9))
    paid_order(db, m, cc, when=at(2026, 6, 2), price_cents=2000)
    paid_order(db, m, cc, when=at(2026, 6, 8), price_cents=1000, channel="live")
    o5 = paid_order(db, m, ca, when=at(2026, 6, 10, 9, 30), price_cents=4000)
    set_channel(db, o5, "live")
    db.flush()
    with clock.frozen(NOW):
        yield {"m": m, "admin": principal_of(db, admin), "a": store_a.id, "b": store_b.id, "ca": ca, "cb": cb,
               "cc": cc, "cd": cd, "guide_b": guide_b, "o2": o2, "store_b": store_b}


def figures(db, shop) -> dict:
    """Funnel and GMV people of P, P2, P3, brand-wide and for store A."""
    out = {}
    for name, f in (("P", P), ("P2", P2), ("P3", P3), ("P3a", dataclasses.replace(P3, store_id=shop["a"]))):
        fun = analytics.funnel_dict(analytics.funnel(db, actor=shop["admin"], filters=f))
        out[name] = {"funnel": fun}
        if name != "P3a":
            g = analytics.decomposition_dict(analytics.decompose(db, actor=shop["admin"], filters=f))
            out[name]["gmv"] = (g["current"]["visitors"], g["current"]["buyers"],
                                [(d["day"][5:], d["visitors"], d["buyers"]) for d in g["days"]])
    return out


def counts(fig: dict) -> dict:
    f = fig["funnel"]
    return {"all": f["overall"]["counts"], **{r["key"]: r["counts"] for r in f["by_channel"]},
            **{f"store:{r['key'] or ''}": r["counts"] for r in f["by_store"]}}


def rows(db, merchant_id: int) -> tuple[set, set]:
    d, c = PeopleDay, PeopleCount
    days = {tuple(r) for r in db.execute(select(d.person, d.step, d.day, d.grp, d.store_id, d.prev_day, d.second_day,
                                                d.orders, d.owner_id, d.channel, d.campaign).where(
        d.merchant_id == merchant_id))}
    cnt = {tuple(r) for r in db.execute(select(c.day, c.step, c.grp, c.store_id, c.prev_day, c.second_day, c.n).where(
        c.merchant_id == merchant_id, c.n != 0))}
    return days, cnt


def z(**kw: int) -> dict:
    return {s: kw.get(s, 0) for s in ("exposure", "view", "add_to_cart", "order", "pay", "repurchase")}


def check_hand_numbers(fig: dict, shop, *, signed_in: bool) -> None:
    a, b = f"store:{shop['a']}", f"store:{shop['b']}"
    p = counts(fig["P"])
    # P: exposure v1; view cA (content: its first day in P is 06-02), cD (and visitor-d until they sign
    # in); cart cB once (06-03 and 06-04 are two days); payers cB (social) and cC (platform), cB's 06-06
    # order was their second (refunded since: still paid); cC's second comes on 06-08, after P
    assert p["all"] == z(exposure=1, view=2 if signed_in else 3, add_to_cart=1, order=2, pay=2, repurchase=1)
    assert p["content"] == z(view=1)
    assert p["platform"] == z(exposure=1, view=1 if signed_in else 2, add_to_cart=1, order=1, pay=1)
    assert p["social"] == z(order=1, pay=1, repurchase=1)
    assert p[a] == z(view=1) and p[b] == z(add_to_cart=1, order=1, pay=1, repurchase=1)
    assert p["store:"] == z(exposure=1, view=1 if signed_in else 2, order=1, pay=1)
    v = 5 if signed_in else 6
    assert fig["P"]["gmv"] == (v, 2, [("06-01", 2, 0), ("06-02", 2, 1), ("06-03", 2, 0), ("06-04", 1, 0),
                                      ("06-05", 1, 0), ("06-06", 2, 1), ("06-07", 0, 0)])
    # P2 (to 06-08): cC's second order is in it: a repurchaser, in the group of their first day (platform)
    p2 = counts(fig["P2"])
    assert p2["all"]["repurchase"] == 2 and p2["platform"]["repurchase"] == 1
    assert fig["P2"]["gmv"][:2] == (v, 2)
    # P3 (06-05 to today): v1 once; cA once (06-05, content); payers cB (social), cC (06-08: live, content),
    # cA today (content, first order: no repurchase)
    p3 = counts(fig["P3"])
    assert p3["all"] == z(exposure=1, view=1, order=3, pay=3, repurchase=2)
    assert p3["content"] == z(view=1, order=2, pay=2, repurchase=1)
    assert p3["social"] == z(order=1, pay=1, repurchase=1) and p3["platform"] == z(exposure=1)
    assert p3[a] == z(view=1, order=1, pay=1) and p3["store:"] == z(exposure=1, order=1, pay=1, repurchase=1)
    assert fig["P3"]["gmv"] == (4, 3, [("06-05", 1, 0), ("06-06", 2, 1), ("06-07", 0, 0), ("06-08", 1, 1),
                                       ("06-09", 0, 0), ("06-10", 2, 1)])
    # store A alone: cA only
    p3a = counts(fig["P3a"])
    assert p3a["all"] == z(view=1, order=1, pay=1) and p3a[a] == p3a["all"] and p3a["store:"] == z()


def test_people_counted_by_rebuild_job_and_handlers_equal_the_walk(db, shop):
    m = shop["m"].id
    # given the figures walked from the events and orders (aggregates not built)
    walked = figures(db, shop)
    check_hand_numbers(walked, shop, signed_in=False)
    # when built on 06-08 (days through 06-07 counted; 06-08 .. today walked, cC's second order among them)
    with clock.frozen(at(2026, 6, 8, 10)):
        aggregates.rebuild(db, merchant_id=m)
    assert people.people_through(db, merchant_id=m) == dt.date(2026, 6, 7)
    assert figures(db, shop) == walked
    # and when the daily job counts 06-08 and 06-09 (cC's waiting 06-02 pay row learns of their second order)
    assert aggregates.advance_people(db, today=dt.date(2026, 6, 10)) == {m: 4}  # cC on 06-08: order, pay, buyer, visitor
    assert aggregates.advance_people(db, today=dt.date(2026, 6, 10)) == {}
    assert figures(db, shop) == walked
    kept = rows(db, m)
    assert (f"c{shop['cc'].id}", people.PAY, dt.date(2026, 6, 2), "platform", 0, people.NONE_DAY,
            dt.date(2026, 6, 8), 1, 0, "", "") in kept[0]
    # then a rebuild writes the same rows
    aggregates.rebuild(db, merchant_id=m)
    assert rows(db, m) == kept


def test_a_visitor_who_signs_in_is_counted_as_the_customer(db, shop):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)
    check_hand_numbers(figures(db, shop), shop, signed_in=False)
    # when visitor-d signs in as cD: their anonymous events become cD's, and the handler counts both again
    shares.stitch_visitor(db, merchant_id=m, customer_id=shop["cd"].id, visitor_id="visitor-000d")
    people.on_signed_in(db, merchant_id=m, customer_id=shop["cd"].id, visitor_id="visitor-000d")
    # then cD is one person (first seen 06-01), in the counts as in a rebuild and in the walk
    counted = figures(db, shop)
    check_hand_numbers(counted, shop, signed_in=True)
    kept = rows(db, m)
    aggregates.rebuild(db, merchant_id=m)
    assert rows(db, m) == kept
    db.execute(PeopleDay.__table__.delete())
    db.execute(aggregates.AggregateState.__table__.delete())
    assert figures(db, shop) == counted


def test_an_order_paid_on_a_counted_day_is_counted_by_its_handler(db, shop):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)
    done: set[int] = set()
    run_new_events(db, m, done)  # written before the rebuild: skipped
    # when cD pays an order dated 06-04 (a day already counted) and cA buys again today
    paid_order(db, shop["m"], shop["cd"], when=at(2026, 6, 4, 12), price_cents=700)
    paid_order(db, shop["m"], shop["ca"], when=at(2026, 6, 10, 9, 45), price_cents=800)
    run_new_events(db, m, done)
    counted = figures(db, shop)
    # then cD is a payer of P (platform), cA a repurchaser of P3 (two orders today), as a rebuild says
    assert counts(counted["P"])["all"] == z(exposure=1, view=3, add_to_cart=1, order=3, pay=3, repurchase=1)
    assert counts(counted["P3"])["all"] == z(exposure=1, view=1, order=3, pay=3, repurchase=3)
    kept = rows(db, m)
    aggregates.rebuild(db, merchant_id=m)
    assert rows(db, m) == kept
    assert figures(db, shop) == counted
    db.execute(aggregates.AggregateState.__table__.delete())
    assert figures(db, shop) == counted


def test_a_customer_counted_in_the_store_they_had_when_the_day_was_counted(db, shop):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)  # days through 06-09 counted with cA in store A
    # when cA moves to store B today (their guide leaves)
    customers.set_owner(db, customer_id=shop["ca"].id, owner_id=shop["guide_b"].id, store_id=None,
                        actor=system_principal(m))
    p3 = counts(figures(db, shop)["P3"])
    # then their view of 06-05 stays in store A; today's payment (walked now) is in store B with cB's
    a, b = f"store:{shop['a']}", f"store:{shop['b']}"
    assert p3[a] == z(view=1)
    assert p3[b] == z(order=2, pay=2, repurchase=1)
    # while a walk of the events reads every day with today's store
    db.execute(aggregates.AggregateState.__table__.delete())
    walked = counts(figures(db, shop)["P3"])
    assert a not in walked and walked[b] == z(view=1, order=2, pay=2, repurchase=1)


def test_merged_customers_are_counted_as_one(db, shop):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)
    # when cD is merged into cC: cD's events and orders become cC's, and the handler counts both again
    shares.move_customer(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
    orders.move_customer_rows(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
    people.on_customer_merged(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
    counted = figures(db, shop)
    # then cC viewed on 06-03 (platform) and is one visitor of P with cD gone: v1, visitor-d, cA, cB, cC
    assert counts(counted["P"])["all"] == z(exposure=1, view=3, add_to_cart=1, order=2, pay=2, repurchase=1)
    assert counted["P"]["gmv"][:2] == (5, 2)
    assert not [r for r in rows(db, m)[0] if r[0] == f"c{shop['cd'].id}"]
    kept = rows(db, m)
    aggregates.rebuild(db, merchant_id=m)
    assert rows(db, m) == kept
    db.execute(aggregates.AggregateState.__table__.delete())
    assert figures(db, shop) == counted


def test_the_set_based_rebuild_writes_the_rows_of_the_day_by_day_fold(db):
    """A richer, seeded data set than `shop`: 14 days of funnel events of every kind on several channels
    (ties in time broken by id, an unknown channel, a kind that is no funnel step, an event with neither
    customer nor visitor), paid goods orders on several channels and fulfilments (two at the same second,
    several a day, a refunded one), customers with and without a store, and events and orders after the
    last counted day. `rebuild` (one INSERT … SELECT) must write exactly the rows and counts `fold_days`
    (the daily job's walk, day by day) writes."""
    # given
    rnd = random.Random(9)
    m = make_merchant(db, name="人数对照")
    store = make_store(db, merchant=m, name="S")
    guide = make_staff(db, merchant=m, role=Role.GUIDE, store=store, username="pr-g")
    with clock.frozen(at(2026, 5, 1)):
        cs = [make_customer(db, merchant=m, owner=guide if i % 3 == 0 else None, nickname=f"r{i}") for i in range(7)]
    channels = [None, "live", "moments", "store_qr", "search", "guide_qr", "nonsense"]
    through = dt.date(2026, 6, 14)
    spring = Share(merchant_id=m.id, code="pr-spring", target_type="page", channel="moments", campaign="spring")
    plain = Share(merchant_id=m.id, code="pr-plain", target_type="page", channel="chat")
    db.add_all([spring, plain])
    db.flush()
    rows_in = []
    for day in range(1, 17):  # 06-15 and 06-16 are after `through`
        for _ in range(rnd.randint(3, 14)):
            who = rnd.randrange(10)
            when = at(2026, 6, day, rnd.choice([0, 9, 12, 23]), rnd.choice([0, 30]))
            rows_in.append(FunnelEvent(
                merchant_id=m.id, kind=rnd.choice([1, 2, 2, 3, 4, 5, 5]), at=when,
                day=when.astimezone(clock.SHANGHAI).date(), channel=rnd.choice(channels),
                customer_id=cs[who].id if who < 7 else None, visitor_id=f"vis-{who}" if who < 9 else None,
                share_id=rnd.choice([None, None, None, spring.id, plain.id])))
    rows_in.append(FunnelEvent(merchant_id=m.id, kind=7, at=at(2026, 6, 3), day=dt.date(2026, 6, 3),
                               customer_id=cs[1].id, channel="live"))
    db.add_all(rows_in)
    for n in range(30):
        c = cs[rnd.randrange(7)]
        day = rnd.randint(1, 16)
        o = paid_order(db, m, c, when=at(2026, 6, day, rnd.choice([0, 10, 23]), rnd.choice([0, 59])),
                       price_cents=1000 + n, fulfilment=pickup(store) if n % 5 == 0 else None)
        if n % 4:
            set_channel(db, o, rnd.choice(channels), **({"campaign": "spring"} if n % 3 == 0 else {}))
        if n == 7:
            refund(db, o, when=at(2026, 6, 16))
    twin = at(2026, 6, 9, 15)
    set_channel(db, paid_order(db, m, cs[2], when=twin, price_cents=500), "live")
    set_channel(db, paid_order(db, m, cs[2], when=twin, price_cents=600), "moments")
    db.flush()
    # when the rebuild counts the days through 06-14, and the fold counts them again from nothing
    written = people.rebuild(db, merchant_id=m.id, through=through)
    built = rows(db, m.id)
    db.execute(PeopleDay.__table__.delete().where(PeopleDay.merchant_id == m.id))
    db.execute(PeopleCount.__table__.delete().where(PeopleCount.merchant_id == m.id))
    folded = people.fold_days(db, merchant_id=m.id, start=people.FIRST_DAY, end=through)
    # then the same rows and counts, a rich enough set to mean something
    assert written == folded == len(built[0]) > 150
    assert built == rows(db, m.id)
    days, _ = built
    assert max(r[2] for r in days) == through
    assert {r[1] for r in days} == set(people.STEPS.values())
    assert len({r[3] for r in days}) >= 4 and {r[4] for r in days} == {0, store.id}
    assert {r[8] for r in days} == {0, guide.id} and len({r[9] for r in days}) >= 5
    assert {r[10] for r in days} == {"", "spring"}
    assert {r[3] for r in days if r[1] == people.VISITOR} > {"platform"}
    assert {r[9] for r in days if r[1] == people.BUYER} > {""}
    assert "vNone" in {r[0] for r in days}
    pay = [r for r in days if r[1] == people.PAY]
    assert {r[6] for r in pay} - {people.NONE_DAY, people.PENDING} and people.PENDING in {r[6] for r in pay}
    assert any(r[5] != people.NONE_DAY for r in days)


def scoped_figures(db, shop, manager_b) -> dict:
    """Funnel and GMV of P and P3 narrowed to a guide, a store, a channel group, a touch channel and a
    campaign, and as seen by the guide and by the store's manager."""
    admin, guide_b = shop["admin"], principal_of(db, shop["guide_b"])
    cases = {"guide": (admin, dataclasses.replace(P, guide_id=shop["guide_b"].id)), "as guide": (guide_b, P),
             "store": (admin, dataclasses.replace(P, store_id=shop["b"])), "as manager": (manager_b, P),
             "moments": (admin, dataclasses.replace(P, channel="moments")),
             "social": (admin, dataclasses.replace(P, channel="social")),
             "spring": (admin, dataclasses.replace(P, campaign="spring")),
             "live": (admin, dataclasses.replace(P3, channel="live"))}
    out = {}
    for name, (actor, f) in cases.items():
        g = analytics.decomposition_dict(analytics.decompose(db, actor=actor, filters=f))
        assert sum(g["contributions_cents"].values()) == g["change_cents"]
        out[name] = (analytics.funnel_dict(analytics.funnel(db, actor=actor, filters=f))["overall"]["counts"],
                     tuple(g["current"][k] for k in ("visitors", "buyers", "orders", "gmv_cents")),
                     [(d["day"][5:], d["visitors"], d["buyers"]) for d in g["days"] if d["visitors"]])
    return out


def test_a_guide_a_store_a_channel_and_a_campaign_are_counted_from_the_rows_as_the_walk_counts_them(db, shop):
    m = shop["m"]
    # given visitor-7 arriving through cB's spring share on moments (06-04), cB's 06-06 order of that campaign
    spring = make_share(db, merchant=m, channel="moments", campaign="spring", customer=shop["cb"])
    make_touch(db, merchant=m, share=spring, visitor_id="visitor-0777", at=at(2026, 6, 4, 9))
    event(db, m, "view", at(2026, 6, 4, 10), visitor="visitor-0777")
    event(db, m, "add_to_cart", at(2026, 6, 4, 10, 5), visitor="visitor-0777")
    set_channel(db, shop["o2"], "moments", campaign="spring")
    manager = principal_of(db, make_staff(db, merchant=m, role=Role.STORE_MANAGER, store=shop["store_b"],
                                          username="pp-mb"))
    db.flush()
    walked = scoped_figures(db, shop, manager)
    # then cB alone is guide B's and store B's: first seen in P on 06-03 (cart), paid 06-06 (a repurchase)
    cb = (z(add_to_cart=1, order=1, pay=1, repurchase=1), (1, 1, 1, 5000), [("06-03", 1, 0), ("06-04", 1, 0),
                                                                          ("06-06", 1, 1)])
    assert walked["guide"] == walked["as guide"] == walked["store"] == walked["as manager"] == cb
    # moments, social and spring: visitor-7's view and cart, cB's order and pay (moments, spring); in GMV
    # visitor-7 is the visitor (cB's first day in P came through no channel) and cB the buyer
    spread = (z(view=1, add_to_cart=1, order=1, pay=1, repurchase=1), (1, 1, 1, 5000), [("06-04", 1, 0),
                                                                                        ("06-06", 1, 1)])
    assert walked["moments"] == walked["social"] == walked["spring"] == spread
    # live in P3: cA's view 06-05 (after their live touch) and payment today, cC's live order 06-08 (their second)
    assert walked["live"] == (z(view=1, order=2, pay=2, repurchase=1), (2, 2, 2, 5000),
                              [("06-05", 1, 0), ("06-08", 1, 1), ("06-10", 1, 1)])
    # when built on 06-08 (06-08 .. today walked), and when the daily job has counted through 06-09
    with clock.frozen(at(2026, 6, 8, 10)):
        aggregates.rebuild(db, merchant_id=m.id)
    assert scoped_figures(db, shop, manager) == walked
    aggregates.advance_people(db, today=dt.date(2026, 6, 10))
    assert scoped_figures(db, shop, manager) == walked


def walked_figures(db, shop) -> dict:
    """The figures walked from the events and orders alone (the aggregates set aside for the moment)."""
    with db.begin_nested() as sp:
        db.execute(aggregates.AggregateState.__table__.delete())
        out = figures(db, shop)
        sp.rollback()
    return out


def test_the_first_fold_of_a_day_with_many_people_reads_the_days_events_once_with_the_same_rows(db, shop,
                                                                                             monkeypatch):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)  # days through 06-09
    # (a second buyer today besides cA: cB's third order)
    paid_order(db, shop["m"], shop["cb"], when=at(2026, 6, 10, 9, 30), price_cents=1200, channel="moments")
    db.flush()
    today = PeopleDay.day == NOW.date()

    def todays_rows() -> set[tuple]:
        assert people.fold_today(db, merchant_id=m, now=NOW) > 0
        return {r for r in rows(db, m)[0] if r[2] == NOW.date()}

    # when today's people are walked chunk by chunk, each chunk's events read with its people
    with db.begin_nested() as sp:
        per_chunk = todays_rows()
        sp.rollback()
    assert len({r[0] for r in per_chunk if r[0].startswith("c") and r[7]}) >= 2  # two buyers, and others
    assert len({r[0] for r in per_chunk}) > 2 and not db.scalar(select(PeopleDay.id).where(today).limit(1))
    # then with more people than a chunk (the day's events read once, picked by person) the rows are the same
    monkeypatch.setattr(people, "CHUNK", 1)
    assert todays_rows() == per_chunk


def test_todays_people_are_kept_as_provisional_rows_the_views_bring_up_to_date(db, shop):
    m = shop["m"].id
    aggregates.rebuild(db, merchant_id=m)  # days through 06-09
    # when the job writes today's people so far (10:00)
    assert people.fold_today(db, merchant_id=m, now=NOW) > 0
    assert db.scalar(select(PeopleDay.id).where(PeopleDay.merchant_id == m, PeopleDay.day == NOW.date()).limit(1))
    # then the views read them and give the walk's numbers
    assert figures(db, shop) == walked_figures(db, shop)
    # when the day goes on: a new visitor, cA views again, cC pays a third order, cD pays their first
    event(db, shop["m"], "exposure", at(2026, 6, 10, 10, 30), visitor="visitor-0042")
    event(db, shop["m"], "view", at(2026, 6, 10, 10, 31), customer=shop["ca"])
    paid_order(db, shop["m"], shop["cc"], when=at(2026, 6, 10, 10, 32), price_cents=900, channel="moments")
    paid_order(db, shop["m"], shop["cd"], when=at(2026, 6, 10, 10, 40), price_cents=700)
    db.flush()
    # then the views walk only the people whose day changed since the job's run, with the same numbers
    walked = walked_figures(db, shop)
    assert counts(walked["P3"])["all"] == z(exposure=2, view=1, order=4, pay=4, repurchase=2)
    with clock.frozen(at(2026, 6, 10, 10, 45)):
        assert figures(db, shop) == walked
        # and after the next run (10:45) too
        assert people.fold_today(db, merchant_id=m, now=at(2026, 6, 10, 10, 45)) > 0
        assert figures(db, shop) == walked
        # a merge today re-counts both people's days, today's provisional rows included
        shares.move_customer(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
        orders.move_customer_rows(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
        people.on_customer_merged(db, merchant_id=m, source_id=shop["cd"].id, target_id=shop["cc"].id)
        merged = walked_figures(db, shop)
        assert figures(db, shop) == merged
    # when the daily job counts 06-10 as a completed day, its provisional rows give way to the day's rows,
    # the same a rebuild writes
    with clock.frozen(at(2026, 6, 11, 9)):
        aggregates.advance_people(db, today=dt.date(2026, 6, 11))
        assert people.fold_today(db, merchant_id=m, now=at(2026, 6, 11, 9)) == 0  # nothing yet on 06-11
        kept = rows(db, m)
        aggregates.rebuild(db, merchant_id=m)
        assert rows(db, m) == kept
