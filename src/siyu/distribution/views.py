"""Pages of distribution: the console (/console/distribution…: programme, rules, distributors,
commissions, withdrawals, leaderboard, simulator) and the H5 distributor centre (/shop/{m}/distribution…)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from siyu.attribution.service import ownership
from siyu.core.auth import system_principal
from siyu.core.errors import AppError, NotFound
from siyu.core.i18n import gettext as _
from siyu.core.money import yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.distribution import service
from siyu.distribution.states import COMMISSION_LABELS, DISTRIBUTOR_LABELS, WITHDRAWAL_LABELS
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.orders import service as orders

router = APIRouter(include_in_schema=False)

Id = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/distribution"
LABELS = {"distributor": {k.value: v for k, v in DISTRIBUTOR_LABELS.items()},
          "commission": {k.value: v for k, v in COMMISSION_LABELS.items()},
          "withdrawal": {k.value: v for k, v in WITHDRAWAL_LABELS.items()},
          "enrolment": service.ENROLMENT_LABELS, "scope": service.SCOPE_LABELS,
          "audience": {"distributor": "Distributors", "guide": "Guides"},
          "payout": {"sandbox": "Sandbox payout", "wechatpay": "WeChat Pay transfer"}}


def _ctx(session: Any, principal: Any, tab: str, **extra: Any) -> dict[str, Any]:
    programme = service.get_programme(session, merchant_id=principal.merchant_id)
    return {"active_menu": "distribution", "tab": tab, "labels": LABELS, "programme": programme,
            "grade_names": service.grade_names(programme), "describe": service.describe,
            "merchant_name": merchants.get_merchant(session, principal.merchant_id).name,
            "waiting_withdrawals": service.waiting_count(session, merchant_id=principal.merchant_id), **extra}


def _int_param(params: Any, name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 2**53 else None


def _cursor(params: Any) -> str | None:
    return (params.get("cursor") or "")[:200] or None


def _back(path: str, message: str, *, kind: str = "ok") -> Response:
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}{urlencode({'flash': message[:200], 'kind': kind})}", status_code=303)


def _flash(request: Request) -> dict[str, Any]:
    msg = (request.query_params.get("flash") or "")[:200]
    return {"flash": msg or None, "flash_kind": "error" if request.query_params.get("kind") == "error" else "ok"}


# ---------------------------------------------------------------- console: programme


@router.get(BASE)
def programme_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    return _programme_page(request, session, principal)


def _programme_page(request: Request, session: Any, principal: Any, *, form: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    programme = service.get_programme(session, merchant_id=principal.merchant_id)
    page = service.list_distributors(session, merchant_id=principal.merchant_id,
                                     filters=service.DistributorFilter(status="pending"), limit=100)
    values = form or {
        "enabled": programme.enabled, "enrolment_mode": programme.enrolment_mode, "levels": str(programme.levels),
        "allow_third_level": programme.allow_third_level, "self_purchase": programme.self_purchase,
        "min_withdrawal": f"{programme.min_withdrawal_cents / 100:.2f}",
        "daily_limit": f"{programme.daily_withdrawal_limit_cents / 100:.2f}",
        "upline_changes": str(programme.upline_changes_per_30_days), "payout_method": programme.payout_method,
        "grades": "\n".join(f"{g['code']},{g['name']},{g['min_settled_sales_cents'] / 100:.2f},{g['min_team_size']}"
                            for g in service.grades(programme))}
    return render(request, "distribution/console_programme.html", _ctx(
        session, principal, "programme", form=values, errors=errors or {}, modes=service.ENROLMENT_MODES,
        payout_methods=service.PAYOUT_METHODS, applications=len(page.items),
        after_sales_days=orders.after_sales_days(session, principal.merchant_id), **_flash(request)),
        status_code=status_code)


def _parse_grades(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if len(parts) != 4 or not parts[3].isdigit():
            raise ValueError(line)
        out.append({"code": parts[0], "name": parts[1], "min_settled_sales_cents": yuan_to_cents(parts[2] or "0"),
                    "min_team_size": int(parts[3])})
    return out


@router.post(f"{BASE}/programme")
def programme_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = {k: form_str(form, k) for k in ("enrolment_mode", "levels", "min_withdrawal", "daily_limit",
                                             "upline_changes", "payout_method", "grades")}
    for flag in ("enabled", "allow_third_level", "self_purchase"):
        values[flag] = form.get(flag) == "on"
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {k: values[k] for k in ("enabled", "allow_third_level", "self_purchase")}
    changes["enrolment_mode"] = values["enrolment_mode"]
    changes["payout_method"] = values["payout_method"]
    for field, key in (("levels", "levels"), ("upline_changes", "upline_changes_per_30_days")):
        if values[field].isdigit():
            changes[key] = int(values[field])
        else:
            errors[field] = _("Enter a whole number.")
    for field, key in (("min_withdrawal", "min_withdrawal_cents"), ("daily_limit", "daily_withdrawal_limit_cents")):
        try:
            changes[key] = yuan_to_cents(values[field])
        except ValueError:
            errors[field] = _("Enter an amount in yuan, e.g. 10 or 10.50.")
    try:
        changes["grades"] = _parse_grades(values["grades"])
    except ValueError:
        errors["grades"] = _("One grade per line: code, name, settled sales in yuan, team size.")
    if not errors:
        try:
            service.update_programme(session, actor=principal, **changes)
            return _back(f"{BASE}", _("Saved."))
        except AppError as exc:
            fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
            mapping = {"min_withdrawal_cents": "min_withdrawal", "daily_withdrawal_limit_cents": "daily_limit",
                       "upline_changes_per_30_days": "upline_changes"}
            if fields:
                for k, v in fields.items():
                    errors[mapping.get(k, k)] = exc.translated() if k == "levels" else str(v)
            else:
                errors["form"] = exc.translated()
    session.rollback()
    return _programme_page(request, session, principal, form=values, errors=errors, status_code=422)


# ---------------------------------------------------------------- console: rules


@router.get(f"{BASE}/rules")
def rules_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    return _rules_page(request, session, principal)


def _rules_page(request: Request, session: Any, principal: Any, *, form: dict[str, str] | None = None,
                error: str | None = None, status_code: int = 200) -> Response:
    ctx = _ctx(session, principal, "rules", active=service.list_rules(session, merchant_id=principal.merchant_id),
               draft=service.list_rules(session, merchant_id=principal.merchant_id, status="draft"),
               precedence=service.SCOPE_ORDER, form=form or {"status": "active", "level": "1", "kind": "bps"},
               **_flash(request))
    if error:
        ctx.update(flash=error, flash_kind="error")
    return render(request, "distribution/console_rules.html", ctx, status_code=status_code)


@router.post(f"{BASE}/rules")
def rule_add(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    raw = {k: form_str(form, k, max_length=40) for k in ("audience", "scope", "scope_id", "grade", "level", "kind",
                                                         "value", "status")}
    try:
        data: dict[str, Any] = {"audience": raw["audience"] or "distributor", "scope": raw["scope"],
                                "grade": raw["grade"] or None, "kind": raw["kind"],
                                "level": int(raw["level"]) if raw["level"].isdigit() else 0,
                                "scope_id": int(raw["scope_id"]) if raw["scope_id"].isdigit() else None}
        # A percentage (10 or 7.5) is hundredths of it in bps, as yuan are hundredths in cents.
        data["value"] = yuan_to_cents(raw["value"])
        status = raw["status"] if raw["status"] in ("active", "draft") else "active"
        programme = service.get_programme(session, merchant_id=principal.merchant_id)
        service.create_rule(session, actor=principal, data=data, status=status,
                            grade_codes=[g["code"] for g in service.grades(programme)])
    except ValueError:
        return _rules_page(request, session, principal, form=raw, status_code=422,
                           error=_("Enter the rate as a percentage (e.g. 10 or 7.5) or the amount in yuan."))
    except AppError as exc:
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        message = "; ".join(str(v) for v in fields.values()) if fields else exc.translated()
        return _rules_page(request, session, principal, form=raw, error=message, status_code=422)
    return _back(f"{BASE}/rules", _("Rule added."))


@router.post(f"{BASE}/rules/{{rule_id}}/delete")
def rule_delete(rule_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.delete_rule(session, actor=principal, rule_id=rule_id)
    return _back(f"{BASE}/rules", _("Rule removed."))


@router.post(f"{BASE}/rules/draft")
def rules_draft(session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.copy_active_to_draft(session, actor=principal)
    return _back(f"{BASE}/rules", _("A draft was started from the rules in force."))


@router.post(f"{BASE}/rules/publish")
def rules_publish(session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        service.publish_draft(session, actor=principal)
    except AppError as exc:
        return _back(f"{BASE}/rules", exc.translated(), kind="error")
    return _back(f"{BASE}/rules", _("The draft is now in force."))


# ---------------------------------------------------------------- console: distributors


@router.get(f"{BASE}/distributors")
def distributors_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    params = request.query_params
    raw = {k: (params.get(k) or "").strip()[:40] for k in ("status", "grade", "q")}
    f = service.DistributorFilter(status=raw["status"] or None, grade=raw["grade"] or None, q=raw["q"] or None)
    try:
        page = service.list_distributors(session, merchant_id=principal.merchant_id, filters=f,
                                         cursor=_cursor(params), limit=50)
    except AppError:
        page = service.list_distributors(session, merchant_id=principal.merchant_id, filters=f, limit=50)
    ids = [d.id for d in page.items]
    balances = service.accounts.balances_of(session, merchant_id=principal.merchant_id, owner_type="distributor",
                                            owner_ids=ids)
    uplines = service.by_ids(session, merchant_id=principal.merchant_id, ids=[d.upline_id for d in page.items])
    next_url = f"{BASE}/distributors?" + urlencode({**{k: v for k, v in raw.items() if v},
                                                     "cursor": page.next_cursor}) if page.next_cursor else None
    return render(request, "distribution/console_distributors.html", _ctx(
        session, principal, "distributors", distributors=page.items, balances=balances, uplines=uplines, raw=raw,
        next_url=next_url, statuses=list(LABELS["distributor"]), **_flash(request)))


@router.get(f"{BASE}/distributors/{{distributor_id}}")
def distributor_page(distributor_id: Id, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    d = service.get_distributor(session, merchant_id=principal.merchant_id, distributor_id=distributor_id)
    upline = service.by_ids(session, merchant_id=principal.merchant_id, ids=[d.upline_id]).get(d.upline_id)
    return render(request, "distribution/console_distributor.html", _ctx(
        session, principal, "distributors", d=d, upline=upline,
        balances=service.accounts.balances(session, merchant_id=d.merchant_id, owner_type="distributor", owner_id=d.id),
        team=service.team(session, row=d),
        commissions=service.list_commissions(session, merchant_id=d.merchant_id, filters=service.CommissionFilter(
            beneficiary_type="distributor", beneficiary_id=d.id), limit=20).items,
        withdrawals=service.list_withdrawals(session, merchant_id=d.merchant_id,
                                             filters=service.WithdrawalFilter(distributor_id=d.id), limit=20).items,
        history=service.upline_history(session, merchant_id=d.merchant_id, distributor_id=d.id),
        grades=service.grades(service.get_programme(session, merchant_id=d.merchant_id)), **_flash(request)))


def _distributor_action(distributor_id: int, fn: Any) -> Response:
    back = f"{BASE}/distributors/{distributor_id}"
    try:
        fn()
    except NotFound:
        raise
    except AppError as exc:
        return _back(back, exc.translated(), kind="error")
    return _back(back, _("Saved."))


@router.post(f"{BASE}/distributors/{{distributor_id}}/approve")
def distributor_approve(distributor_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _distributor_action(distributor_id, lambda: service.review(
        session, actor=principal, distributor_id=distributor_id, approve=form_str(form, "decision") != "reject",
        reason=form_str(form, "reason", max_length=200)))


@router.post(f"{BASE}/distributors/{{distributor_id}}/status")
def distributor_status(distributor_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _distributor_action(distributor_id, lambda: service.change_status(
        session, actor=principal, distributor_id=distributor_id, status=form_str(form, "status", max_length=20),
        reason=form_str(form, "reason", max_length=200)))


@router.post(f"{BASE}/distributors/{{distributor_id}}/grade")
def distributor_grade(distributor_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _distributor_action(distributor_id, lambda: service.set_grade(
        session, actor=principal, distributor_id=distributor_id, grade=form_str(form, "grade", max_length=20)))


# ---------------------------------------------------------------- console: commissions


@router.get(f"{BASE}/commissions")
def commissions_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    params = request.query_params
    raw = {k: (params.get(k) or "").strip()[:20] for k in ("status", "level", "beneficiary_type", "beneficiary_id",
                                                           "order_id")}
    f = service.CommissionFilter(
        status=raw["status"] or None, level=_int_param(params, "level"),
        beneficiary_type=raw["beneficiary_type"] if raw["beneficiary_type"] in ("distributor", "guide") else None,
        beneficiary_id=_int_param(params, "beneficiary_id"), order_id=_int_param(params, "order_id"))
    try:
        page = service.list_commissions(session, merchant_id=principal.merchant_id, filters=f,
                                        cursor=_cursor(params), limit=50)
    except AppError:
        page = service.list_commissions(session, merchant_id=principal.merchant_id, filters=f, limit=50)
    names = service.by_ids(session, merchant_id=principal.merchant_id,
                           ids=[c.beneficiary_id for c in page.items if c.beneficiary_type == "distributor"])
    next_url = f"{BASE}/commissions?" + urlencode({**{k: v for k, v in raw.items() if v},
                                                    "cursor": page.next_cursor}) if page.next_cursor else None
    return render(request, "distribution/console_commissions.html", _ctx(
        session, principal, "commissions", commissions=page.items, names=names, raw=raw, next_url=next_url,
        statuses=list(LABELS["commission"])))


# ---------------------------------------------------------------- console: withdrawals


@router.get(f"{BASE}/withdrawals")
def withdrawals_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    params = request.query_params
    status = (params.get("status") if "status" in params else "requested") or ""
    status = status if status in LABELS["withdrawal"] else ""
    try:
        page = service.list_withdrawals(session, merchant_id=principal.merchant_id,
                                        filters=service.WithdrawalFilter(status=status or None),
                                        cursor=_cursor(params), limit=50)
    except AppError:
        page = service.list_withdrawals(session, merchant_id=principal.merchant_id,
                                        filters=service.WithdrawalFilter(status=status or None), limit=50)
    names = service.by_ids(session, merchant_id=principal.merchant_id, ids=[w.distributor_id for w in page.items])
    next_url = f"{BASE}/withdrawals?" + urlencode({"status": status, "cursor": page.next_cursor}) \
        if page.next_cursor else None
    return render(request, "distribution/console_withdrawals.html", _ctx(
        session, principal, "withdrawals", withdrawals=page.items, names=names, status=status, next_url=next_url,
        statuses=list(LABELS["withdrawal"]), **_flash(request)))


@router.post(f"{BASE}/withdrawals/{{withdrawal_id}}/approve")
def withdrawal_approve(withdrawal_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        w = service.approve(session, actor=principal, withdrawal_id=withdrawal_id)
    except NotFound:
        raise
    except AppError as exc:
        return _back(f"{BASE}/withdrawals", exc.translated(), kind="error")
    if w.status == "failed":
        return _back(f"{BASE}/withdrawals", _("The payout failed; the money went back to the balance."), kind="error")
    return _back(f"{BASE}/withdrawals", _("Approved."))


@router.post(f"{BASE}/withdrawals/{{withdrawal_id}}/reject")
def withdrawal_reject(withdrawal_id: Id, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        service.reject(session, actor=principal, withdrawal_id=withdrawal_id,
                       reason=form_str(form, "reason", max_length=200))
    except NotFound:
        raise
    except AppError as exc:
        return _back(f"{BASE}/withdrawals", exc.translated(), kind="error")
    return _back(f"{BASE}/withdrawals", _("Rejected; the money went back to the balance."))


# ---------------------------------------------------------------- console: leaderboard and simulator


@router.get(f"{BASE}/leaderboard")
def leaderboard_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    board = service.leaderboard(session, merchant_id=principal.merchant_id, limit=50)
    names = service.by_ids(session, merchant_id=principal.merchant_id, ids=[b["distributor_id"] for b in board])
    return render(request, "distribution/console_leaderboard.html", _ctx(session, principal, "leaderboard",
                                                                         board=board, names=names))


@router.get(f"{BASE}/simulator")
def simulator_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    days = _int_param(request.query_params, "days") or 30
    draft = service.list_rules(session, merchant_id=principal.merchant_id, status="draft")
    projection = service.simulate(session, merchant_id=principal.merchant_id, days=days) if draft else None
    return render(request, "distribution/console_simulator.html", _ctx(
        session, principal, "simulator", days=min(days, 365), draft=draft, projection=projection))


# ---------------------------------------------------------------- H5: distributor centre


def _shop_ctx(merchant: Any, **extra: Any) -> dict[str, Any]:
    return {"tab": "me", "labels": LABELS, "base": f"/shop/{merchant.slug}/distribution", **extra}


def _own(session: Any, customer: Any) -> Any:
    return service.of_customer(session, merchant_id=customer.merchant_id, customer_id=customer.customer_id)


@router.get("/shop/{m}/distribution")
def centre(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession) -> Response:
    d = _own(session, customer)
    programme = service.get_programme(session, merchant_id=merchant.id)
    invite = (request.query_params.get("invite") or "")[:16]
    if d is None or d.status in ("rejected",):
        inviter = service.by_invite_code(session, merchant_id=merchant.id, code=invite) if invite else None
        return render(request, "distribution/shop_join.html", _shop_ctx(
            merchant, d=d, programme=programme, invite=invite, inviter=inviter, **_flash(request)))
    balances = service.accounts.balances(session, merchant_id=merchant.id, owner_type="distributor", owner_id=d.id)
    return render(request, "distribution/shop_centre.html", _shop_ctx(
        merchant, d=d, programme=programme, balances=balances,
        grade_name=service.grade_names(programme).get(d.grade, d.grade), **_flash(request)))


@router.post("/shop/{m}/distribution/join")
def centre_join(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession,
                form: ShopForm) -> Response:
    base = f"/shop/{merchant.slug}/distribution"
    code = form_str(form, "invite_code", max_length=16)
    try:
        d = service.join(session, actor=customer, invite_code=code or None, note=form_str(form, "note", max_length=200))
    except AppError as exc:
        return _back(f"{base}?{urlencode({'invite': code})}" if code else base, exc.translated(), kind="error")
    return _back(base, _("Your application was received.") if d.status == "pending" else _("Welcome aboard!"))


def _require(session: Any, merchant: Any, customer: Any) -> Any:
    d = _own(session, customer)
    if d is None or d.status in ("pending", "rejected"):
        raise NotFound()
    return d


@router.get("/shop/{m}/distribution/team")
def centre_team(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession) -> Response:
    d = _require(session, merchant, customer)
    return render(request, "distribution/shop_team.html", _shop_ctx(merchant, d=d, team=service.team(session, row=d)))


@dataclasses.dataclass
class _MyCustomer:
    nickname: str
    orders: int
    commission_cents: int


def _bound_customers(session: Any, merchant_id: int, d: Any) -> list[int]:
    """Customers bound to this distributor under attribution's binding rules (newest first)."""
    page = ownership.bound_customers(session, merchant_id=merchant_id, referrer_customer_id=d.customer_id, limit=200)
    return [b.customer_id for b in page.items]


@router.get("/shop/{m}/distribution/customers")
def centre_customers(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer,
                     session: DbSession) -> Response:
    d = _require(session, merchant, customer)
    bought = {cid: (n, cents) for cid, n, cents in service.customers_of(session, merchant_id=merchant.id,
                                                                          distributor_id=d.id, limit=200)}
    bound = _bound_customers(session, merchant.id, d)
    ids = list(dict.fromkeys(bound + list(bought)))
    system = system_principal(merchant.id)
    rows = []
    for cid in ids[:200]:
        try:
            c = customers.get_customer(session, cid, actor=system)
        except AppError:
            continue
        n, cents = bought.get(cid, (0, 0))
        rows.append(_MyCustomer(nickname=c.nickname or _("Customer"), orders=n, commission_cents=cents))
    return render(request, "distribution/shop_customers.html", _shop_ctx(merchant, d=d, rows=rows))


@router.get("/shop/{m}/distribution/orders")
def centre_orders(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession) -> Response:
    d = _require(session, merchant, customer)
    try:
        page = service.list_commissions(session, merchant_id=merchant.id, filters=service.CommissionFilter(
            beneficiary_type="distributor", beneficiary_id=d.id), cursor=_cursor(request.query_params), limit=30)
    except AppError:
        page = service.list_commissions(session, merchant_id=merchant.id, filters=service.CommissionFilter(
            beneficiary_type="distributor", beneficiary_id=d.id), limit=30)
    next_url = f"/shop/{merchant.slug}/distribution/orders?cursor={page.next_cursor}" if page.next_cursor else None
    return render(request, "distribution/shop_orders.html", _shop_ctx(merchant, d=d, commissions=page.items,
                                                                       next_url=next_url))


@router.get("/shop/{m}/distribution/share")
def centre_share(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession) -> Response:
    d = _require(session, merchant, customer)
    invite_url = str(request.base_url).rstrip("/") + f"/shop/{merchant.slug}/distribution?invite={d.invite_code}"
    qr_svg = segno.make(invite_url, error="m").svg_inline(scale=5)
    return render(request, "distribution/shop_share.html", _shop_ctx(
        merchant, d=d, invite_url=invite_url, qr_svg=qr_svg, shop_url=f"/shop/{merchant.slug}/"))


def _withdraw_page(request: Request, merchant: Any, session: Any, d: Any, *, amount: str = "",
                   error: str | None = None, status_code: int = 200) -> Response:
    programme = service.get_programme(session, merchant_id=merchant.id)
    balances = service.accounts.balances(session, merchant_id=merchant.id, owner_type="distributor", owner_id=d.id)
    from siyu.core import clock

    used = service.withdrawn_today(session, merchant_id=merchant.id, distributor_id=d.id, day=clock.today_local())
    history = service.list_withdrawals(session, merchant_id=merchant.id,
                                       filters=service.WithdrawalFilter(distributor_id=d.id), limit=30).items
    return render(request, "distribution/shop_withdraw.html", _shop_ctx(
        merchant, d=d, programme=programme, balances=balances, amount=amount, error=error, history=history,
        left_today=max(0, programme.daily_withdrawal_limit_cents - used), **_flash(request)), status_code=status_code)


@router.get("/shop/{m}/distribution/withdraw")
def centre_withdraw(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer,
                    session: DbSession) -> Response:
    return _withdraw_page(request, merchant, session, _require(session, merchant, customer))


@router.post("/shop/{m}/distribution/withdraw")
def centre_withdraw_post(request: Request, merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession,
                         form: ShopForm) -> Response:
    d = _require(session, merchant, customer)
    amount = form_str(form, "amount", max_length=20)
    try:
        cents = yuan_to_cents(amount)
    except ValueError:
        return _withdraw_page(request, merchant, session, d, amount=amount, status_code=422,
                              error=_("Enter an amount in yuan, e.g. 10 or 10.50."))
    try:
        service.request_withdrawal(session, actor=customer, amount_cents=cents)
    except AppError as exc:
        return _withdraw_page(request, merchant, session, d, amount=amount, error=exc.translated(),
                              status_code=exc.status_code)
    return _back(f"/shop/{merchant.slug}/distribution/withdraw", _("Withdrawal requested."))


@router.get("/shop/{m}/distribution/withdrawals")
def centre_withdrawals(merchant: ShopMerchant, customer: ShopPageCustomer, session: DbSession) -> Response:
    _require(session, merchant, customer)
    return RedirectResponse(f"/shop/{merchant.slug}/distribution/withdraw#history", status_code=303)
