"""The commission lifecycle: accrue on payment, reverse on refunds, settle after the after-sales window.

Every step is idempotent. Commission rows are unique per (order line, beneficiary type, level) and
written with INSERT … ON CONFLICT DO NOTHING, so a replayed or concurrent `order.paid` produces one
set; only the rows a run actually inserted are posted to the ledger. Reversal and settlement "set to
target" under the rows' locks: a refund is reversed up to what the line's refunded quantity says, so
events arriving twice or out of order change nothing more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from siyu.attribution.service import ownership
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.money import split_largest_remainder
from siyu.core.pagination import Page, paginate
from siyu.db import execute_core, upsert_insert
from siyu.distribution.models import Commission, Distributor, Programme
from siyu.distribution.service import accounts
from siyu.distribution.service.distributors import update_grade
from siyu.distribution.service.programme import effective_levels, get_programme
from siyu.distribution.service.rules import RuleSet, load_ruleset
from siyu.distribution.states import CommissionStatus, DistributorStatus
from siyu.ledger import service as ledger

C = CommissionStatus
DISTRIBUTOR, GUIDE = "distributor", "guide"


@dataclasses.dataclass(frozen=True)
class LineFacts:
    id: int
    product_id: int
    category_id: int | None
    title: str
    quantity: int
    paid_cents: int
    refunded_quantity: int = 0


@dataclasses.dataclass(frozen=True)
class OrderFacts:
    """What commission needs to know about an order, loaded once."""

    merchant_id: int
    order_id: int
    order_no: str
    customer_id: int
    store_id: int | None
    owner_id: int | None
    attribution: dict[str, Any]
    lines: tuple[LineFacts, ...]


def attribution_of(session: Session, *, merchant_id: int, customer_id: int,
                   snapshot: dict[str, Any] | None) -> dict[str, Any]:
    """The order's attribution snapshot; for an order placed before attribution recorded a referrer
    (no such key at all), the customer's bound referrer now."""
    out = dict(snapshot or {})
    if "referrer_customer_id" not in out:
        out["referrer_customer_id"] = ownership.referrer_of(session, merchant_id=merchant_id, customer_id=customer_id)
    return out


def order_facts(session: Session, *, merchant_id: int, order_id: int) -> OrderFacts:
    from siyu.orders import service as orders

    order = orders.get_order(session, order_id, actor=system_principal(merchant_id))
    lines = orders.order_lines(session, order_id)
    return OrderFacts(merchant_id=merchant_id, order_id=order.id, order_no=order.order_no,
                      customer_id=order.customer_id, store_id=order.store_id, owner_id=order.owner_id,
                      attribution=attribution_of(session, merchant_id=merchant_id, customer_id=order.customer_id,
                                                 snapshot=order.attribution),
                      lines=tuple(LineFacts(id=x.id, product_id=x.product_id, category_id=x.category_id,
                                            title=x.title, quantity=x.quantity, paid_cents=x.paid_cents,
                                            refunded_quantity=x.refunded_quantity) for x in lines))


@dataclasses.dataclass
class Context:
    """Everything accrual needs besides the order: the programme, rules and a distributor cache."""

    programme: Programme
    rules: RuleSet
    by_customer: dict[int, Distributor | None] = dataclasses.field(default_factory=dict)
    by_id: dict[int, Distributor | None] = dataclasses.field(default_factory=dict)
    # Set by preload(): the caches hold every distributor, so a miss means "not a distributor".
    complete: bool = False

    @classmethod
    def load(cls, session: Session, merchant_id: int, *, rules: RuleSet | None = None) -> Context:
        return cls(programme=get_programme(session, merchant_id=merchant_id),
                   rules=rules if rules is not None else load_ruleset(session, merchant_id=merchant_id))

    def preload(self, session: Session, merchant_id: int) -> None:
        """Cache every distributor of the merchant (for batch work such as the bench and simulator)."""
        for d in session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id)):
            self.by_customer[d.customer_id] = d
            self.by_id[d.id] = d
        self.complete = True

    def of_customer(self, session: Session, merchant_id: int, customer_id: int | None) -> Distributor | None:
        if not customer_id or (self.complete and customer_id not in self.by_customer):
            return None
        if customer_id not in self.by_customer:
            d = session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id,
                                                          Distributor.customer_id == customer_id)).first()
            self.by_customer[customer_id] = d
            if d is not None:
                self.by_id[d.id] = d
        return self.by_customer[customer_id]

    def get(self, session: Session, merchant_id: int, distributor_id: int | None) -> Distributor | None:
        if not distributor_id or (self.complete and distributor_id not in self.by_id):
            return None
        if distributor_id not in self.by_id:
            d = session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id,
                                                          Distributor.id == distributor_id)).first()
            self.by_id[distributor_id] = d
        return self.by_id[distributor_id]


def chain_for(session: Session, ctx: Context, facts: OrderFacts) -> list[tuple[int, Distributor]]:
    """(level, distributor) that earn on this order. Level 1 is the order's referrer (the buyer
    themselves when self-purchase is on and they are a distributor); each next level is the previous
    one's upline. Only active distributors earn (frozen, removed and applicants accrue nothing, but
    the chain still passes through them), and never on their own order unless self-purchase is on."""
    merchant_id = facts.merchant_id
    buyer = ctx.of_customer(session, merchant_id, facts.customer_id)
    first: Distributor | None = None
    if ctx.programme.self_purchase and buyer is not None and buyer.status == DistributorStatus.ACTIVE:
        first = buyer
    else:
        first = ctx.of_customer(session, merchant_id, facts.attribution.get("referrer_customer_id"))
    out: list[tuple[int, Distributor]] = []
    seen: set[int] = set()
    current = first
    for level in range(1, effective_levels(ctx.programme) + 1):
        if current is None or current.id in seen:
            break
        seen.add(current.id)
        own_order = current.customer_id == facts.customer_id
        if current.status == DistributorStatus.ACTIVE and (not own_order or ctx.programme.self_purchase):
            out.append((level, current))
        current = ctx.get(session, merchant_id, current.upline_id)
    return out


def guide_of(facts: OrderFacts) -> int | None:
    """The guide credited with the sale: attribution's guide, else (before attribution fills it) the
    guide who owned the customer when the order was placed."""
    if "guide_id" in facts.attribution:
        return facts.attribution.get("guide_id")
    return facts.owner_id


def compute(session: Session, ctx: Context, facts: OrderFacts) -> list[dict[str, Any]]:
    """The commission rows the rules give for one order (not written)."""
    rows: list[dict[str, Any]] = []
    now = clock.now()

    def add(kind: str, beneficiary_id: int, level: int, grade: str, line: LineFacts, rule: Any) -> None:
        amount = rule.amount(line.paid_cents, line.quantity)
        if amount <= 0:
            return
        rows.append({"merchant_id": facts.merchant_id, "order_id": facts.order_id, "order_no": facts.order_no,
                     "order_line_id": line.id, "customer_id": facts.customer_id, "beneficiary_type": kind,
                     "beneficiary_id": beneficiary_id, "level": level, "grade": grade,
                     "store_id": facts.attribution.get("store_id") or facts.store_id,
                     "product_id": line.product_id, "category_id": line.category_id, "title": line.title[:200],
                     "quantity": line.quantity, "base_cents": line.paid_cents, "amount_cents": amount,
                     "reversed_quantity": 0, "reversed_cents": 0, "rule": rule.snapshot(),
                     "status": C.PENDING.value, "settle_after": None, "settled_at": None, "created_at": now})

    if ctx.rules.has_audience(DISTRIBUTOR):
        for level, d in chain_for(session, ctx, facts):
            for line in facts.lines:
                rule = ctx.rules.resolve(audience=DISTRIBUTOR, level=level, product_id=line.product_id,
                                         category_id=line.category_id, grade=d.grade)
                if rule is not None:
                    add(DISTRIBUTOR, d.id, level, d.grade, line, rule)
    guide_id = guide_of(facts)
    if guide_id and ctx.rules.has_audience(GUIDE):
        store_id = facts.attribution.get("store_id") or facts.store_id
        for line in facts.lines:
            rule = ctx.rules.resolve(audience=GUIDE, level=1, product_id=line.product_id,
                                     category_id=line.category_id, store_id=store_id, guide_id=guide_id)
            if rule is not None:
                add(GUIDE, guide_id, 1, "", line, rule)
    return rows


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, str, int, int, int]]:
    """Insert the rows that do not exist yet; (id, order_id, type, beneficiary, level, amount) of those
    inserted. One executemany (batched into multi-row statements by the driver layer)."""
    if not rows:
        return []
    session.flush()
    table = Commission.__table__
    insert_ = upsert_insert(session)
    stmt = (insert_(table)
            .on_conflict_do_nothing(index_elements=["merchant_id", "order_line_id", "beneficiary_type", "level"])
            .returning(table.c.id, table.c.order_id, table.c.beneficiary_type, table.c.beneficiary_id,
                       table.c.level, table.c.amount_cents))
    return [tuple(r) for r in session.connection().execute(stmt, rows)]  # type: ignore[misc]


def _post_accruals(session: Session, merchant_id: int, inserted: Iterable[tuple[int, int, str, int, int, int]],
                   order_nos: dict[int, str]) -> None:
    # One pending entry per beneficiary per run (for an order.paid reaction: per beneficiary of the order),
    # keyed by the first commission row it covers; the rows say which orders and levels it sums.
    groups: dict[tuple[str, int], list[tuple[int, int, int]]] = defaultdict(list)
    for row_id, order_id, kind, beneficiary_id, _level, amount in inserted:
        groups[(kind, beneficiary_id)].append((row_id, order_id, amount))
    for (kind, beneficiary_id), items in sorted(groups.items()):
        order_ids = sorted({o for _, o, _ in items})
        accounts.post(session, merchant_id=merchant_id, owner_type=kind, owner_id=beneficiary_id,
                      kind=accounts.PENDING, delta=sum(a for _, _, a in items), reason="commission_accrued",
                      key=f"commission:{min(r for r, _, _ in items)}:accrue", ref_type="order_commission",
                      ref_id=order_ids[0] if len(order_ids) == 1 else None,
                      note=", ".join(order_nos.get(o, "") for o in order_ids)[:500])


def accrue(session: Session, ctx: Context, facts_list: Sequence[OrderFacts]) -> int:
    """Write the pending commissions of paid orders (once, whatever replays) and post them; refunds
    already recorded on the lines are reversed at once. Returns the number of rows written."""
    if not facts_list or not ctx.programme.enabled:
        return 0
    merchant_id = facts_list[0].merchant_id
    rows = [row for facts in facts_list for row in compute(session, ctx, facts)]
    inserted = _insert(session, rows)
    _post_accruals(session, merchant_id, inserted, {f.order_id: f.order_no for f in facts_list})
    refunded = [f for f in facts_list if any(x.refunded_quantity for x in f.lines)]
    for facts in refunded:
        sync_refunds(session, facts)
    return len(inserted)


def accrue_order(session: Session, *, merchant_id: int, order_id: int) -> int:
    """The `order.paid` reaction. The active rules are read first: a merchant without any (most
    orders of a shop that runs no distribution) costs this one read per paid order."""
    rules = load_ruleset(session, merchant_id=merchant_id)
    if not rules:
        return 0
    ctx = Context.load(session, merchant_id, rules=rules)
    if not ctx.programme.enabled:
        return 0
    return accrue(session, ctx, [order_facts(session, merchant_id=merchant_id, order_id=order_id)])


def _lock_rows(session: Session, stmt: Any) -> list[Commission]:
    return list(session.scalars(stmt.order_by(Commission.id).with_for_update()
                                .execution_options(populate_existing=True)))


def reversed_portion(amount_cents: int, quantity: int, refunded_quantity: int) -> int:
    """The part of a commission that `refunded_quantity` of `quantity` units take back (largest
    remainder: the parts of a line's commission always sum to it)."""
    if refunded_quantity <= 0 or quantity <= 0:
        return 0
    if refunded_quantity >= quantity:
        return amount_cents
    return split_largest_remainder(amount_cents, [refunded_quantity, quantity - refunded_quantity])[0]


def _reverse(session: Session, row: Commission, delta: int, key: str) -> None:
    common = dict(merchant_id=row.merchant_id, owner_type=row.beneficiary_type, owner_id=row.beneficiary_id,
                  reason="commission_reversed", ref_type="order_commission", ref_id=row.order_id, note=row.order_no)
    if row.status == C.PENDING:
        accounts.move(session, source=accounts.PENDING, target=accounts.REVERSED, amount=delta, key=key, **common)
        return
    # Already settled: take it back from the withdrawable balance; what is no longer there is owed
    # and recovered from the next settlement.
    available = accounts.balances(session, merchant_id=row.merchant_id, owner_type=row.beneficiary_type,
                                  owner_id=row.beneficiary_id).settled_cents
    take = min(delta, available)
    accounts.move(session, source=accounts.SETTLED, target=accounts.REVERSED, amount=take, key=key, **common)
    if delta - take:
        accounts.post(session, kind=accounts.REVERSED, delta=delta - take, key=f"{key}:owed-in", **common)
        accounts.post(session, kind=accounts.OWED, delta=delta - take, key=f"{key}:owed", **common)


def sync_refunds(session: Session, facts: OrderFacts) -> int:
    """Reverse each commission row of the order up to its line's refunded quantity. Returns cents reversed."""
    refunded = {x.id: min(x.refunded_quantity, x.quantity) for x in facts.lines}
    rows = _lock_rows(session, select(Commission).where(Commission.merchant_id == facts.merchant_id,
                                                        Commission.order_id == facts.order_id))
    total = 0
    for row in rows:
        target_q = refunded.get(row.order_line_id, 0)
        if target_q <= row.reversed_quantity:
            continue
        target = reversed_portion(row.amount_cents, row.quantity, target_q)
        delta = target - row.reversed_cents
        if delta > 0:
            _reverse(session, row, delta, key=f"commission:{row.id}:reverse:{target_q}")
            if row.status == C.SETTLED and row.beneficiary_type == DISTRIBUTOR:
                _add_sales(session, row.beneficiary_id,
                           -(reversed_portion(row.base_cents, row.quantity, target_q)
                             - reversed_portion(row.base_cents, row.quantity, row.reversed_quantity)))
            total += delta
        row.reversed_quantity = target_q
        row.reversed_cents = target
        if target_q >= row.quantity and row.status != C.REVERSED:
            row.status = C.REVERSED.value
    session.flush()
    return total


def reverse_order(session: Session, *, merchant_id: int, order_id: int) -> int:
    """The `order.refunded` reaction."""
    exists = session.scalar(select(Commission.id).where(Commission.merchant_id == merchant_id,
                                                        Commission.order_id == order_id).limit(1))
    if exists is None:
        return 0
    return sync_refunds(session, order_facts(session, merchant_id=merchant_id, order_id=order_id))


def schedule_settlement(session: Session, *, merchant_id: int, order_id: int, closes_at: dt.datetime) -> int:
    """The `order.completed` reaction: the order's commissions settle once its after-sales window closes."""
    result = session.execute(update(Commission).where(
        Commission.merchant_id == merchant_id, Commission.order_id == order_id,
        Commission.status == C.PENDING.value).values(settle_after=closes_at)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def _add_sales(session: Session, distributor_id: int, cents: int) -> None:
    _add_sales_many(session, {distributor_id: cents})


def _add_sales_many(session: Session, cents_by_distributor: dict[int, int]) -> None:
    """Move distributors' settled sales (never below zero), one executemany."""
    params = [{"did": d, "cents": c} for d, c in sorted(cents_by_distributor.items()) if c]
    if not params:
        return
    table = Distributor.__table__
    greatest = func.max if session.get_bind().dialect.name == "sqlite" else func.greatest
    execute_core(
        session, update(table).where(table.c.id == bindparam("did"))
        .values(settled_sales_cents=greatest(table.c.settled_sales_cents + bindparam("cents"), 0)), params)


def settle_due(session: Session, now: dt.datetime, *, limit: int = 2000, merchant_id: int | None = None) -> int:
    """Settle pending commissions whose order's after-sales window has closed: the net (not reversed)
    amount moves from pending to the withdrawable balance, debts from earlier reversals are recovered,
    and grades move up. Safe to run twice at once (locked rows; SKIP LOCKED on PostgreSQL)."""
    table = Commission.__table__
    stmt = select(table.c.id, table.c.merchant_id, table.c.order_id, table.c.order_no, table.c.beneficiary_type,
                  table.c.beneficiary_id, table.c.quantity, table.c.base_cents, table.c.amount_cents,
                  table.c.reversed_quantity, table.c.reversed_cents).where(
        table.c.status == C.PENDING.value, table.c.settle_after.is_not(None), table.c.settle_after <= now)
    if merchant_id is not None:
        stmt = stmt.where(table.c.merchant_id == merchant_id)
    stmt = stmt.order_by(table.c.id).limit(limit).with_for_update(
        skip_locked=session.get_bind().dialect.name == "postgresql")
    rows = list(execute_core(session, stmt))
    if not rows:
        return 0
    # One settlement entry per beneficiary per run (the rows say which orders it covers).
    groups: dict[tuple[int, str, int], list[Any]] = defaultdict(list)
    sales: dict[tuple[int, int], int] = defaultdict(int)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 900):
        session.connection().execute(update(table).where(table.c.id.in_(ids[start:start + 900]))
                                     .values(status=C.SETTLED.value, settled_at=now))
    for row in rows:
        loaded = session.identity_map.get(identity_key(Commission, row.id))
        if loaded is not None:
            set_committed_value(loaded, "status", C.SETTLED.value)
            set_committed_value(loaded, "settled_at", now)
        groups[(row.merchant_id, row.beneficiary_type, row.beneficiary_id)].append(row)
        if row.beneficiary_type == DISTRIBUTOR:
            sales[(row.merchant_id, row.beneficiary_id)] += row.base_cents - reversed_portion(
                row.base_cents, row.quantity, row.reversed_quantity)
    owners: set[tuple[int, str, int]] = set()
    for (mid, kind, beneficiary_id), group in sorted(groups.items()):
        net = sum(r.amount_cents - r.reversed_cents for r in group)
        orders_in = sorted({r.order_id for r in group})
        accounts.move(session, merchant_id=mid, owner_type=kind, owner_id=beneficiary_id, source=accounts.PENDING,
                      target=accounts.SETTLED, amount=net, reason="commission_settled",
                      key=f"commission:{min(r.id for r in group)}:settle", ref_type="order_commission",
                      ref_id=orders_in[0] if len(orders_in) == 1 else None,
                      note=", ".join(sorted({r.order_no for r in group}))[:500])
        owners.add((mid, kind, beneficiary_id))
    for mid in sorted({m for m, _, _ in owners}):
        _recover_owed(session, mid, sorted((k, o) for m, k, o in owners if m == mid),
                      key=f"commission:{rows[0].id}:recover")
    _add_sales_many(session, {d: c for (_mid, d), c in sales.items()})
    if sales:
        _regrade(session, sorted({d for _, d in sales}))
    session.flush()
    return len(rows)


def _recover_owed(session: Session, merchant_id: int, owners: list[tuple[str, int]], *, key: str) -> None:
    """Take debts left by reversals after settlement back out of the new withdrawable balance."""
    for kind in sorted({k for k, _ in owners}):
        ids = [o for k, o in owners if k == kind]
        owed = {o: v for o, v in ledger.balances(session, merchant_id=merchant_id, kind=accounts.OWED, owner_type=kind,
                                                 owner_ids=ids).items() if v > 0}
        if not owed:
            continue
        settled = ledger.balances(session, merchant_id=merchant_id, kind=accounts.SETTLED, owner_type=kind,
                                  owner_ids=list(owed))
        for owner_id, debt in sorted(owed.items()):
            take = min(debt, settled[owner_id])
            if take <= 0:
                continue
            common = dict(merchant_id=merchant_id, owner_type=kind, owner_id=owner_id,
                          reason="commission_owed_recovered", note="")
            accounts.post(session, kind=accounts.SETTLED, delta=-take, key=f"{key}:{kind}:{owner_id}:settled", **common)
            accounts.post(session, kind=accounts.OWED, delta=-take, key=f"{key}:{kind}:{owner_id}:owed", **common)


def _regrade(session: Session, distributor_ids: list[int]) -> None:
    rows = list(session.scalars(select(Distributor).where(Distributor.id.in_(distributor_ids))
                                .execution_options(populate_existing=True)))
    programmes: dict[int, Programme] = {}
    for row in rows:
        programme = programmes.setdefault(row.merchant_id, get_programme(session, merchant_id=row.merchant_id))
        update_grade(session, row, programme)


# ---------------------------------------------------------------- reading


@dataclasses.dataclass
class CommissionFilter:
    status: str | None = None
    level: int | None = None
    beneficiary_type: str | None = None
    beneficiary_id: int | None = None
    order_id: int | None = None
    customer_id: int | None = None


def list_commissions(session: Session, *, merchant_id: int, filters: CommissionFilter | None = None,
                     cursor: str | None = None, limit: int | None = None) -> Page[Commission]:
    f = filters or CommissionFilter()
    stmt = select(Commission).where(Commission.merchant_id == merchant_id)
    for column, value in ((Commission.status, f.status), (Commission.level, f.level),
                          (Commission.beneficiary_type, f.beneficiary_type),
                          (Commission.beneficiary_id, f.beneficiary_id), (Commission.order_id, f.order_id),
                          (Commission.customer_id, f.customer_id)):
        if value:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, Commission.id, cursor=cursor, limit=limit)


def of_order(session: Session, *, merchant_id: int, order_id: int) -> list[Commission]:
    return list(session.scalars(select(Commission).where(Commission.merchant_id == merchant_id,
                                                         Commission.order_id == order_id)
                                .order_by(Commission.beneficiary_type, Commission.level, Commission.id)))


def rule_total(session: Session, *, merchant_id: int, beneficiary_type: str, beneficiary_id: int) -> int:
    """What the rules gave this beneficiary in total (the sum of its commission rows)."""
    return int(session.scalar(select(func.coalesce(func.sum(Commission.amount_cents), 0)).where(
        Commission.merchant_id == merchant_id, Commission.beneficiary_type == beneficiary_type,
        Commission.beneficiary_id == beneficiary_id)) or 0)


def customers_of(session: Session, *, merchant_id: int, distributor_id: int, limit: int = 100) -> list[tuple[int, int, int]]:
    """Customers who bought through this distributor at level 1: (customer id, orders, commission cents)."""
    rows = session.execute(
        select(Commission.customer_id, func.count(func.distinct(Commission.order_id)),
               func.sum(Commission.amount_cents - Commission.reversed_cents))
        .where(Commission.merchant_id == merchant_id, Commission.beneficiary_type == DISTRIBUTOR,
               Commission.beneficiary_id == distributor_id, Commission.level == 1)
        .group_by(Commission.customer_id).order_by(func.max(Commission.id).desc()).limit(limit))
    return [(int(c), int(n), int(s or 0)) for c, n, s in rows]


def leaderboard(session: Session, *, merchant_id: int, since: dt.datetime | None = None,
                limit: int = 20) -> list[dict[str, Any]]:
    """Distributors by net commission earned (since a time), with the sales behind it."""
    net = func.sum(Commission.amount_cents - Commission.reversed_cents)
    stmt = (select(Commission.beneficiary_id, net, func.sum(Commission.base_cents),
                   func.count(func.distinct(Commission.order_id)))
            .where(Commission.merchant_id == merchant_id, Commission.beneficiary_type == DISTRIBUTOR)
            .group_by(Commission.beneficiary_id).order_by(net.desc()).limit(limit))
    if since is not None:
        stmt = stmt.where(Commission.created_at >= since)
    return [{"distributor_id": int(d), "net_commission_cents": int(n or 0), "sales_cents": int(s or 0),
             "orders": int(o)} for d, n, s, o in session.execute(stmt)]
