"""promotions: payment marketing (支付营销): what the payment result page offers — logic.

Rules:
- Rules are tried by priority (lower first, then id); the first running rule that matches the paid order is
  its offer: amount paid within [min, max], customer type (new = this is the customer's first paid order,
  returning = not), member tier and store when set. Orders of another kind than goods get no offer.
- Showing an offer records one show row per order (the page shown again counts once, and keeps its offer).
- A coupon or gift pack is claimed once per show (a conditional UPDATE stamps `claimed_at`), issuing each template
  with channel "payment"; a link is followed through a redirect route that stamps `clicked_at` once.
- A show converts when the same customer pays another goods order within the rule's `conversion_days`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound
from siyu.customers import service as customers
from siyu.membership.service import members as members_service
from siyu.membership.service import tiers as tiers_service
from siyu.promotions.models.payment_offers import PaymentOfferRule, PaymentOfferShow
from siyu.promotions.service.common import count_running
from siyu.promotions.service.split_coupons import (
    RUNNING,
    RuleBook,
    check_template,
    fields_error,
    issue,
    require_customer,
    running,
    valid_id,
)
from siyu.promotions.states.payment_offers import CampaignStatus

CUSTOMER_TYPES = ("any", "new", "returning")
OFFER_KINDS = ("coupon", "gift_pack", "link")
MAX_PACK = 5


def safe_link(url: str) -> bool:
    """Links stay inside the site: a path, never another host."""
    return isinstance(url, str) and url.startswith("/") and not url.startswith("//") and "\\" not in url \
        and len(url) <= 300 and all(32 < ord(c) < 127 for c in url)


@dataclasses.dataclass
class OfferRuleIn:
    name: str
    offer_kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    priority: int = 100
    min_paid_cents: int = 0
    max_paid_cents: int | None = None
    customer_type: str = "any"
    tier_id: int | None = None
    store_id: int | None = None
    template_ids: list[int] = dataclasses.field(default_factory=list)
    link_url: str = ""
    title: str = ""
    conversion_days: int = 7


def _validate(session: Session, merchant_id: int, data: OfferRuleIn) -> None:
    errors: dict[str, str] = {}
    if not (data.name or "").strip() or len(data.name.strip()) > 60:
        errors["name"] = "Give the rule a name (at most 60 characters)."
    if len(data.title or "") > 60:
        errors["title"] = "At most 60 characters."
    if not isinstance(data.priority, int) or not 0 <= data.priority <= 10_000:
        errors["priority"] = "Priority is 0 to 10000."
    if not isinstance(data.min_paid_cents, int) or not 0 <= data.min_paid_cents <= 10**10:
        errors["min_paid_cents"] = "Enter an amount."
    if data.max_paid_cents is not None and (not isinstance(data.max_paid_cents, int)
                                            or not data.min_paid_cents <= data.max_paid_cents <= 10**10):
        errors["max_paid_cents"] = "The most must be at least the least."
    if data.customer_type not in CUSTOMER_TYPES:
        errors["customer_type"] = "Choose who sees it."
    for f in ("tier_id", "store_id"):
        value = getattr(data, f)
        if value is not None and not valid_id(value):
            errors[f] = "Not found."
    if data.offer_kind not in OFFER_KINDS:
        errors["offer_kind"] = "Choose what to offer."
    elif data.offer_kind == "link":
        if not safe_link(data.link_url):
            errors["link_url"] = "A link is a path of this shop, starting with /."
    else:
        ids = data.template_ids if isinstance(data.template_ids, list) else []
        want = 1 if data.offer_kind == "coupon" else None
        if not ids or len(ids) > MAX_PACK or (want and len(ids) != want) or len(set(map(str, ids))) != len(ids):
            errors["template_ids"] = "Choose one coupon (a gift pack: up to five different coupons)."
    if not isinstance(data.conversion_days, int) or not 1 <= data.conversion_days <= 90:
        errors["conversion_days"] = "1 to 90 days."
    if data.ends_at <= data.starts_at:
        errors["ends_at"] = "The end must be after the start."
    if errors:
        raise fields_error(errors)
    if data.offer_kind != "link":
        for tid in data.template_ids:
            check_template(session, merchant_id=merchant_id, template_id=tid, field="template_ids")
    if data.tier_id is not None:
        try:
            tiers_service.get_tier(session, data.tier_id, merchant_id=merchant_id)
        except NotFound as exc:
            raise fields_error({"tier_id": "Not found."}) from exc


def _apply(row: PaymentOfferRule, data: OfferRuleIn) -> None:
    for key, value in dataclasses.asdict(data).items():
        setattr(row, key, value)
    row.name = data.name.strip()
    row.template_ids = [] if data.offer_kind == "link" else list(data.template_ids)
    row.link_url = data.link_url if data.offer_kind == "link" else ""


RULES = RuleBook(PaymentOfferRule, validate=_validate, apply=_apply)
create_rule = RULES.create
update_rule = RULES.update
change_status = RULES.change_status
get_rule = RULES.get
list_rules = RULES.list


def figures(session: Session, *, merchant_id: int, rule_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per rule: shown, claimed, clicked, converted."""
    out = {rid: {"shown": 0, "claimed": 0, "clicked": 0, "converted": 0} for rid in rule_ids}
    if not rule_ids:
        return out
    S = PaymentOfferShow
    rows = session.execute(select(
        S.rule_id, func.count(), func.sum(case((S.claimed_at.is_not(None), 1), else_=0)),
        func.sum(case((S.clicked_at.is_not(None), 1), else_=0)),
        func.sum(case((S.converted_order_id.is_not(None), 1), else_=0)))
        .where(S.merchant_id == merchant_id, S.rule_id.in_(rule_ids)).group_by(S.rule_id))
    for rid, shown, claimed, clicked, converted in rows:
        out[rid] = {"shown": int(shown), "claimed": int(claimed or 0), "clicked": int(clicked or 0),
                    "converted": int(converted or 0)}
    return out


# ---------------------------------------------------------------- matching and showing


@dataclasses.dataclass(frozen=True)
class Offer:
    rule: PaymentOfferRule
    show: PaymentOfferShow


def _is_new(session: Session, order: Any) -> bool:
    found = customers.customers_by_ids(session, actor=system_principal(order.merchant_id), ids=[order.customer_id])
    first = found[0].first_purchase_at if found else None
    return first is None or (order.paid_at is not None and first >= order.paid_at)


def _tier_id(session: Session, merchant_id: int, customer_id: int) -> int | None:
    member = members_service.member_of(session, merchant_id=merchant_id, customer_id=customer_id)
    if member is None:
        return None
    tier = tiers_service.effective_tier(session, member)
    return tier.id if tier is not None else None


def matching_rule(session: Session, *, order: Any, now: dt.datetime | None = None) -> PaymentOfferRule | None:
    """The first running rule (by priority) that matches this paid goods order."""
    if order.paid_at is None or getattr(order, "kind", "goods") != "goods":
        return None
    now = now or clock.now()
    rules = list(session.scalars(select(PaymentOfferRule).where(
        PaymentOfferRule.merchant_id == order.merchant_id, PaymentOfferRule.status.in_(RUNNING),
        PaymentOfferRule.starts_at <= now, PaymentOfferRule.ends_at > now)
        .order_by(PaymentOfferRule.priority, PaymentOfferRule.id).limit(50)))
    if not rules:
        return None
    facts: dict[str, Any] = {}
    for rule in rules:
        if order.paid_cents < rule.min_paid_cents:
            continue
        if rule.max_paid_cents is not None and order.paid_cents > rule.max_paid_cents:
            continue
        if rule.store_id is not None and order.store_id != rule.store_id:
            continue
        if rule.customer_type != "any":
            if "new" not in facts:
                facts["new"] = _is_new(session, order)
            if facts["new"] != (rule.customer_type == "new"):
                continue
        if rule.tier_id is not None:
            if "tier" not in facts:
                facts["tier"] = _tier_id(session, order.merchant_id, order.customer_id)
            if facts["tier"] != rule.tier_id:
                continue
        return rule
    return None


def show_for_order(session: Session, *, order: Any) -> Offer | None:
    """The offer of a paid order, recording its show once: the first offer an order was shown stays its offer
    (a rule edited or added later does not swap it)."""
    S = PaymentOfferShow
    shown = session.scalars(select(S).where(S.merchant_id == order.merchant_id, S.order_id == order.id)
                            .order_by(S.id).limit(1)).first()
    if shown is not None:
        return Offer(rule=get_rule(session, shown.rule_id, merchant_id=order.merchant_id), show=shown)
    rule = matching_rule(session, order=order)
    if rule is None:
        return None
    try:
        with session.begin_nested():
            show = S(merchant_id=order.merchant_id, rule_id=rule.id, order_id=order.id, customer_id=order.customer_id,
                     shown_at=clock.now(), coupon_ids=[])
            session.add(show)
            session.flush()
    except IntegrityError:  # the same page, shown twice at once: one show per order
        show = session.scalars(select(S).where(S.order_id == order.id)).one()
        rule = get_rule(session, show.rule_id, merchant_id=order.merchant_id)
    return Offer(rule=rule, show=show)


def offer_of_order(session: Session, *, actor: Principal, order_id: int) -> Offer | None:
    """The signed-in customer's paid order's offer (shop API)."""
    from siyu.orders import service as orders

    require_customer(actor)
    order = orders.get_order(session, order_id, actor=actor)
    return show_for_order(session, order=order)


def own_show(session: Session, *, actor: Principal, show_id: int) -> PaymentOfferShow:
    customer_id = require_customer(actor)
    show = session.get(PaymentOfferShow, show_id) if valid_id(show_id) else None
    if show is None or show.merchant_id != actor.merchant_id or show.customer_id != customer_id:
        raise NotFound()
    return show


def claim(session: Session, *, actor: Principal, show_id: int) -> PaymentOfferShow:
    """Claim the coupon (or every coupon of the gift pack) of a shown offer, once."""
    show = own_show(session, actor=actor, show_id=show_id)
    rule = get_rule(session, show.rule_id, merchant_id=show.merchant_id)
    if rule.offer_kind == "link":
        raise Conflict("This offer is a link, not a coupon.", code="offer_not_claimable")
    if show.claimed_at is not None:
        raise Conflict("You have already claimed this offer.", code="offer_already_claimed")
    if not running(rule.status, rule.starts_at, rule.ends_at):
        raise Conflict("This offer has ended.", code="offer_ended")
    now = clock.now()
    # One savepoint: a coupon refused (sold out …) leaves the show unclaimed and no coupon of the pack issued.
    with session.begin_nested():
        taken = session.execute(update(PaymentOfferShow).where(PaymentOfferShow.id == show.id,
                                                               PaymentOfferShow.claimed_at.is_(None))
                                .values(claimed_at=now).execution_options(synchronize_session=False)).rowcount
        if not taken:
            raise Conflict("You have already claimed this offer.", code="offer_already_claimed")
        ids = [issue(session, merchant_id=show.merchant_id, template_id=int(tid), customer_id=show.customer_id,
                     channel="payment", source_ref=f"payment_offer:{show.id}:{tid}") for tid in rule.template_ids]
    session.refresh(show)
    show.coupon_ids = ids
    session.flush()
    return show


def click(session: Session, *, merchant_id: int, show_id: int, customer_id: int | None) -> str:
    """Follow an offer's link: the first click is stamped; the link's path."""
    show = session.get(PaymentOfferShow, show_id) if valid_id(show_id) else None
    if show is None or show.merchant_id != merchant_id:
        raise NotFound()
    rule = get_rule(session, show.rule_id, merchant_id=merchant_id)
    if rule.offer_kind != "link" or not safe_link(rule.link_url):
        raise NotFound()
    if customer_id == show.customer_id:
        session.execute(update(PaymentOfferShow).where(PaymentOfferShow.id == show.id,
                                                       PaymentOfferShow.clicked_at.is_(None))
                        .values(clicked_at=clock.now()).execution_options(synchronize_session=False))
    return rule.link_url


def record_conversion(session: Session, *, merchant_id: int, customer_id: int, order_id: int,
                      paid_at: dt.datetime) -> int:
    """A paid goods order converts the customer's earlier shows still within their rule's window (each show
    once). The number of shows converted."""
    # Core statements on the session's connection: this runs on every paid order, and most customers
    # have no show to convert (one indexed read).
    S, R = PaymentOfferShow.__table__, PaymentOfferRule.__table__
    session.flush()
    connection = session.connection()
    candidates = connection.execute(select(S.c.id, S.c.shown_at, R.c.conversion_days).join(R, R.c.id == S.c.rule_id)
                                    .where(S.c.merchant_id == merchant_id, S.c.customer_id == customer_id,
                                           S.c.converted_order_id.is_(None), S.c.order_id != order_id,
                                           S.c.shown_at < paid_at, S.c.shown_at >= paid_at - dt.timedelta(days=90))
                                    ).all()
    done = 0
    for show_id, shown_at, days in candidates:
        if shown_at + dt.timedelta(days=days) < paid_at:
            continue
        done += connection.execute(update(S).where(S.c.id == show_id, S.c.converted_order_id.is_(None))
                                   .values(converted_order_id=order_id, converted_at=paid_at)).rowcount or 0
    return done


def end_due(session: Session, now: dt.datetime) -> int:
    result = session.execute(update(PaymentOfferRule).where(PaymentOfferRule.status.in_(RUNNING),
                                                            PaymentOfferRule.ends_at <= now)
                             .values(status=CampaignStatus.ENDED.value).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    session.execute(update(PaymentOfferShow).where(PaymentOfferShow.merchant_id == merchant_id,
                                                   PaymentOfferShow.customer_id == source_id)
                    .values(customer_id=target_id).execution_options(synchronize_session=False))


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, PaymentOfferRule, merchant_id=merchant_id, statuses=RUNNING)
