"""Distinct people per funnel step over any period, without counting distinct over millions of rows.

A person is a customer ("c<id>") or, while anonymous, a visitor cookie ("v<cookie>"). On a Shanghai day a
person has a step (`STEPS`: exposure, view, add to cart, order, pay from the funnel events; pay also from
a paid goods order; every payer has ordered; a GMV visitor: any event or a paid goods order; a buyer: a
paid goods order), with the channel group of the day's first such event (pay: of the first pay event,
else of the first paid order; order: of the first order event, else the pay's) and the customer's store
as of when the day is counted (anonymous visitors have none, 0).

`analytics_people_days` keeps one row per person, step and day with the person's previous day with the
step (`prev_day`). A person is in a period [s, e] exactly once: on their first day in it, the one row with
`s <= day <= e and prev_day < s`. `analytics_people_counts` holds those rows counted per day × step ×
group × store × prev_day × second_day, so the people of any period are
`SUM(n) WHERE day BETWEEN s AND e AND prev_day < s`: a few thousand rows a day, whatever the traffic.
Repurchase (the period's payers with two paid goods orders by its end) is the pay rows counted so with
`second_day <= e`, `second_day` being the day the person's second paid goods order was paid
(`NONE_DAY` when they had it by the row's day, `PENDING` while they have not).

Completed days are counted by the daily job (`advance`, up to yesterday: `AggregateState.people_through`),
walking each new day in Python (`fold_days`); a rebuild writes the same rows for every day at once in the
database (`rebuild`: one INSERT … SELECT with window functions, no event or order in Python);
the days after `people_through` (today) are walked from their events and orders when a view asks, with each person's
earlier days read from the rows. A person is counted again from their events and orders when their
history changes under them (a customer merged, a visitor signing in, an order paid on a counted day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, case, cast, delete, func, insert, literal, select, union_all
from sqlalchemy.orm import Session

from siyu.analytics.models import AggregateState, PeopleCount, PeopleDay
from siyu.analytics.service.common import (
    CHANNEL_GROUP,
    channel_group,
    channel_group_sql,
    event_channel_group,
    local_day,
)
from siyu.attribution.service import analytics_reads as attribution
from siyu.core import clock
from siyu.customers import service as customers
from siyu.orders import service as orders
from siyu.orders.service import PaidOrderFact

FUNNEL_STEPS = ("exposure", "view", "add_to_cart", "order", "pay")
STEPS = {"exposure": 1, "view": 2, "add_to_cart": 3, "order": 4, "pay": 5, "visitor": 6, "buyer": 7}
ORDER, PAY, VISITOR, BUYER = STEPS["order"], STEPS["pay"], STEPS["visitor"], STEPS["buyer"]
STEP_NAMES = {v: k for k, v in STEPS.items()}
NONE_DAY = dt.date(1900, 1, 1)  # prev_day: no earlier day; second_day: had two paid orders by the row's day
PENDING = dt.date(9999, 12, 31)  # second_day: not two paid goods orders yet
FIRST_DAY = dt.date(2000, 1, 1)
CHUNK = 500
WRITE_BATCH = 5_000

Row = list[Any]  # [person, step, day, grp, store_id, prev_day, second_day, orders]


def person_of(customer_id: int | None, visitor_id: str | None) -> str:
    return f"c{customer_id}" if customer_id is not None else f"v{visitor_id}"


@dataclasses.dataclass
class DayPeople:
    """The people of one day: person -> {step code: channel group}, and paid goods orders per customer."""

    steps: dict[str, dict[int, str]]
    paid: dict[str, int]


def day_people(events: Iterable[tuple[str, int | None, str | None, str | None]],
               facts: Iterable[PaidOrderFact]) -> DayPeople:
    """The steps of one day's people from its funnel events (kind, customer_id, visitor_id, channel) in
    time order and its paid goods orders in paid order."""
    steps: dict[str, dict[int, str]] = {}
    for kind, customer_id, visitor_id, channel in events:
        code = STEPS.get(kind)
        if code is None or code > PAY:
            continue
        s = steps.setdefault(person_of(customer_id, visitor_id), {})
        s.setdefault(code, event_channel_group(channel))
        s.setdefault(VISITOR, "")
    paid: dict[str, int] = {}
    for f in facts:
        p = f"c{f.customer_id}"
        s = steps.setdefault(p, {})
        s.setdefault(PAY, channel_group(f))  # a pay event of the day wins over the order's own group
        s[BUYER] = ""
        s.setdefault(VISITOR, "")
        paid[p] = paid.get(p, 0) + 1
    for s in steps.values():
        if PAY in s:
            s.setdefault(ORDER, s[PAY])  # whoever paid placed an order
    return DayPeople(steps, paid)


def stores_of(session: Session, *, merchant_id: int, people: Iterable[str]) -> dict[str, int]:
    """The current store of the customers among `people` (absent: none)."""
    ids = sorted({int(p[1:]) for p in people if p.startswith("c")})
    return {f"c{c}": st for c, st in customers.stores_by_ids(session, merchant_id=merchant_id, ids=ids).items()}


# ---------------------------------------------------------------- walking days in order


@dataclasses.dataclass
class _State:
    """What the walk knows of each person: their last day per step, paid goods orders so far (capped at
    2), and their pay rows still waiting for a second order (rows walked, not yet written)."""

    last: dict[tuple[str, int], dt.date] = dataclasses.field(default_factory=dict)
    orders: dict[str, int] = dataclasses.field(default_factory=dict)
    known: set[str] = dataclasses.field(default_factory=set)
    pending: dict[str, list[Row]] = dataclasses.field(default_factory=dict)


def _seed(session: Session, merchant_id: int, people: list[str], state: _State) -> None:
    """Load the counted history (last day per step, orders so far) of people the walk has not met."""
    new = [p for p in people if p not in state.known]
    state.known.update(new)
    d = PeopleDay
    for i in range(0, len(new), CHUNK):
        for person, step, last, n in session.execute(
                select(d.person, d.step, func.max(d.day), func.max(d.orders)).where(
                    d.merchant_id == merchant_id, d.person.in_(new[i:i + CHUNK])).group_by(d.person, d.step)):
            state.last[(person, int(step))] = last
            state.orders[person] = max(state.orders.get(person, 0), int(n or 0))


def _walk(day: dt.date, people: DayPeople, state: _State, stores: dict[str, int]) -> tuple[list[Row], list[str]]:
    """The rows of one day (people seeded) and the people whose second paid goods order came that day."""
    rows: list[Row] = []
    reached: list[str] = []
    for p, steps in people.steps.items():
        before = state.orders.get(p, 0)
        after = min(2, before + people.paid.get(p, 0))
        state.orders[p] = after
        if before < 2 <= after:
            reached.append(p)
            for row in state.pending.pop(p, ()):
                row[6] = day
        store = stores.get(p, 0)
        for step, grp in steps.items():
            prev = state.last.get((p, step), NONE_DAY)
            state.last[(p, step)] = day
            gmv = step in (VISITOR, BUYER)
            row = [p, step, day, "" if gmv else grp, 0 if gmv else store, prev,
                   PENDING if step == PAY and after < 2 else NONE_DAY, after]
            if row[6] == PENDING:
                state.pending.setdefault(p, []).append(row)
            rows.append(row)
    return rows, reached


def _events_by_day(session: Session, *, merchant_id: int, start: dt.date, end: dt.date,
                   customer_id: int | None = None, visitor_id: str | None = None
                   ) -> dict[dt.date, list[tuple[str, int | None, str | None, str | None]]]:
    out: dict[dt.date, list[tuple[str, int | None, str | None, str | None]]] = {}
    for day, kind, cid, vid, channel, _share in attribution.funnel_event_rows(
            session, merchant_id=merchant_id, start=start, end=end, ordered=True, customer_id=customer_id,
            visitor_id=visitor_id):
        out.setdefault(day, []).append((kind, cid, vid, channel))
    return out


def _facts_by_day(facts: Iterable[PaidOrderFact]) -> dict[dt.date, list[PaidOrderFact]]:
    out: dict[dt.date, list[PaidOrderFact]] = {}
    for f in facts:
        out.setdefault(local_day(f.paid_at), []).append(f)
    return out


def _day_inputs(session: Session, *, merchant_id: int, start: dt.date, end: dt.date
                ) -> tuple[dict[dt.date, list[Any]], dict[dt.date, list[PaidOrderFact]]]:
    events = _events_by_day(session, merchant_id=merchant_id, start=start, end=end)
    facts = _facts_by_day(orders.paid_order_facts(session, merchant_id=merchant_id,
                                                  since=clock.local_day_bounds(start)[0],
                                                  until=clock.local_day_bounds(end)[1]))
    return events, facts


# ---------------------------------------------------------------- writing counted days


_COUNT_KEY = ("merchant_id", "day", "step", "grp", "store_id", "prev_day", "second_day")
_DAY_COLUMNS = ("merchant_id", "person", "step", "day", "grp", "store_id", "prev_day", "second_day", "orders")


def _executemany(session: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """The driver's executemany in the session's transaction (the ORM's bulk path is several times
    slower); dates go to SQLite as ISO text, as SQLAlchemy's Date stores them there."""
    if not rows:
        return
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        iso: dict[dt.date, str] = {}

        def text(v: Any) -> Any:
            if isinstance(v, dt.date):
                found = iso.get(v)
                if found is None:
                    found = iso[v] = v.isoformat()
                return found
            return v

        rows = [tuple(map(text, r)) for r in rows]
    else:
        sql = sql.replace("?", "%s")
    session.flush()
    raw = session.connection().connection.driver_connection
    for i in range(0, len(rows), WRITE_BATCH):
        if sqlite:
            raw.executemany(sql, rows[i:i + WRITE_BATCH])
        else:
            with raw.cursor() as cur:
                cur.executemany(sql, rows[i:i + WRITE_BATCH])


def _upsert_counts(session: Session, merchant_id: int, counts: Counter[tuple[Any, ...]]) -> None:
    """Add to the counts (rows created when missing), in statements safe under concurrency."""
    t = PeopleCount.__tablename__
    sql = (f"INSERT INTO {t} ({', '.join(_COUNT_KEY)}, n) VALUES ({', '.join('?' for _ in _COUNT_KEY)}, ?) "
           f"ON CONFLICT ({', '.join(_COUNT_KEY)}) DO UPDATE SET n = {t}.n + excluded.n")
    _executemany(session, sql, [(merchant_id, *k, n) for k, n in counts.items() if n])


def _bucket(row: Row) -> tuple[Any, ...]:
    return (row[2], row[1], row[3], row[4], row[5], row[6])


def _write(session: Session, merchant_id: int, rows: list[Row]) -> None:
    """Insert walked rows and add them to the counts."""
    sql = (f"INSERT INTO {PeopleDay.__tablename__} ({', '.join(_DAY_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _DAY_COLUMNS)})")
    _executemany(session, sql, [(merchant_id, *r) for r in rows])
    _upsert_counts(session, merchant_id, Counter(_bucket(r) for r in rows))


def _pending_rows(session: Session, merchant_id: int, people: list[str]) -> list[tuple[int, Row]]:
    """(id, row) of the counted pay rows of `people` still waiting for a second paid order."""
    d = PeopleDay
    out: list[tuple[int, Row]] = []
    for i in range(0, len(people), CHUNK):
        for r in session.execute(select(d.id, d.person, d.step, d.day, d.grp, d.store_id, d.prev_day, d.second_day,
                                        d.orders).where(d.merchant_id == merchant_id, d.person.in_(people[i:i + CHUNK]),
                                                        d.step == PAY, d.second_day == PENDING)):
            out.append((int(r[0]), list(r[1:])))
    return out


def _drop_empty_counts(session: Session, merchant_id: int) -> None:
    session.execute(delete(PeopleCount).where(PeopleCount.merchant_id == merchant_id, PeopleCount.n == 0))


def fold_day(session: Session, *, merchant_id: int, day: dt.date) -> int:
    """Count one completed day (after every earlier one): its people's rows join the tables, and the
    waiting pay rows of those whose second paid order came that day get it. Returns the rows written."""
    events, facts = _day_inputs(session, merchant_id=merchant_id, start=day, end=day)
    people = day_people(events.get(day, ()), facts.get(day, ()))
    if not people.steps:
        return 0
    state = _State()
    _seed(session, merchant_id, list(people.steps), state)
    rows, reached = _walk(day, people, state, stores_of(session, merchant_id=merchant_id, people=people.steps))
    _write(session, merchant_id, rows)
    if reached:
        moved: Counter[tuple[Any, ...]] = Counter()
        ids: list[tuple[dt.date, int]] = []
        for row_id, row in _pending_rows(session, merchant_id, reached):
            if row[2] >= day:
                continue
            moved[_bucket(row)] -= 1
            row[6] = day
            moved[_bucket(row)] += 1
            ids.append((day, row_id))
        _executemany(session, f"UPDATE {PeopleDay.__tablename__} SET second_day = ? WHERE id = ?", ids)
        _upsert_counts(session, merchant_id, moved)
        _drop_empty_counts(session, merchant_id)
    return len(rows)


def people_through(session: Session, *, merchant_id: int) -> dt.date | None:
    return session.scalar(select(AggregateState.people_through).where(AggregateState.merchant_id == merchant_id))


def _day_of(at: dt.datetime) -> dt.date:
    return local_day(at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC))


def _first_day(session: Session, *, merchant_id: int) -> dt.date | None:
    """The first day with a funnel event or a paid goods order (None: neither yet)."""
    paid = orders.paid_goods_select(session.get_bind().dialect.name, merchant_id=merchant_id).subquery()
    first_paid = session.scalar(select(func.min(paid.c.paid_at)))
    days = [d for d in (attribution.first_funnel_day(session, merchant_id=merchant_id),
                        _day_of(first_paid) if first_paid is not None else None) if d is not None]
    return min(days) if days else None


def fold_days(session: Session, *, merchant_id: int, start: dt.date, end: dt.date) -> int:
    """Count the days start..end in order (each after the ones before it)."""
    n = 0
    first = _first_day(session, merchant_id=merchant_id) if start <= FIRST_DAY else start
    if first is None:
        return 0
    day = max(start, first)
    collect = gc.isenabled()
    gc.disable()  # hundreds of thousands of short-lived rows a day: the cyclic collector only slows it down
    try:
        while day <= end:
            n += fold_day(session, merchant_id=merchant_id, day=day)
            day += dt.timedelta(days=1)
    finally:
        if collect:
            gc.enable()
    return n


def _rows_select(session: Session, *, merchant_id: int, through: dt.date) -> Any:
    """Every `PeopleDay` row of the days up to `through` as one SELECT: the rows `fold_days` writes day
    by day, computed set-based in the database (no event or order comes into Python).

    - the day's first event of each person and kind gives the step's group (ROW_NUMBER by time, id), the
      day's first paid goods order of each customer the order's group; a customer's first and second
      paid goods orders (ROW_NUMBER over all their orders) give `orders` and `second_day`;
    - each (person, step, day) takes the group of its best candidate, ranked as `day_people` ranks them:
      a step's own event (0) before, for pay, the paid order (1), and for order, the pay event (1) then
      the paid order (2); the rank is the first character of MIN(rank || group);
    - `prev_day` is the person's previous day with the step (LAG), the store the customer's store now."""
    dialect = session.get_bind().dialect.name
    events = attribution.funnel_events_select(dialect, merchant_id=merchant_id, end=through).subquery()
    person = case((events.c.customer_id.is_not(None), literal("c") + cast(events.c.customer_id, String)),
                  else_=literal("v") + func.coalesce(events.c.visitor_id, "None"))
    first_events = select(
        person.label("person"), events.c.customer_id.label("cid"), events.c.kind.label("step"),
        events.c.day.label("day"), case(CHANNEL_GROUP, value=events.c.channel, else_="platform").label("grp"),
        func.row_number().over(partition_by=(person, events.c.kind, events.c.day),
                               order_by=(events.c.at, events.c.event_id)).label("rn")).subquery()
    e1 = select(first_events.c.person, first_events.c.cid, first_events.c.step, first_events.c.day,
                first_events.c.grp).where(first_events.c.rn == 1).cte("first_events")
    paid = orders.paid_goods_select(dialect, merchant_id=merchant_id).subquery()
    ranked = select(
        paid.c.customer_id.label("cid"), paid.c.day.label("day"), channel_group_sql(paid.c).label("grp"),
        func.row_number().over(partition_by=(paid.c.customer_id, paid.c.day),
                               order_by=(paid.c.paid_at, paid.c.order_id)).label("rn"),
        func.row_number().over(partition_by=paid.c.customer_id,
                               order_by=(paid.c.paid_at, paid.c.order_id)).label("k")).where(
        paid.c.day <= through).cte("paid_ranked")
    f1 = select(ranked.c.cid, ranked.c.day, ranked.c.grp).where(ranked.c.rn == 1).cte("first_paid")
    nth = select(ranked.c.cid, func.min(ranked.c.day).label("first_day"),
                 func.max(case((ranked.c.k == 2, ranked.c.day))).label("second_day")).where(
        ranked.c.k <= 2).group_by(ranked.c.cid).subquery()
    paid_person = literal("c") + cast(f1.c.cid, String)

    def cand(src: Any, who: Any, step: Any, rank: str, grp: Any = None) -> Any:
        key = literal(rank) + grp if grp is not None else literal(rank)
        return select(who.label("person"), src.c.cid.label("cid"), step.label("step"), src.c.day.label("day"),
                      key.label("k"))

    ev_pay = e1.c.step == PAY
    candidates = union_all(
        cand(e1, e1.c.person, e1.c.step, "0", e1.c.grp),
        cand(e1, e1.c.person, literal(ORDER), "1", e1.c.grp).where(ev_pay),
        cand(f1, paid_person, literal(PAY), "1", f1.c.grp),
        cand(f1, paid_person, literal(ORDER), "2", f1.c.grp),
        cand(e1, e1.c.person, literal(VISITOR), "0"),
        cand(f1, paid_person, literal(VISITOR), "0"),
        cand(f1, paid_person, literal(BUYER), "0")).subquery()
    # the window over the grouped rows: one sort by (person, step, day) serves both
    prev = func.lag(candidates.c.day).over(partition_by=(candidates.c.person, candidates.c.step),
                                           order_by=candidates.c.day)
    steps = select(candidates.c.person, func.max(candidates.c.cid).label("cid"), candidates.c.step,
                   candidates.c.day, func.substr(func.min(candidates.c.k), 2).label("grp"),
                   prev.label("prev_day")).group_by(candidates.c.person, candidates.c.step,
                                                    candidates.c.day).subquery()
    stores = customers.stores_select(merchant_id=merchant_id).subquery()
    gmv = steps.c.step.in_((VISITOR, BUYER))
    prev = steps.c.prev_day
    second = case((steps.c.step != PAY, NONE_DAY), (nth.c.second_day <= steps.c.day, NONE_DAY),
                  (nth.c.second_day.is_not(None), nth.c.second_day), else_=PENDING)
    n_orders = case((nth.c.second_day <= steps.c.day, 2), (nth.c.first_day <= steps.c.day, 1), else_=0)
    return select(literal(merchant_id), steps.c.person, steps.c.step, steps.c.day, steps.c.grp,
                  case((gmv, 0), else_=func.coalesce(stores.c.store_id, 0)),
                  func.coalesce(prev, NONE_DAY), second, n_orders).select_from(
        steps.outerjoin(nth, nth.c.cid == steps.c.cid).outerjoin(stores, stores.c.customer_id == steps.c.cid))


def rebuild(session: Session, *, merchant_id: int, through: dt.date) -> int:
    """Count every day of the merchant up to `through` afresh (the caller records `people_through`): the
    rows `fold_days` would write day by day, in one INSERT … SELECT, then their counts in one
    INSERT … SELECT … GROUP BY. Returns the rows written."""
    d, c = PeopleDay, PeopleCount
    session.execute(delete(d).where(d.merchant_id == merchant_id))
    session.execute(delete(c).where(c.merchant_id == merchant_id))
    session.execute(insert(d).from_select(list(_DAY_COLUMNS), _rows_select(session, merchant_id=merchant_id,
                                                                            through=through)))
    keys = [getattr(d, k) for k in _COUNT_KEY]
    session.execute(insert(c).from_select([*_COUNT_KEY, "n"], select(*keys, func.count()).where(
        d.merchant_id == merchant_id).group_by(*keys)))
    return int(session.scalar(select(func.coalesce(func.sum(c.n), 0)).where(c.merchant_id == merchant_id)) or 0)


def advance(session: Session, *, today: dt.date) -> dict[int, int]:
    """For every built merchant, count the completed days not counted yet (up to yesterday).
    Idempotent: a merchant counted through yesterday is left alone."""
    yesterday = today - dt.timedelta(days=1)
    done: dict[int, int] = {}
    for merchant_id, through in list(session.execute(select(AggregateState.merchant_id,
                                                             AggregateState.people_through))):
        if through is not None and through >= yesterday:
            continue
        start = (through + dt.timedelta(days=1)) if through is not None else FIRST_DAY
        done[merchant_id] = fold_days(session, merchant_id=merchant_id, start=start, end=yesterday)
        session.execute(AggregateState.__table__.update().where(
            AggregateState.merchant_id == merchant_id).values(people_through=yesterday))
    session.flush()
    return done


def _customer_facts(session: Session, *, merchant_id: int, customer_id: int) -> list[PaidOrderFact]:
    """One customer's paid goods orders, in paid time then id order."""
    q = orders.paid_goods_select(session.get_bind().dialect.name, merchant_id=merchant_id,
                                 customer_id=customer_id).subquery()
    stmt = select(q.c.order_id, q.c.customer_id, q.c.owner_id, q.c.store_id, q.c.paid_at, q.c.total_cents,
                  q.c.refunded_cents, q.c.fulfilment_type, q.c.channel, q.c.campaign, q.c.guide_id,
                  q.c.sharer_staff_id, q.c.sharer_customer_id, q.c.referrer_customer_id, q.c.live_id
                  ).order_by(q.c.paid_at, q.c.order_id)
    out = []
    for r in session.execute(stmt):
        paid_at = r[4] if r[4].tzinfo is not None else r[4].replace(tzinfo=dt.UTC)
        out.append(PaidOrderFact(int(r[0]), int(r[1]), r[2], r[3], paid_at, int(r[5]), int(r[6] or 0), r[7],
                                 *(r[8:10]), *(None if v is None else int(v) for v in r[10:])))
    return out


def recount_person(session: Session, *, merchant_id: int, person: str) -> None:
    """Count one person's counted days again from their events and orders (their history changed: a
    merge, a visitor signing in, an order paid on a day already counted)."""
    through = people_through(session, merchant_id=merchant_id)
    if through is None:
        return
    d = PeopleDay
    old = [list(r) for r in session.execute(select(d.person, d.step, d.day, d.grp, d.store_id, d.prev_day,
                                                   d.second_day, d.orders).where(d.merchant_id == merchant_id,
                                                                                 d.person == person))]
    if old:
        _upsert_counts(session, merchant_id, Counter({_bucket(r): -1 for r in old}))
        session.execute(delete(PeopleDay).where(d.merchant_id == merchant_id, d.person == person))
    customer_id = int(person[1:]) if person.startswith("c") else None
    visitor_id = person[1:] if customer_id is None else None
    events = _events_by_day(session, merchant_id=merchant_id, start=FIRST_DAY, end=through,
                            customer_id=customer_id, visitor_id=visitor_id)
    facts: dict[dt.date, list[PaidOrderFact]] = {}
    if customer_id is not None:
        facts = _facts_by_day(f for f in _customer_facts(session, merchant_id=merchant_id, customer_id=customer_id)
                              if local_day(f.paid_at) <= through)
    state = _State(known={person})
    stores = stores_of(session, merchant_id=merchant_id, people=[person])
    rows: list[Row] = []
    for day in sorted(set(events) | set(facts)):
        walked, _reached = _walk(day, day_people(events.get(day, ()), facts.get(day, ())), state, stores)
        rows.extend(walked)
    _write(session, merchant_id, rows)
    _drop_empty_counts(session, merchant_id)


def on_order_paid(session: Session, *, merchant_id: int, customer_id: int, day: dt.date) -> None:
    """A goods order paid on `day`: nothing to do unless that day is already counted (a late payment)."""
    through = people_through(session, merchant_id=merchant_id)
    if through is not None and day <= through:
        recount_person(session, merchant_id=merchant_id, person=f"c{customer_id}")


def on_customer_merged(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """The source's events and orders are the target's now: both counted again."""
    recount_person(session, merchant_id=merchant_id, person=f"c{source_id}")
    recount_person(session, merchant_id=merchant_id, person=f"c{target_id}")


def on_signed_in(session: Session, *, merchant_id: int, customer_id: int, visitor_id: str | None) -> None:
    """A visitor signed in (their anonymous events became the customer's): both counted again, when the
    visitor has counted days (else only today's events moved, and today is walked when asked)."""
    d = PeopleDay
    if visitor_id and session.scalar(select(d.id).where(d.merchant_id == merchant_id,
                                                        d.person == f"v{visitor_id}").limit(1)) is not None:
        recount_person(session, merchant_id=merchant_id, person=f"v{visitor_id}")
        recount_person(session, merchant_id=merchant_id, person=f"c{customer_id}")


# ---------------------------------------------------------------- reading a period


@dataclasses.dataclass(frozen=True)
class PeriodPeople:
    """A period's people: {(step name, group, store_id): people} for the funnel steps and "repurchase",
    or for "visitor" and "buyer" (group "", store 0) with {day: (visitors, buyers)}."""

    cells: dict[tuple[str, str, int], int]
    days: dict[dt.date, tuple[int, int]]

    def total(self, step: str) -> int:
        return sum(n for (s, _g, _st), n in self.cells.items() if s == step)


def period_people(session: Session, *, merchant_id: int, start: dt.date, end: dt.date,
                  store_id: int | None = None, gmv: bool = False) -> PeriodPeople:
    """The people of the days start..end from the counted days, and the days after them (today) walked
    from their events and orders: the funnel steps (only customers of `store_id` when given), or with
    `gmv` the GMV visitors and buyers, per day too."""
    through = people_through(session, merchant_id=merchant_id)
    through = through if through is not None else start - dt.timedelta(days=1)
    cells: Counter[tuple[str, str, int]] = Counter()
    days: dict[dt.date, list[int]] = {}
    c = PeopleCount
    table_end = min(end, through)
    steps = [VISITOR, BUYER] if gmv else [STEPS[s] for s in FUNNEL_STEPS]
    if table_end >= start:
        where = [c.merchant_id == merchant_id, c.step.in_(steps), c.day >= start, c.day <= table_end]
        if store_id is not None:
            where.append(c.store_id == store_id)
        for step, grp, store, n, again in session.execute(
                select(c.step, c.grp, c.store_id, func.sum(c.n),
                       func.sum(case((c.second_day <= end, c.n), else_=0)))
                .where(*where, c.prev_day < start).group_by(c.step, c.grp, c.store_id)):
            name = STEP_NAMES[int(step)]
            cells[(name, grp, int(store))] += int(n)
            if int(step) == PAY:
                cells[("repurchase", grp, int(store))] += int(again or 0)
        if gmv:
            for day, step, n in session.execute(select(c.day, c.step, func.sum(c.n)).where(*where).group_by(
                    c.day, c.step)):
                days.setdefault(day, [0, 0])[0 if step == VISITOR else 1] += int(n)
    if end > through:
        # the days after the counted ones, walked from the first of them so each person's earlier days
        # (counted or walked) are known; rows are read once every day is walked (a pay row may learn of a
        # second paid order on a later day)
        events, facts = _day_inputs(session, merchant_id=merchant_id, start=through + dt.timedelta(days=1), end=end)
        state = _State()
        walked: list[Row] = []
        for day in sorted(set(events) | set(facts)):
            people = day_people(events.get(day, ()), facts.get(day, ()))
            _seed(session, merchant_id, list(people.steps), state)
            rows, reached = _walk(day, people, state, stores_of(session, merchant_id=merchant_id,
                                                                people=people.steps))
            walked.extend(rows)
            # counted pay rows of the period waiting for a second order that came now: repurchasers
            for _id, row in _pending_rows(session, merchant_id, reached if not gmv else []):
                if start <= row[2] <= through and row[5] < start and (store_id is None or row[4] == store_id):
                    cells[("repurchase", row[3], row[4])] += 1
        for row in walked:
            if row[2] < start or row[1] not in steps:
                continue
            if gmv:
                days.setdefault(row[2], [0, 0])[0 if row[1] == VISITOR else 1] += 1
            if row[5] >= start or (store_id is not None and row[4] != store_id):
                continue
            cells[(STEP_NAMES[row[1]], row[3], row[4])] += 1
            if row[1] == PAY and row[6] <= end:
                cells[("repurchase", row[3], row[4])] += 1
    return PeriodPeople(cells=dict(cells), days={d: (v[0], v[1]) for d, v in days.items()})
