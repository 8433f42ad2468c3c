"""REST routes of distribution: /api/v1/admin/distribution/… for staff, /api/v1/shop/{m}/distribution/…
for customers. Parse, call the service, serialise."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query

from siyu.core.idempotency import run_idempotent
from siyu.core.web import DbSession
from siyu.customers.deps import ShopCustomer
from siyu.distribution import service
from siyu.distribution.schemas import (
    GradeSet,
    JoinIn,
    ProgrammeUpdate,
    RejectIn,
    ReviewIn,
    RuleIn,
    RuleRead,
    SimulateIn,
    StatusIn,
    UplineSet,
    WithdrawalIn,
    commission_read,
    distributor_read,
    withdrawal_read,
)
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.orders import service as orders

router = APIRouter(tags=["distribution"])

Id = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=100)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
ADMIN = "/api/v1/admin/distribution"
SHOP = "/api/v1/shop/{m}/distribution"


def _programme(session: Any, merchant_id: int) -> dict[str, Any]:
    return service.as_dict(service.get_programme(session, merchant_id=merchant_id),
                           after_sales_days=orders.after_sales_days(session, merchant_id))


def _me(session: Any, d: Any) -> dict[str, Any]:
    balances = service.accounts.balances(session, merchant_id=d.merchant_id, owner_type="distributor", owner_id=d.id)
    return {**distributor_read(d), "balances": balances.as_dict()}


# ---------------------------------------------------------------- admin: programme and rules


@router.get(f"{ADMIN}/programme")
def admin_programme(session: DbSession, principal: Staff) -> dict:
    principal.require("merchant.manage")
    return _programme(session, principal.merchant_id)


@router.patch(f"{ADMIN}/programme")
def admin_programme_update(body: ProgrammeUpdate, session: DbSession, principal: Staff) -> dict:
    changes = body.model_dump(exclude_none=True)
    if body.grades is not None:
        changes["grades"] = [g.model_dump() for g in body.grades]
    service.update_programme(session, actor=principal, **changes)
    return _programme(session, principal.merchant_id)


@router.get(f"{ADMIN}/rules")
def admin_rules(session: DbSession, principal: Staff, status: Annotated[str, Query(pattern="^(active|draft)$")] = "active") -> dict:
    principal.require("merchant.manage")
    rows = service.list_rules(session, merchant_id=principal.merchant_id, status=status)
    return {"items": [RuleRead.model_validate(r).model_dump() for r in rows],
            "precedence": {k: list(v) for k, v in service.SCOPE_ORDER.items()}}


@router.post(f"{ADMIN}/rules", status_code=201)
def admin_rule_create(body: RuleIn, session: DbSession, principal: Staff) -> dict:
    programme = service.get_programme(session, merchant_id=principal.merchant_id)
    row = service.create_rule(session, actor=principal, data=body.model_dump(exclude={"status"}),
                              grade_codes=[g["code"] for g in service.grades(programme)], status=body.status)
    return RuleRead.model_validate(row).model_dump()


@router.delete(f"{ADMIN}/rules/{{rule_id}}", status_code=204)
def admin_rule_delete(rule_id: Id, session: DbSession, principal: Staff) -> None:
    service.delete_rule(session, actor=principal, rule_id=rule_id)


@router.post(f"{ADMIN}/rules/draft")
def admin_rules_draft(session: DbSession, principal: Staff) -> dict:
    """Start a draft from the rules in force."""
    return {"copied": service.copy_active_to_draft(session, actor=principal)}


@router.post(f"{ADMIN}/rules/publish")
def admin_rules_publish(session: DbSession, principal: Staff) -> dict:
    return {"published": service.publish_draft(session, actor=principal)}


@router.post(f"{ADMIN}/simulate")
def admin_simulate(body: SimulateIn, session: DbSession, principal: Staff) -> dict:
    """Projected commission of a draft rule set on the last N days of paid orders, by level and grade,
    next to what the rules in force paid."""
    principal.require("merchant.manage")
    draft = None
    if body.rules is not None:
        programme = service.get_programme(session, merchant_id=principal.merchant_id)
        codes = [g["code"] for g in service.grades(programme)]
        draft = service.RuleSet(
            service.Rule(id=i + 1, **service.clean_rule(r.model_dump(exclude={"status"}), grade_codes=codes))
            for i, r in enumerate(body.rules))
    return service.simulate(session, merchant_id=principal.merchant_id, days=body.days, draft=draft).as_dict()


# ---------------------------------------------------------------- admin: distributors


@router.get(f"{ADMIN}/distributors")
def admin_distributors(session: DbSession, principal: Staff, status: Annotated[str | None, Query(max_length=20)] = None,
                       grade: Annotated[str | None, Query(max_length=20)] = None,
                       q: Annotated[str | None, Query(max_length=40)] = None, cursor: Cursor = None,
                       limit: Limit = None) -> dict:
    principal.require("merchant.manage")
    page = service.list_distributors(session, merchant_id=principal.merchant_id,
                                     filters=service.DistributorFilter(status=status, grade=grade, q=q),
                                     cursor=cursor, limit=limit)
    return {"items": [distributor_read(d) for d in page.items], "next_cursor": page.next_cursor}


@router.get(f"{ADMIN}/distributors/{{distributor_id}}")
def admin_distributor(distributor_id: Id, session: DbSession, principal: Staff) -> dict:
    principal.require("merchant.manage")
    d = service.get_distributor(session, merchant_id=principal.merchant_id, distributor_id=distributor_id)

    def node(n: service.TeamNode) -> dict[str, Any]:
        return {**distributor_read(n.distributor), "children": [node(c) for c in n.children]}

    return {**_me(session, d), "team": [node(n) for n in service.team(session, row=d)]}


@router.post(f"{ADMIN}/distributors/{{distributor_id}}/approve")
def admin_distributor_approve(distributor_id: Id, session: DbSession, principal: Staff) -> dict:
    return distributor_read(service.review(session, actor=principal, distributor_id=distributor_id, approve=True))


@router.post(f"{ADMIN}/distributors/{{distributor_id}}/reject")
def admin_distributor_reject(distributor_id: Id, body: ReviewIn, session: DbSession, principal: Staff) -> dict:
    return distributor_read(service.review(session, actor=principal, distributor_id=distributor_id, approve=False,
                                           reason=body.reason))


@router.post(f"{ADMIN}/distributors/{{distributor_id}}/status")
def admin_distributor_status(distributor_id: Id, body: StatusIn, session: DbSession, principal: Staff) -> dict:
    return distributor_read(service.change_status(session, actor=principal, distributor_id=distributor_id,
                                                  status=body.status, reason=body.reason))


@router.post(f"{ADMIN}/distributors/{{distributor_id}}/grade")
def admin_distributor_grade(distributor_id: Id, body: GradeSet, session: DbSession, principal: Staff) -> dict:
    return distributor_read(service.set_grade(session, actor=principal, distributor_id=distributor_id,
                                              grade=body.grade))


@router.post(f"{ADMIN}/distributors/{{distributor_id}}/upline")
def admin_distributor_upline(distributor_id: Id, body: UplineSet, session: DbSession, principal: Staff) -> dict:
    return distributor_read(service.change_upline(session, actor=principal, distributor_id=distributor_id,
                                                  upline_id=body.upline_id))


# ---------------------------------------------------------------- admin: commissions, withdrawals, board


@router.get(f"{ADMIN}/commissions")
def admin_commissions(session: DbSession, principal: Staff, status: Annotated[str | None, Query(max_length=20)] = None,
                      level: Annotated[int | None, Query(ge=1, le=3)] = None,
                      beneficiary_type: Annotated[str | None, Query(pattern="^(distributor|guide)$")] = None,
                      beneficiary_id: Annotated[int | None, Query(gt=0, le=2**53)] = None,
                      order_id: Annotated[int | None, Query(gt=0, le=2**53)] = None,
                      cursor: Cursor = None, limit: Limit = None) -> dict:
    principal.require("merchant.manage")
    page = service.list_commissions(session, merchant_id=principal.merchant_id, filters=service.CommissionFilter(
        status=status, level=level, beneficiary_type=beneficiary_type, beneficiary_id=beneficiary_id,
        order_id=order_id), cursor=cursor, limit=limit)
    return {"items": [commission_read(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get(f"{ADMIN}/withdrawals")
def admin_withdrawals(session: DbSession, principal: Staff, status: Annotated[str | None, Query(max_length=20)] = None,
                      distributor_id: Annotated[int | None, Query(gt=0, le=2**53)] = None,
                      cursor: Cursor = None, limit: Limit = None) -> dict:
    principal.require("merchant.manage")
    page = service.list_withdrawals(session, merchant_id=principal.merchant_id, filters=service.WithdrawalFilter(
        status=status, distributor_id=distributor_id), cursor=cursor, limit=limit)
    return {"items": [withdrawal_read(w) for w in page.items], "next_cursor": page.next_cursor}


@router.post(f"{ADMIN}/withdrawals/{{withdrawal_id}}/approve")
def admin_withdrawal_approve(withdrawal_id: Id, session: DbSession, principal: Staff) -> dict:
    return withdrawal_read(service.approve(session, actor=principal, withdrawal_id=withdrawal_id))


@router.post(f"{ADMIN}/withdrawals/{{withdrawal_id}}/reject")
def admin_withdrawal_reject(withdrawal_id: Id, body: RejectIn, session: DbSession, principal: Staff) -> dict:
    return withdrawal_read(service.reject(session, actor=principal, withdrawal_id=withdrawal_id, reason=body.reason))


@router.get(f"{ADMIN}/leaderboard")
def admin_leaderboard(session: DbSession, principal: Staff, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
    principal.require("merchant.manage")
    board = service.leaderboard(session, merchant_id=principal.merchant_id, limit=limit)
    names = service.by_ids(session, merchant_id=principal.merchant_id, ids=[b["distributor_id"] for b in board])
    return {"items": [{**b, "nickname": names[b["distributor_id"]].nickname if b["distributor_id"] in names else ""}
                      for b in board]}


@router.get(f"{ADMIN}/ledger/verify")
def admin_ledger_verify(session: DbSession, principal: Staff) -> dict:
    """Commission accounts whose balance differs from the sum of their entries; `ok` when none."""
    principal.require("merchant.manage")
    mismatches = service.accounts.verify(session, merchant_id=principal.merchant_id)
    return {"ok": not mismatches, "mismatches": [m.__dict__ for m in mismatches]}


# ---------------------------------------------------------------- shop: the distributor centre


@router.get(f"{SHOP}/programme")
def shop_programme(merchant: ShopMerchant, session: DbSession) -> dict:
    p = service.get_programme(session, merchant_id=merchant.id)
    return {"enabled": p.enabled, "enrolment_mode": p.enrolment_mode, "levels": service.effective_levels(p),
            "min_withdrawal_cents": p.min_withdrawal_cents,
            "daily_withdrawal_limit_cents": p.daily_withdrawal_limit_cents}


@router.get(f"{SHOP}/me")
def shop_me(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return _me(session, service.require_own(session, actor=customer))


@router.post(f"{SHOP}/join", status_code=201)
def shop_join(body: JoinIn, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return _me(session, service.join(session, actor=customer, invite_code=body.invite_code or None, note=body.note))


@router.get(f"{SHOP}/team")
def shop_team(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    d = service.require_own(session, actor=customer)

    def node(n: service.TeamNode) -> dict[str, Any]:
        m = n.distributor
        return {"id": m.id, "nickname": m.nickname, "grade": m.grade, "status": m.status, "team_size": m.team_size,
                "joined_at": m.joined_at.isoformat() if m.joined_at else None,
                "children": [node(c) for c in n.children]}

    return {"items": [node(n) for n in service.team(session, row=d)]}


@router.get(f"{SHOP}/commissions")
def shop_commissions(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                     status: Annotated[str | None, Query(max_length=20)] = None, cursor: Cursor = None,
                     limit: Limit = None) -> dict:
    d = service.require_own(session, actor=customer)
    page = service.list_commissions(session, merchant_id=merchant.id, filters=service.CommissionFilter(
        status=status, beneficiary_type="distributor", beneficiary_id=d.id), cursor=cursor, limit=limit)
    return {"items": [commission_read(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get(f"{SHOP}/withdrawals")
def shop_withdrawals(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession, cursor: Cursor = None,
                     limit: Limit = None) -> dict:
    d = service.require_own(session, actor=customer)
    page = service.list_withdrawals(session, merchant_id=merchant.id,
                                    filters=service.WithdrawalFilter(distributor_id=d.id), cursor=cursor, limit=limit)
    return {"items": [withdrawal_read(w) for w in page.items], "next_cursor": page.next_cursor}


@router.post(f"{SHOP}/withdrawals", status_code=201)
def shop_withdraw(body: WithdrawalIn, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                  idempotency_key: IdempotencyKeyHeader = None) -> Any:
    def create() -> tuple[int, dict[str, Any]]:
        return 201, withdrawal_read(service.request_withdrawal(session, actor=customer,
                                                               amount_cents=body.amount_cents))

    return run_idempotent(session, merchant_id=merchant.id,
                          scope=f"distribution.withdraw:customer:{customer.customer_id}", key=idempotency_key,
                          payload=body.model_dump(mode="json"), fn=create)
