from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    delta: int
    balance_after: int
    reason: str
    note: str
    ref_type: str | None
    ref_id: int | None
    actor_type: str
    actor_id: int | None
    created_at: dt.datetime


class MismatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: int
    kind: str
    owner_type: str
    owner_id: int
    balance: int
    entries_sum: int
