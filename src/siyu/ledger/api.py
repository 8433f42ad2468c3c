"""REST routes of the ledger: a merchant-wide view for the brand (per-domain views such as a SKU's
stock entries live with their domain)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.core.web import DbSession
from siyu.ledger import service
from siyu.ledger.schemas import LedgerEntryRead, MismatchRead
from siyu.merchants.deps import Staff

router = APIRouter(tags=["ledger"])

Code = Annotated[str, Query(min_length=1, max_length=30, pattern=r"^[a-z_]+$")]


@router.get("/api/v1/admin/ledger/summary")
def ledger_summary(session: DbSession, principal: Staff) -> dict:
    principal.require("merchant.manage")
    return {"items": service.summary(session, principal.merchant_id)}


@router.get("/api/v1/admin/ledger/verify")
def ledger_verify(session: DbSession, principal: Staff) -> dict:
    """Accounts whose balance differs from the sum of their entries; `ok` when there are none."""
    principal.require("merchant.manage")
    mismatches = service.verify(session, principal.merchant_id)
    return {"ok": not mismatches, "mismatches": [MismatchRead.model_validate(m) for m in mismatches]}


@router.get("/api/v1/admin/ledger/entries")
def ledger_entries(session: DbSession, principal: Staff, kind: Code, owner_type: Code,
                   owner_id: Annotated[int, Query(gt=0, le=2**53)],
                   cursor: Annotated[str | None, Query(max_length=100)] = None,
                   limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> dict:
    principal.require("merchant.manage")
    page = service.entries(session, merchant_id=principal.merchant_id, kind=kind, owner_type=owner_type,
                           owner_id=owner_id, cursor=cursor, limit=limit)
    return {"items": [LedgerEntryRead.model_validate(e) for e in page.items], "next_cursor": page.next_cursor}
