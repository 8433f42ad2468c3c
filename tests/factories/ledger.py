from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from siyu.ledger import service
from siyu.ledger.models import LedgerAccount
from siyu.merchants.models import Merchant

_seq = itertools.count(1)


def make_account(session: Session, *, merchant: Merchant, kind: str = "points", owner_type: str = "customer",
                 owner_id: int | None = None, balance: int = 0) -> LedgerAccount:
    """An account with `balance`, reached through a real opening entry (so the invariant holds)."""
    owner_id = owner_id or 1000 + next(_seq)
    acct = service.account(session, merchant_id=merchant.id, kind=kind, owner_type=owner_type, owner_id=owner_id)
    assert acct is not None
    if balance:
        service.post(session, merchant_id=merchant.id, kind=kind, owner_type=owner_type, owner_id=owner_id,
                     delta=balance, reason="initial", idempotency_key=f"factory:{kind}:{owner_type}:{owner_id}:{next(_seq)}")
    return acct
