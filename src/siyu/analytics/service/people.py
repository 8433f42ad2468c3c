"""Distinct people per funnel step over any period, without counting distinct over millions of rows.

A person is a customer ("c<id>") or, while anonymous, a visitor cookie ("v<cookie>"). On a Shanghai day a
person has a step (`STEPS`: exposure, view, add to cart, order, pay from the funnel events; pay also from
a paid goods order; every payer has ordered; a GMV visitor: any event or a paid goods order; a buyer: a
paid goods order) with the touch it came through (`Touch`: channel group, touch channel, campaign) of the
day's first such event (pay: of the first pay event, else of the first paid order; order: of the first
order event, else the pay's; a GMV visitor: the day's first event, else the first paid order; a buyer: the
pay's), and the customer's store and owner as of when the day is counted (anonymous visitors have none, 0).

`analytics_people_days` keeps one row per person, step and day with the person's previous day with the
step (`prev_day`). A person is in a period [s, e] exactly once: on their first day in it, the one row with
`s <= day <= e and prev_day < s`. `analytics_people_counts` holds those rows counted per day × step ×
touch (group, channel, campaign) × store × prev_day × second_day, so the people of any period, narrowed to
a store, a channel or a campaign or not, are `SUM(n) WHERE day BETWEEN s AND e AND prev_day < s`: a few
thousand rows a day, whatever the traffic. Narrowed to a guide (the owner) the rows themselves are
counted the same way along their owner index (`Scope`). A person counts where their first day in the
period puts them.
Repurchase (the period's payers with two paid goods orders by its end) is the pay rows counted so with
`second_day <= e`, `second_day` being the day the person's second paid goods order was paid
(`NONE_DAY` when they had it by the row's day, `PENDING` while they have not).

Completed days are counted by the daily job (`advance`, up to yesterday: `AggregateState.people_through`),
walking each new day in Python (`fold_days`); a rebuild writes the same rows for every day at once in the
database (`rebuild`: one INSERT … SELECT with window functions, no event or order in Python). Today's
rows so far are kept too, as provisional rows (`fold_today`, every job tick: the people whose day changed
since the last run are taken out and walked again over their whole day); a view reads them and walks
only the people whose day changed since (`TODAY_OVERLAP`), so its cost does not grow with the day's
traffic. Until the job has run today (or when earlier days are not counted yet) the days after
`people_through` are walked from their events and orders when a view asks, with each person's earlier
days read from the rows. A person is counted again from their events and orders when their history
changes under them (a customer merged, a visitor signing in, an order paid on a counted day)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, and_, case, cast, delete, func, insert, literal, or_, select, union_all
from sqlalchemy.orm import Session

from siyu.analytics.models import AggregateState, PeopleCount, PeopleDay
from siyu.analytics.service.common import (
    CHANNEL_GROUP,
    GROUPS,
    Filters,
    channel_group,
    channel_group_sql,
    channel_key,
    event_channel_group,
    local_day,
)
from siyu.attribution.service import analytics_reads as attribution
from siyu.core import clock
from siyu.core.auth import Principal, Role
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

Row = list[Any]  # [person, step, day, grp, store_id, prev_day, second_day, orders, owner_id, channel, campaign]
Touch = tuple[str, str, str]  # the channel group, the touch channel when a known one (else ""), the campaign
# fixed-width codes of the groups and touch channels, for the rebuild to pick a step's touch with one MIN()
GROUP_CODES = {g: str(i) for i, g in enumerate(GROUPS)}
CHANNEL_CODES = {"": "00", **{c: f"{i:02d}" for i, c in enumerate(sorted(CHANNEL_GROUP), start=1)}}


def person_of(customer_id: int | None, visitor_id: str | None) -> str:
    return f"c{customer_id}" if customer_id is not None else f"v{visitor_id}"


@dataclasses.dataclass
class DayPeople:
    """The people of one day: person -> {step code: touch}, and paid goods orders per customer."""

    steps: dict[str, dict[int, Touch]]
    paid: dict[str, int]


def event_touch(channel: str | None, campaign: str | None) -> Touch:
    return event_channel_group(channel), channel_key(channel), campaign or ""


def order_touch(f: PaidOrderFact) -> Touch:
    return channel_group(f), channel_key(f.channel), f.campaign or ""


def day_people(events: Iterable[tuple[str, int | None, str | None, str | None, str | None]],
               facts: Iterable[PaidOrderFact]) -> DayPeople:
    """The steps of one day's people from its funnel events (kind, customer_id, visitor_id, channel,
    campaign) in time order and its paid goods orders in paid order, each with its touch: a step's first
    event's; pay: the first pay event's, else the first paid order's; order: the first order event's, else
    the pay's; a GMV visitor: the day's first event's, else the first paid order's; a buyer: the pay's."""
    steps: dict[str, dict[int, Touch]] = {}
    for kind, customer_id, visitor_id, channel, campaign in events:
        code = STEPS.get(kind)
        if code is None or code > PAY:
            continue
        s = steps.setdefault(person_of(customer_id, visitor_id), {})
        touch = event_touch(channel, campaign)
        s.setdefault(code, touch)
        s.setdefault(VISITOR, touch)
    paid: dict[str, int] = {}
    for f in facts:
        p = f"c{f.customer_id}"
        s = steps.setdefault(p, {})
        touch = order_touch(f)
        s.setdefault(PAY, touch)  # a pay event of the day wins over the order's own touch
        s[BUYER] = s[PAY]
        s.setdefault(VISITOR, touch)
        paid[p] = paid.get(p, 0) + 1
    for s in steps.values():
        if PAY in s:
            s.setdefault(ORDER, s[PAY])  # whoever paid placed an order
    return DayPeople(steps, paid)


def places_of(session: Session, *, merchant_id: int, people: Iterable[str]) -> dict[str, tuple[int, int]]:
    """The current (store, owner) of the customers among `people` (absent: neither)."""
    ids = sorted({int(p[1:]) for p in people if p.startswith("c")})
    return {f"c{c}": place for c, place in customers.placements_by_ids(session, merchant_id=merchant_id,
                                                                       ids=ids).items()}


# ---------------------------------------------------------------- walking days in order


@dataclasses.dataclass
class _State:
    """What the walk knows of each person: their last day per step, paid goods orders so far (capped at
    2), and their pay rows still waiting for a second order (rows walked, not yet written)."""

    last: dict[tuple[str, int], dt.date] = dataclasses.field(default_factory=dict)
    orders: dict[str, int] = dataclasses.field(default_factory=dict)
    known: set[str] = dataclasses.field(default_factory=set)
    pending: dict[str, list[Row]] = dataclasses.field(default_factory=dict)


def _seed(session: Session, merchant_id: int, people: list[str], state: _State, before: dt.date) -> None:
    """Load the counted history before the day `before` (last day per step, orders so far) of people the
    walk has not met (today's provisional rows, if any, are not history)."""
    new = [p for p in people if p not in state.known]
    state.known.update(new)
    d = PeopleDay
    for i in range(0, len(new), CHUNK):
        # each step's last day from the unique index alone; then the orders so far from one row per person:
        # that of their latest day (`orders` only grows with the day), not from every row of their history
        latest: dict[str, tuple[int, dt.date]] = {}
        for person, step, last in session.execute(select(d.person, d.step, func.max(d.day)).where(
                d.merchant_id == merchant_id, d.person.in_(new[i:i + CHUNK]), d.day < before).group_by(
                d.person, d.step)):
            state.last[(person, int(step))] = last
            if person not in latest or last > latest[person][1]:
                latest[person] = (int(step), last)
        if latest:
            # one key lookup each (SQLite scanned the whole table for a row-value IN list)
            keys = [and_(d.person == p, d.step == st, d.day == day) for p, (st, day) in latest.items()]
            for person, n in session.execute(select(d.person, d.orders).where(d.merchant_id == merchant_id,
                                                                              or_(*keys))):
                state.orders[person] = max(state.orders.get(person, 0), int(n or 0))


def _walk(day: dt.date, people: DayPeople, state: _State, places: dict[str, tuple[int, int]]
          ) -> tuple[list[Row], list[str]]:
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
        store, owner = places.get(p, (0, 0))
        for step, (grp, channel, campaign) in steps.items():
            prev = state.last.get((p, step), NONE_DAY)
            state.last[(p, step)] = day
            row = [p, step, day, grp, store, prev, PENDING if step == PAY and after < 2 else NONE_DAY, after,
                   owner, channel, campaign]
            if row[6] == PENDING:
                state.pending.setdefault(p, []).append(row)
            rows.append(row)
    return rows, reached


def _events_by_day(session: Session, *, merchant_id: int, start: dt.date, end: dt.date,
                   customer_id: int | None = None, visitor_id: str | None = None
                   ) -> dict[dt.date, list[tuple[str, int | None, str | None, str | None, str | None]]]:
    out: dict[dt.date, list[tuple[str, int | None, str | None, str | None, str | None]]] = {}
    for day, kind, cid, vid, channel, _share, campaign in attribution.funnel_event_rows(
            session, merchant_id=merchant_id, start=start, end=end, ordered=True, customer_id=customer_id,
            visitor_id=visitor_id):
        out.setdefault(day, []).append((kind, cid, vid, channel, campaign))
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


_COUNT_KEY = ("merchant_id", "day", "step", "grp", "store_id", "prev_day", "second_day", "channel", "campaign")
_DAY_COLUMNS = ("merchant_id", "person", "step", "day", "grp", "store_id", "prev_day", "second_day", "orders",
                "owner_id", "channel", "campaign")


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
    return (row[2], row[1], row[3], row[4], row[5], row[6], row[9], row[10])


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
        for r in session.execute(select(d.id, *_row_columns()).where(
                d.merchant_id == merchant_id, d.person.in_(people[i:i + CHUNK]), d.step == PAY,
                d.second_day == PENDING)):
            out.append((int(r[0]), list(r[1:])))
    return out


def _drop_empty_counts(session: Session, merchant_id: int) -> None:
    session.execute(delete(PeopleCount).where(PeopleCount.merchant_id == merchant_id, PeopleCount.n == 0))


def _row_columns() -> list[Any]:
    """The `PeopleDay` columns of a `Row`, in its order."""
    d = PeopleDay
    return [d.person, d.step, d.day, d.grp, d.store_id, d.prev_day, d.second_day, d.orders, d.owner_id, d.channel,
            d.campaign]


def _rows_of(session: Session, merchant_id: int, day: dt.date, people: list[str]) -> list[Row]:
    """The rows of `people` on `day` (read by person)."""
    d = PeopleDay
    out: list[Row] = []
    for i in range(0, len(people), CHUNK):
        out.extend(list(r) for r in session.execute(select(*_row_columns()).where(
            d.merchant_id == merchant_id, d.person.in_(people[i:i + CHUNK]), d.day == day)))
    return out


def _drop_rows(session: Session, merchant_id: int, day: dt.date, people: list[str]) -> list[Row]:
    """Take the rows of `people` on `day` out of the tables (and their counts); returns them."""
    old = _rows_of(session, merchant_id, day, people)
    if old:
        _upsert_counts(session, merchant_id, _negated(Counter(_bucket(r) for r in old)))
        d = PeopleDay
        for i in range(0, len(people), CHUNK):
            session.execute(delete(d).where(d.merchant_id == merchant_id, d.person.in_(people[i:i + CHUNK]),
                                            d.day == day))
        _drop_empty_counts(session, merchant_id)
    return old


def _negated(counts: Counter[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for k, n in counts.items():
        out[k] = -n
    return out


def fold_day(session: Session, *, merchant_id: int, day: dt.date) -> int:
    """Count one completed day (after every earlier one): its people's rows join the tables, and the
    waiting pay rows of those whose second paid order came that day get it. Returns the rows written."""
    events, facts = _day_inputs(session, merchant_id=merchant_id, start=day, end=day)
    people = day_people(events.get(day, ()), facts.get(day, ()))
    if not people.steps:
        return 0
    _drop_rows(session, merchant_id, day, list(people.steps))  # the day's provisional rows (`fold_today`)
    state = _State()
    _seed(session, merchant_id, list(people.steps), state, before=day)
    rows, reached = _walk(day, people, state, places_of(session, merchant_id=merchant_id, people=people.steps))
    _write(session, merchant_id, rows)
    _mark_reached(session, merchant_id, day, reached)
    return len(rows)


def _mark_reached(session: Session, merchant_id: int, day: dt.date, reached: list[str]) -> None:
    """The counted pay rows (before `day`) of the people whose second paid goods order came on `day` learn
    of it (`second_day`), and move in the counts."""
    if not reached:
        return
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


# ---------------------------------------------------------------- today so far (provisional rows)

# The people whose day changed are found by the time their events and payments were recorded, with this
# margin for transactions that committed after a later one (a row recorded at 10:00:00 and committed at
# 10:00:02 is still seen by a run or a view that looked at 10:00:01).
TODAY_OVERLAP = dt.timedelta(minutes=5)


def walk_people_day(session: Session, *, merchant_id: int, day: dt.date, people: list[str]
                    ) -> tuple[list[Row], list[str]]:
    """The rows of some people's whole `day` (their events and paid goods orders of that day), each walked
    after their counted history before it, and those among them whose second paid goods order came that day."""
    events: list[tuple[str, int | None, str | None, str | None, str | None]] = []
    if len(people) > CHUNK:
        # many people (the day's first fold: all of them): the day's events read once and picked here, not
        # the day read again for every chunk of people
        wanted = set(people)
        events = [(kind, cid, vid, channel, campaign) for _d, kind, cid, vid, channel, _share, campaign in
                  attribution.funnel_event_rows(session, merchant_id=merchant_id, start=day, end=day, ordered=True)
                  if person_of(cid, vid) in wanted]
    elif people:
        cids = [int(p[1:]) for p in people if p.startswith("c")]
        vids = [p[1:] for p in people if p.startswith("v") and p != "vNone"]
        events = [(kind, cid, vid, channel, campaign) for _d, kind, cid, vid, channel, _share, campaign in
                  attribution.funnel_event_rows(session, merchant_id=merchant_id, start=day, end=day, ordered=True,
                                                people=(cids, vids), anonymous="vNone" in people)]
    start, end = clock.local_day_bounds(day)
    cids = sorted({int(p[1:]) for p in people if p.startswith("c")})
    if len(cids) > CHUNK:  # the same for the day's orders: read once (along the paid time), picked here
        buyers = set(cids)
        facts = [f for f in orders.paid_order_facts(session, merchant_id=merchant_id, since=start, until=end)
                 if f.customer_id in buyers]
    else:
        facts = orders.paid_order_facts_of(session, merchant_id=merchant_id, since=start, until=end, customer_ids=cids)
    state = _State()
    _seed(session, merchant_id, people, state, before=day)
    return _walk(day, day_people(events, facts), state, places_of(session, merchant_id=merchant_id, people=people))


def _changed_since(session: Session, *, merchant_id: int, day: dt.date, since: dt.datetime) -> list[str]:
    """The people with a funnel event or a paid goods order of `day` recorded at or after `since`."""
    found = {person_of(c, v) for c, v in attribution.funnel_people_since(session, merchant_id=merchant_id, day=day,
                                                                          since=since)}
    found.update(f"c{c}" for c in orders.paid_customers_since(session, merchant_id=merchant_id, since=since,
                                                               until=clock.local_day_bounds(day)[1]))
    return sorted(found)


def _today_state(session: Session, merchant_id: int) -> AggregateState | None:
    return session.scalar(select(AggregateState).where(AggregateState.merchant_id == merchant_id))


def fold_today(session: Session, *, merchant_id: int, now: dt.datetime) -> int:
    """Bring today's provisional rows up to date (the job, every tick): the people whose day changed since
    the last run (all of today's on the first run of a day) are taken out and walked again over their whole
    day. Only once every earlier day is counted (`people_through` is yesterday). Returns the rows written."""
    state = _today_state(session, merchant_id)
    today = local_day(now)
    if state is None or state.people_through != today - dt.timedelta(days=1):
        return 0
    day_start = clock.local_day_bounds(today)[0]
    if state.today_day != today or state.today_walked_at is None:
        since = day_start
    else:
        walked_at = state.today_walked_at
        walked_at = walked_at if walked_at.tzinfo is not None else walked_at.replace(tzinfo=dt.UTC)
        since = max(day_start, walked_at - TODAY_OVERLAP)
    changed = _changed_since(session, merchant_id=merchant_id, day=today, since=since)
    _drop_rows(session, merchant_id, today, changed)
    rows, reached = walk_people_day(session, merchant_id=merchant_id, day=today, people=changed)
    _write(session, merchant_id, rows)
    _mark_reached(session, merchant_id, today, reached)
    state.today_day, state.today_walked_at = today, now
    session.flush()
    return len(rows)


def advance_today(session: Session, *, now: dt.datetime) -> dict[int, int]:
    """`fold_today` for every built merchant."""
    return {m: fold_today(session, merchant_id=m, now=now)
            for m in list(session.scalars(select(AggregateState.merchant_id).order_by(AggregateState.merchant_id)))}


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


def _touch_sql(channel: Any, campaign: Any, grp: Any) -> Any:
    """A touch as one fixed-width string: the group's code (1), the touch channel's (2), the campaign."""
    return (case(GROUP_CODES, value=grp, else_=GROUP_CODES["platform"])
            + case({c: code for c, code in CHANNEL_CODES.items() if c}, value=channel, else_=CHANNEL_CODES[""])
            + func.coalesce(campaign, ""))


def _rows_select(session: Session, *, merchant_id: int, through: dt.date) -> Any:
    """Every `PeopleDay` row of the days up to `through` as one SELECT: the rows `fold_days` writes day
    by day, computed set-based in the database (no event or order comes into Python).

    - the day's first event of each person and kind gives the step's touch (ROW_NUMBER by time, id), the
      day's first event of each person (whatever its kind) the GMV visitor's; the day's first paid goods
      order of each customer the order's touch; a customer's first and second paid goods orders
      (ROW_NUMBER over all their orders) give `orders` and `second_day`;
    - each (person, step, day) takes the touch of its best candidate, ranked as `day_people` ranks them:
      a step's own event (0) before, for pay, the paid order (1), and for order, the pay event (1) then
      the paid order (2); a buyer's candidates are the pay's, and a buyer row needs a paid order; the
      rank and the touch (`_touch_sql`) are one string, so MIN() picks both;
    - `prev_day` is the person's previous day with the step (LAG), the store and owner the customer's now."""
    dialect = session.get_bind().dialect.name
    events = attribution.funnel_events_select(dialect, merchant_id=merchant_id, end=through).subquery()
    person = case((events.c.customer_id.is_not(None), literal("c") + cast(events.c.customer_id, String)),
                  else_=literal("v") + func.coalesce(events.c.visitor_id, "None"))
    first_events = select(
        person.label("person"), events.c.customer_id.label("cid"), events.c.kind.label("step"),
        events.c.day.label("day"),
        _touch_sql(events.c.channel, events.c.campaign,
                   case(CHANNEL_GROUP, value=events.c.channel, else_="platform")).label("touch"),
        func.row_number().over(partition_by=(person, events.c.kind, events.c.day),
                               order_by=(events.c.at, events.c.event_id)).label("rn"),
        func.row_number().over(partition_by=(person, events.c.day),
                               order_by=(events.c.at, events.c.event_id)).label("rn_day")).subquery()
    e1 = select(first_events.c.person, first_events.c.cid, first_events.c.step, first_events.c.day,
                first_events.c.touch, first_events.c.rn_day).where(first_events.c.rn == 1).cte("first_events")
    paid = orders.paid_goods_select(dialect, merchant_id=merchant_id).subquery()
    ranked = select(
        paid.c.customer_id.label("cid"), paid.c.day.label("day"),
        _touch_sql(paid.c.channel, paid.c.campaign, channel_group_sql(paid.c)).label("touch"),
        func.row_number().over(partition_by=(paid.c.customer_id, paid.c.day),
                               order_by=(paid.c.paid_at, paid.c.order_id)).label("rn"),
        func.row_number().over(partition_by=paid.c.customer_id,
                               order_by=(paid.c.paid_at, paid.c.order_id)).label("k")).where(
        paid.c.day <= through).cte("paid_ranked")
    f1 = select(ranked.c.cid, ranked.c.day, ranked.c.touch).where(ranked.c.rn == 1).cte("first_paid")
    nth = select(ranked.c.cid, func.min(ranked.c.day).label("first_day"),
                 func.max(case((ranked.c.k == 2, ranked.c.day))).label("second_day")).where(
        ranked.c.k <= 2).group_by(ranked.c.cid).subquery()
    paid_person = literal("c") + cast(f1.c.cid, String)

    def cand(src: Any, who: Any, step: Any, rank: str) -> Any:
        return select(who.label("person"), src.c.cid.label("cid"), step.label("step"), src.c.day.label("day"),
                      (literal(rank) + src.c.touch).label("k"))

    ev_pay = e1.c.step == PAY
    candidates = union_all(
        cand(e1, e1.c.person, e1.c.step, "0"),
        cand(e1, e1.c.person, literal(ORDER), "1").where(ev_pay),
        cand(f1, paid_person, literal(PAY), "1"),
        cand(f1, paid_person, literal(ORDER), "2"),
        cand(e1, e1.c.person, literal(VISITOR), "0").where(e1.c.rn_day == 1),
        cand(f1, paid_person, literal(VISITOR), "1"),
        cand(e1, e1.c.person, literal(BUYER), "0").where(ev_pay),
        cand(f1, paid_person, literal(BUYER), "1")).subquery()
    # the window over the grouped rows: one sort by (person, step, day) serves both
    prev = func.lag(candidates.c.day).over(partition_by=(candidates.c.person, candidates.c.step),
                                           order_by=candidates.c.day)
    best = func.min(candidates.c.k)
    steps = select(candidates.c.person, func.max(candidates.c.cid).label("cid"), candidates.c.step,
                   candidates.c.day, func.substr(best, 2).label("touch"), prev.label("prev_day")).group_by(
        candidates.c.person, candidates.c.step, candidates.c.day).having(
        # a buyer row only where a paid order was (a pay event alone makes no buyer)
        (candidates.c.step != BUYER) | (func.max(candidates.c.k) >= "1")).subquery()
    places = customers.placements_select(merchant_id=merchant_id).subquery()
    touch = steps.c.touch
    grp = case({code: g for g, code in GROUP_CODES.items()}, value=func.substr(touch, 1, 1), else_="platform")
    channel = case({code: c for c, code in CHANNEL_CODES.items() if c}, value=func.substr(touch, 2, 2), else_="")
    second = case((steps.c.step != PAY, NONE_DAY), (nth.c.second_day <= steps.c.day, NONE_DAY),
                  (nth.c.second_day.is_not(None), nth.c.second_day), else_=PENDING)
    n_orders = case((nth.c.second_day <= steps.c.day, 2), (nth.c.first_day <= steps.c.day, 1), else_=0)
    return select(literal(merchant_id), steps.c.person, steps.c.step, steps.c.day, grp,
                  func.coalesce(places.c.store_id, 0), func.coalesce(steps.c.prev_day, NONE_DAY), second, n_orders,
                  func.coalesce(places.c.owner_id, 0), channel, func.substr(touch, 4)).select_from(
        steps.outerjoin(nth, nth.c.cid == steps.c.cid).outerjoin(places, places.c.customer_id == steps.c.cid))


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
    """Count one person's counted days (and today's provisional rows) again from their events and orders
    (their history changed: a merge, a visitor signing in, an order paid on a day already counted)."""
    state = _today_state(session, merchant_id)
    if state is None or state.people_through is None:
        return
    through = state.people_through
    if state.today_day == through + dt.timedelta(days=1):
        through = state.today_day
    d = PeopleDay
    old = [list(r) for r in session.execute(select(*_row_columns()).where(d.merchant_id == merchant_id,
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
    places = places_of(session, merchant_id=merchant_id, people=[person])
    rows: list[Row] = []
    for day in sorted(set(events) | set(facts)):
        walked, _reached = _walk(day, day_people(events.get(day, ()), facts.get(day, ())), state, places)
        rows.extend(walked)
    _write(session, merchant_id, rows)
    _drop_empty_counts(session, merchant_id)


def on_order_paid(session: Session, *, merchant_id: int, customer_id: int, day: dt.date,
                  through: dt.date | None) -> None:
    """A goods order paid on `day`: nothing to do unless that day is already counted (a late payment);
    `through`: the merchant's `people_through`."""
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
class Scope:
    """Whose people a view counts: the customers of some stores (None: every store, anonymous visitors
    too), of one owner (a guide), and people by the touch of their first day in the period: a channel
    group or a touch channel, a campaign."""

    stores: tuple[int, ...] | None = None
    owner_id: int | None = None
    channel: str | None = None
    campaign: str | None = None

    @property
    def on_counts(self) -> bool:
        """Whether `PeopleCount` answers (it keeps the store and the touch, not the owner: a guide's people
        are counted from the `PeopleDay` rows along their owner index)."""
        return self.owner_id is None

    def conditions(self, t: Any) -> list[Any]:
        out = []
        if self.stores is not None:
            out.append(t.store_id.in_(self.stores) if len(self.stores) != 1 else t.store_id == self.stores[0])
        if self.owner_id is not None:
            out.append(t.owner_id == self.owner_id)
        if self.channel is not None:
            out.append(t.grp == self.channel if self.channel in GROUPS else t.channel == self.channel)
        if self.campaign is not None:
            out.append(t.campaign == self.campaign)
        return out

    def passes(self, row: Row) -> bool:
        return ((self.stores is None or row[4] in self.stores) and (self.owner_id is None or row[8] == self.owner_id)
                and (self.channel is None or (row[3] if self.channel in GROUPS else row[9]) == self.channel)
                and (self.campaign is None or row[10] == self.campaign))


EVERYONE = Scope()


def scope_of(actor: Principal, filters: Filters) -> Scope:
    """The people the actor sees under the filters, as `customers.scoped` narrows customers: a brand admin
    everyone; a guide their own customers; a store manager or an agent their stores' customers."""
    stores = (filters.store_id,) if filters.store_id is not None else None
    owner = filters.guide_id
    if actor.kind != "system" and actor.role != Role.BRAND_ADMIN:
        if actor.role == Role.GUIDE:
            if owner is not None and owner != actor.subject_id:
                stores = ()
            owner = actor.subject_id
        else:
            mine = tuple(actor.store_ids)
            stores = mine if stores is None else tuple(s for s in stores if s in mine)
    return Scope(stores=stores, owner_id=owner, channel=filters.channel, campaign=filters.campaign)


@dataclasses.dataclass(frozen=True)
class PeriodPeople:
    """A period's people: {(step name, group, store_id): people} for the funnel steps and "repurchase",
    or for "visitor" and "buyer" with {day: (visitors, buyers)}."""

    cells: dict[tuple[str, str, int], int]
    days: dict[dt.date, tuple[int, int]]

    def total(self, step: str) -> int:
        return sum(n for (s, _g, _st), n in self.cells.items() if s == step)


def _tally(rows: Iterable[Row], *, start: dt.date, end: dt.date, steps: list[int], scope: Scope, gmv: bool,
           cells: Counter[tuple[str, str, int]], days: dict[dt.date, list[int]], sign: int = 1) -> None:
    """Count walked rows of the period (`sign` -1: take counted rows out again): each person on their first
    day in it (prev_day < start), and for GMV each day's people; a payer with their second paid order by
    the end is a repurchaser."""
    for row in rows:
        if row[2] < start or row[2] > end or row[1] not in steps or not scope.passes(row):
            continue
        if gmv:
            days.setdefault(row[2], [0, 0])[0 if row[1] == VISITOR else 1] += sign
        if row[5] >= start:
            continue
        cells[(STEP_NAMES[row[1]], row[3], row[4])] += sign
        if row[1] == PAY and row[6] <= end:
            cells[("repurchase", row[3], row[4])] += sign


def period_people(session: Session, *, merchant_id: int, start: dt.date, end: dt.date, scope: Scope = EVERYONE,
                  gmv: bool = False) -> PeriodPeople:
    """The people of the days start..end in `scope` from the counted days, and the days after them (today)
    walked from their events and orders: the funnel steps, or with `gmv` the GMV visitors and buyers, per
    day too."""
    state = _today_state(session, merchant_id)
    through = state.people_through if state is not None else None
    through = through if through is not None else start - dt.timedelta(days=1)
    # today's provisional rows (`fold_today`) are in the tables when every day before today is counted
    today = clock.today_local()
    provisional = (state is not None and state.today_day == today and through == today - dt.timedelta(days=1)
                   and state.today_walked_at is not None)
    cells: Counter[tuple[str, str, int]] = Counter()
    days: dict[dt.date, list[int]] = {}
    table_end = min(end, today if provisional else through)
    steps = [VISITOR, BUYER] if gmv else [STEPS[s] for s in FUNNEL_STEPS]
    if table_end >= start:
        t: Any = PeopleCount if scope.on_counts else PeopleDay
        n = t.n if scope.on_counts else literal(1)
        where = [t.merchant_id == merchant_id, t.step.in_(steps), t.day >= start, t.day <= table_end,
                 *scope.conditions(t)]
        if gmv:
            # one pass: each day's people, and those on their first day in the period
            for day, step, grp, store, total, first in session.execute(
                    select(t.day, t.step, t.grp, t.store_id, func.sum(n), func.sum(case((t.prev_day < start, n),
                                                                                        else_=0)))
                    .where(*where).group_by(t.day, t.step, t.grp, t.store_id)):
                days.setdefault(day, [0, 0])[0 if step == VISITOR else 1] += int(total)
                cells[(STEP_NAMES[int(step)], grp, int(store))] += int(first or 0)
        else:
            for step, grp, store, total, again in session.execute(
                    select(t.step, t.grp, t.store_id, func.sum(n), func.sum(case((t.second_day <= end, n), else_=0)))
                    .where(*where, t.prev_day < start).group_by(t.step, t.grp, t.store_id)):
                name = STEP_NAMES[int(step)]
                cells[(name, grp, int(store))] += int(total)
                if int(step) == PAY:
                    cells[("repurchase", grp, int(store))] += int(again or 0)
    if provisional and end >= today:
        # today's people whose day changed since the provisional rows were written: their rows out, their
        # whole day walked again in
        walked_at = state.today_walked_at if state is not None else None
        assert walked_at is not None
        walked_at = walked_at if walked_at.tzinfo is not None else walked_at.replace(tzinfo=dt.UTC)
        changed = _changed_since(session, merchant_id=merchant_id, day=today, since=walked_at - TODAY_OVERLAP)
        _tally(_rows_of(session, merchant_id, today, changed), start=start, end=end, steps=steps, scope=scope,
               gmv=gmv, cells=cells, days=days, sign=-1)
        rows, reached = walk_people_day(session, merchant_id=merchant_id, day=today, people=changed)
        for _id, row in _pending_rows(session, merchant_id, reached if not gmv else []):
            if start <= row[2] < today and row[5] < start and scope.passes(row):
                cells[("repurchase", row[3], row[4])] += 1
        _tally(rows, start=start, end=end, steps=steps, scope=scope, gmv=gmv, cells=cells, days=days)
    elif end > through:
        # the days after the counted ones, walked from the first of them so each person's earlier days
        # (counted or walked) are known; rows are read once every day is walked (a pay row may learn of a
        # second paid order on a later day)
        events, facts = _day_inputs(session, merchant_id=merchant_id, start=through + dt.timedelta(days=1), end=end)
        state = _State()
        walked: list[Row] = []
        for day in sorted(set(events) | set(facts)):
            people = day_people(events.get(day, ()), facts.get(day, ()))
            _seed(session, merchant_id, list(people.steps), state, before=through + dt.timedelta(days=1))
            rows, reached = _walk(day, people, state, places_of(session, merchant_id=merchant_id,
                                                                people=people.steps))
            walked.extend(rows)
            # counted pay rows of the period waiting for a second order that came now: repurchasers
            for _id, row in _pending_rows(session, merchant_id, reached if not gmv else []):
                if start <= row[2] <= through and row[5] < start and scope.passes(row):
                    cells[("repurchase", row[3], row[4])] += 1
        _tally(walked, start=start, end=end, steps=steps, scope=scope, gmv=gmv, cells=cells, days=days)
    return PeriodPeople(cells=dict(cells), days={d: (v[0], v[1]) for d, v in days.items()})


def walked_period(session: Session, *, merchant_id: int, start: dt.date, end: dt.date, scope: Scope = EVERYONE,
                  gmv: bool = False, repurchasers: Iterable[int] = ()) -> PeriodPeople:
    """`period_people` for a merchant whose aggregates are not built: the period's days walked from their
    events and orders alone (a person's first day in the period has no earlier day in the walk); the
    payers among `repurchasers` (customers with two paid goods orders by the end) are the repurchasers."""
    events, facts = _day_inputs(session, merchant_id=merchant_id, start=start, end=end)
    state = _State()
    walked: list[Row] = []
    for day in sorted(set(events) | set(facts)):
        people = day_people(events.get(day, ()), facts.get(day, ()))
        walked.extend(_walk(day, people, state, places_of(session, merchant_id=merchant_id,
                                                          people=people.steps))[0])
    again = {f"c{c}" for c in repurchasers}
    for row in walked:
        if row[1] == PAY:
            row[6] = NONE_DAY if row[0] in again else PENDING
    cells: Counter[tuple[str, str, int]] = Counter()
    days: dict[dt.date, list[int]] = {}
    steps = [VISITOR, BUYER] if gmv else [STEPS[s] for s in FUNNEL_STEPS]
    _tally(walked, start=start, end=end, steps=steps, scope=scope, gmv=gmv, cells=cells, days=days)
    return PeriodPeople(cells=dict(cells), days={d: (v[0], v[1]) for d, v in days.items()})


def in_period(session: Session, *, actor: Principal, filters: Filters, gmv: bool = False) -> PeriodPeople:
    """The period's people in the actor's scope and the filters: from the counted days once the merchant's
    aggregates are built (an `AggregateState`), else walked from the period's events and orders alone."""
    scope = scope_of(actor, filters)
    if session.scalar(select(AggregateState.id).where(AggregateState.merchant_id == actor.merchant_id)) is not None:
        return period_people(session, merchant_id=actor.merchant_id, start=filters.start, end=filters.end,
                             scope=scope, gmv=gmv)
    again = [] if gmv else [cid for cid, _first, _last, n, _kept in orders.customer_order_totals(
        session, merchant_id=actor.merchant_id, until=filters.until, kept_only=False) if n >= 2]
    return walked_period(session, merchant_id=actor.merchant_id, start=filters.start, end=filters.end,
                         scope=scope, gmv=gmv, repurchasers=again)
