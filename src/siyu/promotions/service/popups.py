"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — logic.

Rules:
- A running rule shows on its pages (home, product, all) to its audience: new visitor (not signed in), new
  customer (signed in, no paid order), returning (a paid order), dormant (last paid order N days ago or more),
  a member tier, a customer tag, or everyone.
- At most one pop-up per page view: the first rule by priority whose audience matches and whose caps allow
  (impressions per day, Asia/Shanghai, and in total, per customer or per visitor cookie), and that the person
  did not dismiss today. Showing it records an impression row.
- The merchant without a running rule costs one indexed query per page, nothing more.
- A coupon pop-up is claimed once per customer (channel "campaign"); a link pop-up is followed through a redirect
  that records the click. A paid goods order within `conversion_days` after an impression or claim of a rule is
  that rule's conversion (once per rule and order). A visitor's rows become the customer's at sign-in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound
from siyu.customers import service as customers
from siyu.promotions.models.popups import PopupEvent, PopupRule
from siyu.promotions.service.common import count_running
from siyu.promotions.service.payment_offers import _tier_id, safe_link
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
from siyu.promotions.states.popups import CampaignStatus

AUDIENCES = ("everyone", "new_visitor", "new_customer", "returning", "dormant", "tier", "tag")
PAGES = ("all", "home", "product")
CONTENT_KINDS = ("coupon", "link")
EVENT_KINDS = ("impression", "dismiss", "click", "claim", "conversion")


@dataclasses.dataclass
class PopupRuleIn:
    name: str
    audience: str
    content_kind: str
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    priority: int = 100
    dormant_days: int = 0
    tier_id: int | None = None
    tag_id: int | None = None
    template_id: int | None = None
    link_url: str = ""
    body: str = ""
    image_url: str = ""
    pages: str = "all"
    cap_per_day: int = 1
    cap_total: int = 3
    conversion_days: int = 7


def _validate(session: Session, merchant_id: int, data: PopupRuleIn) -> None:
    errors: dict[str, str] = {}
    if not (data.name or "").strip() or len(data.name.strip()) > 60:
        errors["name"] = "Give the rule a name (at most 60 characters)."
    if not (data.title or "").strip() or len(data.title.strip()) > 60:
        errors["title"] = "Give the pop-up a title (at most 60 characters)."
    if len(data.body or "") > 200:
        errors["body"] = "At most 200 characters."
    if data.image_url and not (safe_link(data.image_url) or (data.image_url.startswith("https://")
                                                             and len(data.image_url) <= 300)):
        errors["image_url"] = "An image is a path of this site or an https address."
    if not isinstance(data.priority, int) or not 0 <= data.priority <= 10_000:
        errors["priority"] = "Priority is 0 to 10000."
    if data.audience not in AUDIENCES:
        errors["audience"] = "Choose who sees it."
    elif data.audience == "dormant" and (not isinstance(data.dormant_days, int) or not 1 <= data.dormant_days <= 3650):
        errors["dormant_days"] = "1 to 3650 days."
    elif data.audience == "tier" and not valid_id(data.tier_id):
        errors["tier_id"] = "Choose a tier."
    elif data.audience == "tag" and not valid_id(data.tag_id):
        errors["tag_id"] = "Choose a tag."
    if data.pages not in PAGES:
        errors["pages"] = "Choose the pages."
    if data.content_kind not in CONTENT_KINDS:
        errors["content_kind"] = "Choose what it offers."
    elif data.content_kind == "link" and not safe_link(data.link_url):
        errors["link_url"] = "A link is a path of this shop, starting with /."
    elif data.content_kind == "coupon" and data.audience == "new_visitor":
        errors["content_kind"] = "A visitor must sign in to claim a coupon: offer it to customers."
    for f, high in (("cap_per_day", 100), ("cap_total", 10_000), ("conversion_days", 90)):
        value = getattr(data, f)
        if not isinstance(value, int) or not 1 <= value <= high:
            errors[f] = "Out of range."
    if data.ends_at <= data.starts_at:
        errors["ends_at"] = "The end must be after the start."
    if errors:
        raise fields_error(errors)
    if data.content_kind == "coupon":
        check_template(session, merchant_id=merchant_id, template_id=data.template_id)
    actor = system_principal(merchant_id)
    try:
        if data.audience == "tier":
            from siyu.membership.service import tiers

            tiers.get_tier(session, data.tier_id, merchant_id=merchant_id)  # type: ignore[arg-type]
        if data.audience == "tag":
            customers.get_tag(session, data.tag_id, actor=actor)  # type: ignore[arg-type]
    except NotFound as exc:
        raise fields_error({"tier_id" if data.audience == "tier" else "tag_id": "Not found."}) from exc


def _apply(row: PopupRule, data: PopupRuleIn) -> None:
    for key, value in dataclasses.asdict(data).items():
        setattr(row, key, value)
    row.name, row.title, row.body = data.name.strip(), data.title.strip(), (data.body or "").strip()
    if data.content_kind == "link":
        row.template_id = None
    else:
        row.link_url = ""
    if data.audience != "tier":
        row.tier_id = None
    if data.audience != "tag":
        row.tag_id = None


RULES = RuleBook(PopupRule, validate=_validate, apply=_apply)
create_rule = RULES.create
update_rule = RULES.update
change_status = RULES.change_status
get_rule = RULES.get
list_rules = RULES.list


def figures(session: Session, *, merchant_id: int, rule_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per rule: impressions, dismissals, clicks, claims, conversions, and the people reached."""
    out = {rid: {k: 0 for k in (*EVENT_KINDS, "reached")} for rid in rule_ids}
    if not rule_ids:
        return out
    E = PopupEvent
    for rid, kind, n in session.execute(select(E.rule_id, E.kind, func.count()).where(
            E.merchant_id == merchant_id, E.rule_id.in_(rule_ids)).group_by(E.rule_id, E.kind)):
        out[rid][kind] = int(n)
    anonymous = case((E.customer_id.is_(None), E.visitor_id), else_=None)
    for rid, people, visitors in session.execute(
            select(E.rule_id, func.count(func.distinct(E.customer_id)), func.count(func.distinct(anonymous)))
            .where(E.merchant_id == merchant_id, E.rule_id.in_(rule_ids), E.kind == "impression")
            .group_by(E.rule_id)):
        out[rid]["reached"] = int(people) + int(visitors)
    return out


# ---------------------------------------------------------------- choosing and showing


def live_rules(session: Session, *, merchant_id: int, now: dt.datetime) -> list[PopupRule]:
    """The one indexed query every H5 page pays."""
    return list(session.scalars(select(PopupRule).where(
        PopupRule.merchant_id == merchant_id, PopupRule.status.in_(RUNNING), PopupRule.ends_at > now,
        PopupRule.starts_at <= now).order_by(PopupRule.priority, PopupRule.id).limit(20)))


def _person(customer_id: int | None, visitor_id: str | None) -> Any:
    if customer_id:
        return PopupEvent.customer_id == customer_id
    return PopupEvent.visitor_id == visitor_id


def _audience_ok(session: Session, rule: PopupRule, customer_id: int | None, facts: dict[str, Any],
                 now: dt.datetime) -> bool:
    if rule.audience == "everyone":
        return True
    if rule.audience == "new_visitor":
        return customer_id is None
    if customer_id is None:
        return False
    if "customer" not in facts:
        found = customers.customers_by_ids(session, actor=system_principal(rule.merchant_id), ids=[customer_id])
        facts["customer"] = found[0] if found else None
    c = facts["customer"]
    if c is None:
        return False
    if rule.audience == "new_customer":
        return not c.paid_orders
    if rule.audience == "returning":
        return bool(c.paid_orders)
    if rule.audience == "dormant":
        return c.last_purchase_at is not None and c.last_purchase_at <= now - dt.timedelta(days=rule.dormant_days)
    if rule.audience == "tier":
        if "tier" not in facts:
            facts["tier"] = _tier_id(session, rule.merchant_id, customer_id)
        return facts["tier"] == rule.tier_id
    if rule.audience == "tag":
        if "tags" not in facts:
            tags = customers.tags_of(session, merchant_id=rule.merchant_id, customer_ids=[customer_id])
            facts["tags"] = {t.id for t in tags.get(customer_id, [])}
        return rule.tag_id in facts["tags"]
    return False


def choose(session: Session, *, merchant_id: int, customer_id: int | None, visitor_id: str | None,
           page: str, now: dt.datetime | None = None, rules: list[PopupRule] | None = None) -> PopupRule | None:
    """The pop-up to show on this page view, without recording it."""
    now = now or clock.now()
    rules = live_rules(session, merchant_id=merchant_id, now=now) if rules is None else rules
    rules = [r for r in rules if r.pages == "all" or r.pages == page]
    if not rules:
        return None
    facts: dict[str, Any] = {}
    rules = [r for r in rules if _audience_ok(session, r, customer_id, facts, now)]
    if not rules:
        return None
    if not customer_id and not visitor_id:
        return rules[0]  # nobody to count against (the beacon sets the visitor cookie on the first view)
    day_start, _ = clock.local_day_bounds(clock.local(now).date())  # type: ignore[union-attr]
    E = PopupEvent
    today = E.at >= day_start
    counts = {rid: (int(total or 0), int(day or 0), int(dismissed or 0)) for rid, total, day, dismissed in session.execute(
        select(E.rule_id, func.sum(case((E.kind == "impression", 1), else_=0)),
               func.sum(case((and_(E.kind == "impression", today), 1), else_=0)),
               func.sum(case((and_(E.kind == "dismiss", today), 1), else_=0)))
        .where(E.merchant_id == merchant_id, _person(customer_id, visitor_id),
               E.rule_id.in_([r.id for r in rules]), E.kind.in_(("impression", "dismiss")))
        .group_by(E.rule_id))}
    for rule in rules:
        total, day, dismissed = counts.get(rule.id, (0, 0, 0))
        if total < rule.cap_total and day < rule.cap_per_day and not dismissed:
            return rule
    return None


def record(session: Session, *, rule: PopupRule, kind: str, customer_id: int | None, visitor_id: str | None,
           order_id: int | None = None, at: dt.datetime | None = None) -> PopupEvent:
    event = PopupEvent(merchant_id=rule.merchant_id, rule_id=rule.id, kind=kind, customer_id=customer_id,
                       visitor_id=visitor_id, order_id=order_id, detail={}, at=at or clock.now())
    session.add(event)
    session.flush()
    return event


def next_popup(session: Session, *, merchant_id: int, customer_id: int | None, visitor_id: str | None,
               page: str = "other", rules: list[PopupRule] | None = None) -> PopupRule | None:
    """Choose this page view's pop-up and record its impression."""
    rule = choose(session, merchant_id=merchant_id, customer_id=customer_id, visitor_id=visitor_id, page=page,
                  rules=rules)
    if rule is not None:
        record(session, rule=rule, kind="impression", customer_id=customer_id, visitor_id=visitor_id)
    return rule


def _shown_rule(session: Session, merchant_id: int, rule_id: int) -> PopupRule:
    rule = get_rule(session, rule_id, merchant_id=merchant_id)
    if rule.status == CampaignStatus.DRAFT.value:
        raise NotFound()
    return rule


def dismiss(session: Session, *, merchant_id: int, rule_id: int, customer_id: int | None,
            visitor_id: str | None) -> None:
    rule = _shown_rule(session, merchant_id, rule_id)
    if customer_id or visitor_id:
        record(session, rule=rule, kind="dismiss", customer_id=customer_id, visitor_id=visitor_id)


def click(session: Session, *, merchant_id: int, rule_id: int, customer_id: int | None, visitor_id: str | None) -> str:
    """Follow a link pop-up; the path it leads to."""
    rule = _shown_rule(session, merchant_id, rule_id)
    if rule.content_kind != "link" or not safe_link(rule.link_url):
        raise NotFound()
    record(session, rule=rule, kind="click", customer_id=customer_id, visitor_id=visitor_id)
    return rule.link_url


def claim(session: Session, *, actor: Principal, rule_id: int) -> int:
    """The signed-in customer claims a coupon pop-up's coupon, once per rule; the coupon id."""
    customer_id = require_customer(actor)
    rule = _shown_rule(session, actor.merchant_id, rule_id)
    if rule.content_kind != "coupon" or rule.template_id is None:
        raise Conflict("This pop-up has no coupon.", code="popup_not_claimable")
    if not running(rule.status, rule.starts_at, rule.ends_at):
        raise Conflict("This offer has ended.", code="offer_ended")
    E = PopupEvent
    key = f"claim:{rule.id}:{customer_id}"
    if session.scalar(select(E.id).where(E.claim_key == key)) is not None:
        raise Conflict("You have already claimed this offer.", code="offer_already_claimed")
    try:
        # One savepoint: the claim row (unique key: a racing second claim fails here) and the coupon, or neither.
        with session.begin_nested():
            event = PopupEvent(merchant_id=rule.merchant_id, rule_id=rule.id, kind="claim", customer_id=customer_id,
                               detail={}, claim_key=key, at=clock.now())
            session.add(event)
            session.flush()
            coupon_id = issue(session, merchant_id=actor.merchant_id, template_id=rule.template_id,
                              customer_id=customer_id, channel="campaign", source_ref=f"popup:{rule.id}")
            event.detail = {"coupon_id": coupon_id}
            session.flush()
    except IntegrityError as exc:
        raise Conflict("You have already claimed this offer.", code="offer_already_claimed") from exc
    return coupon_id


def record_conversion(session: Session, *, merchant_id: int, customer_id: int, order_id: int,
                      paid_at: dt.datetime) -> int:
    """A paid goods order is a conversion of each rule the customer saw or claimed within its window (once per
    rule and order)."""
    # Core statements on the session's connection: this runs on every paid order, and most customers
    # have seen no pop-up (one indexed read).
    E, R = PopupEvent.__table__, PopupRule.__table__
    session.flush()
    connection = session.connection()
    rows = connection.execute(select(E.c.rule_id, func.max(E.c.at), R.c.conversion_days)
                              .join(R, R.c.id == E.c.rule_id)
                              .where(E.c.merchant_id == merchant_id, E.c.customer_id == customer_id,
                                     E.c.kind.in_(("impression", "claim")), E.c.at < paid_at,
                                     E.c.at >= paid_at - dt.timedelta(days=90))
                              .group_by(E.c.rule_id, R.c.conversion_days)).all()
    done = 0
    for rule_id, last_at, days in rows:
        if last_at + dt.timedelta(days=days) < paid_at:
            continue
        exists = connection.execute(select(E.c.id).where(E.c.merchant_id == merchant_id, E.c.rule_id == rule_id,
                                                         E.c.kind == "conversion", E.c.order_id == order_id)
                                    .limit(1)).scalar()
        if exists is None:
            session.add(PopupEvent(merchant_id=merchant_id, rule_id=rule_id, kind="conversion", customer_id=customer_id,
                                   order_id=order_id, detail={}, at=paid_at))
            done += 1
    if done:
        session.flush()
    return done


def give_visitor_rows(session: Session, *, merchant_id: int, visitor_id: str, customer_id: int) -> int:
    """customer.signed_in: the visitor's anonymous rows become the customer's."""
    result = session.execute(update(PopupEvent).where(PopupEvent.merchant_id == merchant_id,
                                                      PopupEvent.visitor_id == visitor_id,
                                                      PopupEvent.customer_id.is_(None))
                             .values(customer_id=customer_id).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def end_due(session: Session, now: dt.datetime) -> int:
    result = session.execute(update(PopupRule).where(PopupRule.status.in_(RUNNING), PopupRule.ends_at <= now)
                             .values(status=CampaignStatus.ENDED.value).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    session.execute(update(PopupEvent).where(PopupEvent.merchant_id == merchant_id,
                                             PopupEvent.customer_id == source_id)
                    .values(customer_id=target_id).execution_options(synchronize_session=False))



def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, PopupRule, merchant_id=merchant_id, statuses=RUNNING)
