"""Leader commissions, kept in the ledger (ledger.service accounts) so they always balance.

Rule: a leader earns `bps` of the paid amount of each line sold at their point; the rate is the
wave item's, else the wave's, else the leader's own, else the merchant's default. A commission row
per order line is accrued to the leader's `leader_commission_pending` account when the order is paid,
reduced when the line is refunded (cumulatively: what is left is the rate applied to what is left
of the line), and moved to `leader_commission_settled` once the order has been picked up and its
after-sales window has closed. The accounts are generic (kind per state, owner_type per kind of
earner), so other earners such as distributors can use this ledger with their own owner_type.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.money import apply_bps
from siyu.groupbuy.models import Commission, Leader, Wave, WaveItem
from siyu.groupbuy.states import CommissionStatus
from siyu.ledger import service as ledger

PENDING_KIND = "leader_commission_pending"
SETTLED_KIND = "leader_commission_settled"
OWNER_TYPE = "leader"
C = CommissionStatus


def rate_for(*, item: WaveItem, wave: Wave, leader: Leader, default_bps: int) -> int:
    for bps in (item.commission_bps, wave.commission_bps, leader.commission_bps):
        if bps is not None:
            return bps
    return default_bps


def _post(session: Session, row: Commission, *, kind: str, leader_id: int, delta: int, reason: str, key: str,
          actor: Principal | None = None) -> None:
    if delta == 0:
        return
    ledger.post(session, merchant_id=row.merchant_id, kind=kind, owner_type=OWNER_TYPE, owner_id=leader_id,
                delta=delta, reason=reason, idempotency_key=f"gbc:{row.id}:{key}", ref_type="groupbuy_commission",
                ref_id=row.id, note=f"order {row.order_id}", actor=actor)


def accrue(session: Session, *, merchant_id: int, leader_id: int, wave_id: int, order_id: int,
           lines: list[tuple[int, int, int]]) -> list[Commission]:
    """Accrue the commissions of a paid order: `lines` are (order_line_id, paid_cents, bps).
    Idempotent per order line."""
    existing = set(session.scalars(select(Commission.order_line_id).where(
        Commission.order_line_id.in_([line_id for line_id, _, _ in lines]))))
    rows = []
    now = clock.now()
    for line_id, paid_cents, bps in lines:
        if line_id in existing:
            continue
        row = Commission(merchant_id=merchant_id, leader_id=leader_id, wave_id=wave_id, order_id=order_id,
                         order_line_id=line_id, base_cents=paid_cents, bps=bps,
                         amount_cents=apply_bps(paid_cents, bps), reversed_cents=0, status=C.PENDING.value,
                         created_at=now)
        session.add(row)
        session.flush()
        _post(session, row, kind=PENDING_KIND, leader_id=leader_id, delta=row.amount_cents, reason="commission",
              key="accrue")
        rows.append(row)
    return rows


def reverse_for_refund(session: Session, *, merchant_id: int, order_line_id: int, refunded_cents_total: int,
                       refund_id: int) -> int:
    """A refund left `base - refunded_cents_total` of the line paid: the commission shrinks to the
    rate applied to that. Taken from the pending account (or from the settled one if, unusually, the
    refund came after settlement). Idempotent per refund. Returns the amount reversed."""
    row = session.scalars(select(Commission).where(Commission.merchant_id == merchant_id,
                                                   Commission.order_line_id == order_line_id)
                          .with_for_update().execution_options(populate_existing=True)).first()
    if row is None:
        return 0
    left = max(0, row.base_cents - refunded_cents_total)
    target = apply_bps(left, row.bps)
    delta = (row.amount_cents - row.reversed_cents) - target
    if delta <= 0:
        return 0
    kind = SETTLED_KIND if row.status == C.SETTLED else PENDING_KIND
    _post(session, row, kind=kind, leader_id=row.leader_id, delta=-delta, reason="commission_refund",
          key=f"refund:{refund_id}")
    row.reversed_cents += delta
    if left == 0 and row.status == C.PENDING:
        row.status = C.REVERSED.value
    session.flush()
    return delta


def schedule_settlement(session: Session, *, merchant_id: int, order_id: int, settle_after: dt.datetime) -> int:
    """The order was picked up: its commissions settle once its after-sales window closes."""
    rows = list(session.scalars(select(Commission).where(Commission.merchant_id == merchant_id,
                                                         Commission.order_id == order_id,
                                                         Commission.status == C.PENDING.value)))
    for row in rows:
        row.settle_after = settle_after
    session.flush()
    return len(rows)


def settle_due(session: Session, now: dt.datetime, *, limit: int = 500) -> int:
    """Move commissions whose orders were picked up and whose after-sales window has closed from
    pending to settled. Each row is locked and re-checked; the ledger keys make a rerun a no-op."""
    ids = list(session.scalars(select(Commission.id).where(Commission.status == C.PENDING.value,
                                                           Commission.settle_after.is_not(None),
                                                           Commission.settle_after <= now)
                               .order_by(Commission.id).limit(limit)))
    done = 0
    for commission_id in ids:
        row = session.scalars(select(Commission).where(Commission.id == commission_id).with_for_update()
                              .execution_options(populate_existing=True)).first()
        if row is None or row.status != C.PENDING or row.settle_after is None or row.settle_after > now:
            continue
        net = row.amount_cents - row.reversed_cents
        _post(session, row, kind=PENDING_KIND, leader_id=row.leader_id, delta=-net, reason="commission_settle",
              key="settle:out")
        _post(session, row, kind=SETTLED_KIND, leader_id=row.leader_id, delta=net, reason="commission_settle",
              key="settle:in")
        row.status = C.SETTLED.value
        row.settled_at = now
        done += 1
    session.flush()
    return done


def transfer(session: Session, row: Commission, *, to_leader_id: int, actor: Principal | None) -> None:
    """A pending commission follows its order to another point (the first point closed)."""
    if row.status != C.PENDING or row.leader_id == to_leader_id:
        return
    net = row.amount_cents - row.reversed_cents
    key = f"move:{row.leader_id}:{to_leader_id}"
    _post(session, row, kind=PENDING_KIND, leader_id=row.leader_id, delta=-net, reason="commission_move",
          key=f"{key}:out", actor=actor)
    _post(session, row, kind=PENDING_KIND, leader_id=to_leader_id, delta=net, reason="commission_move",
          key=f"{key}:in", actor=actor)
    row.leader_id = to_leader_id
    session.flush()


def earnings(session: Session, *, merchant_id: int, leader_id: int) -> dict[str, int]:
    """The leader's pending and settled commission balances (from the ledger)."""
    return {
        "pending_cents": ledger.balance(session, merchant_id=merchant_id, kind=PENDING_KIND, owner_type=OWNER_TYPE,
                                        owner_id=leader_id),
        "settled_cents": ledger.balance(session, merchant_id=merchant_id, kind=SETTLED_KIND, owner_type=OWNER_TYPE,
                                        owner_id=leader_id),
    }


def commissions_of(session: Session, *, merchant_id: int, leader_id: int | None = None, order_id: int | None = None,
                   limit: int = 200) -> list[Commission]:
    stmt = select(Commission).where(Commission.merchant_id == merchant_id)
    if leader_id is not None:
        stmt = stmt.where(Commission.leader_id == leader_id)
    if order_id is not None:
        stmt = stmt.where(Commission.order_id == order_id)
    return list(session.scalars(stmt.order_by(Commission.id.desc()).limit(limit)))


def totals_by_leader(session: Session, *, merchant_id: int) -> dict[int, dict[str, int]]:
    """Per leader: commissions by status (net of refunds)."""
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(select(Commission.leader_id, Commission.status,
                                  func.sum(Commission.amount_cents - Commission.reversed_cents))
                           .where(Commission.merchant_id == merchant_id)
                           .group_by(Commission.leader_id, Commission.status))
    for leader_id, status, total in rows:
        out.setdefault(leader_id, {})[status] = int(total or 0)
    return out
