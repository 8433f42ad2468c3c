"""Commission accounts on the ledger. Every beneficiary ("distributor" or "guide") has one account
per kind, and money only moves between them in balanced pairs of entries:

    earned  -> pending
    pending -> settled (withdrawable)        after the after-sales window
    pending -> reversed                      refunds before settlement
    settled -> reversed (+ owed when short)  refunds after settlement
    settled -> withdrawing -> withdrawn      a withdrawal paid
    withdrawing -> settled                   a withdrawal rejected or its payout failed

so pending + settled + withdrawing + withdrawn + reversed - owed is always what the rules gave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.pagination import Page
from siyu.ledger import service as ledger

PENDING = "commission_pending"
SETTLED = "commission_settled"
WITHDRAWING = "commission_withdrawing"
WITHDRAWN = "commission_withdrawn"
REVERSED = "commission_reversed"
OWED = "commission_owed"
KINDS = (PENDING, SETTLED, WITHDRAWING, WITHDRAWN, REVERSED, OWED)


@dataclasses.dataclass(frozen=True)
class Balances:
    pending_cents: int = 0
    settled_cents: int = 0  # withdrawable
    withdrawing_cents: int = 0
    withdrawn_cents: int = 0
    reversed_cents: int = 0
    owed_cents: int = 0

    @property
    def earned_cents(self) -> int:
        """What the rules gave in total."""
        return (self.pending_cents + self.settled_cents + self.withdrawing_cents + self.withdrawn_cents
                + self.reversed_cents - self.owed_cents)

    def as_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "withdrawable_cents": self.settled_cents,
                "earned_cents": self.earned_cents}


def post(session: Session, *, merchant_id: int, owner_type: str, owner_id: int, kind: str, delta: int, reason: str,
         key: str, ref_type: str | None = None, ref_id: int | None = None, note: str = "",
         actor: Principal | None = None, new_key: bool = True) -> None:
    """One entry on one commission account (`new_key`: the key names a row created or moved under
    lock in this transaction, so the two-statement path is safe)."""
    if delta == 0:
        return
    fn = ledger.post_new if new_key else ledger.post
    fn(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id, delta=delta,
       reason=reason, idempotency_key=key, note=note, ref_type=ref_type, ref_id=ref_id, actor=actor)


def move(session: Session, *, merchant_id: int, owner_type: str, owner_id: int, source: str, target: str,
         amount: int, reason: str, key: str, ref_type: str | None = None, ref_id: int | None = None, note: str = "",
         actor: Principal | None = None, new_key: bool = True) -> None:
    """Move `amount` from one account to another: the debit first (it raises InsufficientBalance
    and nothing moves when the source is short), then the credit."""
    if amount <= 0:
        return
    common = dict(merchant_id=merchant_id, owner_type=owner_type, owner_id=owner_id, reason=reason, ref_type=ref_type,
                  ref_id=ref_id, note=note, actor=actor, new_key=new_key)
    post(session, kind=source, delta=-amount, key=f"{key}:out", **common)  # type: ignore[arg-type]
    post(session, kind=target, delta=amount, key=f"{key}:in", **common)  # type: ignore[arg-type]


def balances_of(session: Session, *, merchant_id: int, owner_type: str, owner_ids: Iterable[int]) -> dict[int, Balances]:
    ids = list(dict.fromkeys(owner_ids))
    per_kind = {kind: ledger.balances(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_ids=ids)
                for kind in KINDS}
    return {i: Balances(pending_cents=per_kind[PENDING][i], settled_cents=per_kind[SETTLED][i],
                        withdrawing_cents=per_kind[WITHDRAWING][i], withdrawn_cents=per_kind[WITHDRAWN][i],
                        reversed_cents=per_kind[REVERSED][i], owed_cents=per_kind[OWED][i]) for i in ids}


def balances(session: Session, *, merchant_id: int, owner_type: str, owner_id: int) -> Balances:
    return balances_of(session, merchant_id=merchant_id, owner_type=owner_type, owner_ids=[owner_id])[owner_id]


def verify(session: Session, *, merchant_id: int) -> list[ledger.Mismatch]:
    """Commission accounts whose balance differs from the sum of their entries (always none)."""
    return [m for m in ledger.verify(session, merchant_id) if m.kind in KINDS]


def entries(session: Session, *, merchant_id: int, owner_type: str, owner_id: int, kind: str = SETTLED,
            cursor: str | None = None, limit: int | None = None) -> Page:
    return ledger.entries(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id,
                          cursor=cursor, limit=limit)
