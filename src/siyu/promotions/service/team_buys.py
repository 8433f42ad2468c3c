"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — logic.

Rules:
- Checkout (`TeamBuyContributor`, priority 21, only for `promotion.kind == "team_buy"`): a new team
  (`campaign_id`) or joining one (`team_id`); the one line is priced at the team price and marked
  `line.promo`. Joining is refused with stable codes: `team_not_found`, `team_full`, `team_expired`,
  `team_already_joined`, `team_limit_reached` (and `team_buy_not_running`, `team_buy_item`). Its
  `commit` writes the pending membership (a partial unique index refuses a second live place in one team).
- Seats are taken when paid (order.paid): one conditional UPDATE `paid_count = paid_count + 1 WHERE
  paid_count < size AND status = 'forming' AND expires_at > now`. A new team's first paid order opens
  the team and starts its clock; the N-th paid completes it (event `promotions.team_completed`). A
  payment that finds its team full, failed or expired is refunded automatically through the payment
  provider (campaign `on_full = "refund"`) or opens a new team (`"new_team"`, while the campaign runs).
- Expiry (`expire_due`, tick `promotions.teams_expire`): a forming team past `expires_at` becomes
  failed by one conditional UPDATE (so two runs never both act) and every paid member is refunded.
  Pending members keep their orders, which expire as usual (or, paid later, are refunded).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import AppError, Conflict, NotFound, field_error
from siyu.core.events import emit
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.core.states import InvalidTransition
from siyu.customers import service as customers
from siyu.orders import pricing
from siyu.orders import service as orders
from siyu.promotions.models.team_buys import Team, TeamBuyCampaign, TeamBuySku, TeamMember
from siyu.promotions.schemas.team_buys import TeamBuyIn
from siyu.promotions.service.common import count_running, lock_customer, require_manager
from siyu.promotions.states.team_buys import (
    CAMPAIGN_MACHINE,
    LIVE_MEMBER,
    MEMBER_MACHINE,
    TEAM_MACHINE,
    MemberStatus,
    TeamBuyStatus,
    TeamStatus,
    effective_status,
)

log = logging.getLogger(__name__)

EXTRA_KEY = "team_buy"
CONTRIBUTOR = "promotions.team_buy"
TEAM_COMPLETED = "promotions.team_completed"
# The hold on a member's order until the team is complete (orders refuses to ship or hand it over).
HOLD_REASON = "team_forming"
TEAM_FAILED = "promotions.team_failed"
C, T, M = TeamBuyStatus, TeamStatus, MemberStatus

REFUND_REASONS = {
    "team_failed": "Team buy: the team did not fill in time.",
    "team_full": "Team buy: the team was already full when the payment arrived.",
    "campaign_closed": "Team buy: the campaign was over when the payment arrived.",
    "lucky_draw": "Team buy lucky draw: not drawn this time.",
}

# Who wins a lucky-draw team (the demo swaps in its seeded generator to stay deterministic).
draw = secrets.SystemRandom().sample


class TeamBuyNotFound(NotFound):
    code = "team_buy_not_found"
    message = "This team-buy campaign does not exist."


class TeamNotFound(NotFound):
    code = "team_not_found"
    message = "This team does not exist."


class TeamBuyNotRunning(Conflict):
    code = "team_buy_not_running"
    message = "This team-buy campaign is not running now."


class TeamBuyItem(Conflict):
    code = "team_buy_item"
    message = "A team-buy order holds exactly one item of the campaign."


class TeamFull(Conflict):
    code = "team_full"
    message = "This team is already full: start a team of your own or join another."


class TeamExpired(Conflict):
    code = "team_expired"
    message = "This team's time has run out: start a team of your own or join another."


class TeamAlreadyJoined(Conflict):
    code = "team_already_joined"
    message = "You are already in this team (pay or cancel your earlier order first)."


class TeamLimitReached(Conflict):
    code = "team_limit_reached"
    message = "You have joined as many teams of this campaign as allowed ({limit})."


# ================================================================= campaigns




def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53


def get_campaign(session: Session, campaign_id: int, *, merchant_id: int, lock: bool = False) -> TeamBuyCampaign:
    if not _valid_id(campaign_id):
        raise TeamBuyNotFound()
    stmt = select(TeamBuyCampaign).where(TeamBuyCampaign.id == campaign_id, TeamBuyCampaign.merchant_id == merchant_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise TeamBuyNotFound()
    return row


def campaign_skus(session: Session, campaign_id: int) -> list[TeamBuySku]:
    return list(session.scalars(select(TeamBuySku).where(TeamBuySku.campaign_id == campaign_id)
                                .order_by(TeamBuySku.team_price_cents, TeamBuySku.id)))


def status_of(campaign: TeamBuyCampaign, now: dt.datetime | None = None) -> str:
    """What the campaign is now (the window applied to scheduled and active)."""
    return effective_status(campaign.status, campaign.starts_at, campaign.ends_at, now or clock.now())


def is_running(campaign: TeamBuyCampaign, now: dt.datetime | None = None) -> bool:
    return status_of(campaign, now) == C.ACTIVE.value


def _check_skus(session: Session, merchant_id: int, data: TeamBuyIn) -> int:
    """The SKUs exist, are for sale and belong to one product; returns that product's id."""
    infos = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[s.sku_id for s in data.skus])
    products = set()
    for n, item in enumerate(data.skus):
        info = infos.get(item.sku_id)
        if info is None:
            raise field_error(f"skus.{n}.sku_id", "This SKU does not exist.")
        products.add(info.product_id)
    if len(products) != 1:
        raise field_error("skus", "The SKUs of a team buy come from one product.")
    return products.pop()


def _write(session: Session, campaign: TeamBuyCampaign, data: TeamBuyIn, product_id: int) -> None:
    campaign.title = data.title
    campaign.description = data.description
    campaign.product_id = product_id
    campaign.team_size = data.team_size
    campaign.time_limit_minutes = data.time_limit_minutes
    campaign.per_customer_limit = data.per_customer_limit
    campaign.starts_at = data.starts_at
    campaign.ends_at = data.ends_at
    campaign.on_full = data.on_full
    campaign.allow_coupons = data.allow_coupons
    campaign.allow_member_discount = data.allow_member_discount
    campaign.lucky_draw = data.lucky_draw
    campaign.lucky_winners = data.lucky_winners
    campaign.updated_at = clock.now()
    existing = {s.sku_id: s for s in campaign_skus(session, campaign.id)} if campaign.id else {}
    wanted = {s.sku_id: s.team_price_cents for s in data.skus}
    for sku_id, row in existing.items():
        if sku_id not in wanted:
            session.delete(row)
        else:
            row.team_price_cents = wanted[sku_id]
    session.flush()
    session.add_all([TeamBuySku(merchant_id=campaign.merchant_id, campaign_id=campaign.id, sku_id=sku_id,
                                team_price_cents=price)
                     for sku_id, price in wanted.items() if sku_id not in existing])
    session.flush()


def create_campaign(session: Session, *, actor: Principal, data: TeamBuyIn) -> TeamBuyCampaign:
    """A draft campaign (schedule it to run in its window)."""
    require_manager(actor)
    product_id = _check_skus(session, actor.merchant_id, data)
    now = clock.now()
    campaign = TeamBuyCampaign(merchant_id=actor.merchant_id, status=C.DRAFT.value, created_at=now, title=data.title,
                               product_id=product_id, team_size=data.team_size, starts_at=data.starts_at,
                               ends_at=data.ends_at, time_limit_minutes=data.time_limit_minutes)
    session.add(campaign)
    session.flush()
    _write(session, campaign, data, product_id)
    return campaign


def update_campaign(session: Session, campaign_id: int, *, actor: Principal, data: TeamBuyIn) -> TeamBuyCampaign:
    """Edit a campaign that has not ended. Teams already open keep their size and clock."""
    require_manager(actor)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    if campaign.status == C.ENDED:
        raise Conflict("An ended campaign cannot be edited.", code="team_buy_ended")
    product_id = _check_skus(session, actor.merchant_id, data)
    _write(session, campaign, data, product_id)
    return campaign


def change_status(session: Session, campaign_id: int, *, actor: Principal, action: str) -> TeamBuyCampaign:
    """schedule (draft → scheduled), unschedule (→ draft), pause, resume (paused → scheduled), end.
    Ending a campaign leaves its forming teams to fill or fail on their own clocks."""
    require_manager(actor)
    targets = {"schedule": C.SCHEDULED, "unschedule": C.DRAFT, "pause": C.PAUSED, "resume": C.SCHEDULED,
               "end": C.ENDED}
    if action not in targets:
        raise NotFound()
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    new = targets[action]
    if action == "resume" and campaign.status != C.PAUSED:
        raise InvalidTransition(CAMPAIGN_MACHINE.message, details={"from": campaign.status, "to": new.value},
                                old=campaign.status, new=new.value)
    CAMPAIGN_MACHINE.check(campaign.status, new.value)
    now = clock.now()
    if action == "unschedule" and now >= campaign.starts_at:
        raise Conflict("This campaign has started; pause or end it instead.", code="team_buy_started")
    if action in ("schedule", "resume") and now >= campaign.ends_at:
        raise Conflict("This campaign's window has passed; change its end first.", code="team_buy_window_passed")
    campaign.status = new.value
    campaign.updated_at = now
    if new == C.SCHEDULED:
        campaign.scheduled_at = now
    elif new == C.PAUSED:
        campaign.paused_at = now
    elif new == C.ENDED:
        campaign.ended_at = now
    session.flush()
    return campaign


def run_clock(session: Session, now: dt.datetime) -> int:
    """Scheduled campaigns inside their window become active; scheduled or active ones past their
    end become ended. Returns how many moved."""
    moved = 0
    rows = list(session.scalars(select(TeamBuyCampaign).where(
        TeamBuyCampaign.status.in_((C.SCHEDULED.value, C.ACTIVE.value)),
        ((TeamBuyCampaign.status == C.SCHEDULED.value) & (TeamBuyCampaign.starts_at <= now))
        | (TeamBuyCampaign.ends_at <= now)).order_by(TeamBuyCampaign.id).with_for_update()
        .execution_options(populate_existing=True)))
    for campaign in rows:
        new = effective_status(campaign.status, campaign.starts_at, campaign.ends_at, now)
        if new != campaign.status and CAMPAIGN_MACHINE.allowed(campaign.status, new):
            campaign.status = new
            campaign.updated_at = now
            if new == C.ENDED:
                campaign.ended_at = now
            moved += 1
    session.flush()
    return moved


def list_campaigns(session: Session, *, actor: Principal, status: str | None = None, cursor: str | None = None,
                   limit: int | None = None) -> Page[TeamBuyCampaign]:
    require_manager(actor)
    stmt = select(TeamBuyCampaign).where(TeamBuyCampaign.merchant_id == actor.merchant_id)
    if status:
        stmt = stmt.where(TeamBuyCampaign.status == status)
    return paginate(session, stmt, TeamBuyCampaign.id, cursor=cursor, limit=limit)


def live_campaigns(session: Session, *, merchant_id: int, now: dt.datetime | None = None,
                   limit: int = 20) -> list[TeamBuyCampaign]:
    """Campaigns customers can buy from now, ending soonest first."""
    now = now or clock.now()
    return list(session.scalars(select(TeamBuyCampaign).where(
        TeamBuyCampaign.merchant_id == merchant_id, TeamBuyCampaign.status.in_((C.SCHEDULED.value, C.ACTIVE.value)),
        TeamBuyCampaign.starts_at <= now, TeamBuyCampaign.ends_at > now)
        .order_by(TeamBuyCampaign.ends_at, TeamBuyCampaign.id).limit(limit)))


def figures(session: Session, *, merchant_id: int, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: participants (customers who paid), teams forming / complete / failed, paid orders
    and GMV (what paid members keep paying: refunds excluded)."""
    out = {cid: {"participants": 0, "orders": 0, "gmv_cents": 0, "refunded_orders": 0, "forming": 0, "complete": 0,
                 "failed": 0} for cid in campaign_ids}
    if not campaign_ids:
        return out
    for cid, status, n in session.execute(
            select(Team.campaign_id, Team.status, func.count()).where(
                Team.merchant_id == merchant_id, Team.campaign_id.in_(campaign_ids))
            .group_by(Team.campaign_id, Team.status)):
        out[cid][status] = int(n)
    paid = TeamMember.paid_at.is_not(None)
    for cid, participants, n, gmv, refunded in session.execute(
            select(TeamMember.campaign_id,
                   func.count(func.distinct(case((paid, TeamMember.customer_id)))),
                   func.sum(case((paid, 1), else_=0)),
                   func.sum(case((TeamMember.status == M.PAID.value, TeamMember.amount_cents), else_=0)),
                   func.sum(case((paid & (TeamMember.status == M.REFUNDED.value), 1), else_=0)))
            .where(TeamMember.merchant_id == merchant_id, TeamMember.campaign_id.in_(campaign_ids))
            .group_by(TeamMember.campaign_id)):
        out[cid].update(participants=int(participants or 0), orders=int(n or 0), gmv_cents=int(gmv or 0),
                        refunded_orders=int(refunded or 0))
    return out


# ================================================================= teams


def get_team(session: Session, team_id: int, *, merchant_id: int) -> Team:
    if not _valid_id(team_id):
        raise TeamNotFound()
    # Fresh from the database: seats are taken by Core UPDATEs the identity map does not see.
    team = session.scalars(select(Team).where(Team.id == team_id, Team.merchant_id == merchant_id)
                           .execution_options(populate_existing=True)).first()
    if team is None:
        raise TeamNotFound()
    return team


def list_teams(session: Session, *, merchant_id: int, campaign_id: int, status: str | None = None,
               cursor: str | None = None, limit: int | None = None) -> Page[Team]:
    stmt = select(Team).where(Team.merchant_id == merchant_id, Team.campaign_id == campaign_id)
    if status:
        stmt = stmt.where(Team.status == status)
    return paginate(session, stmt, Team.id, cursor=cursor, limit=limit)


def open_teams(session: Session, *, merchant_id: int, campaign_id: int, now: dt.datetime | None = None,
               limit: int = 10, exclude_customer_id: int | None = None) -> list[Team]:
    """Teams customers can still join (凑团): forming, seats left, time left; closest to full first."""
    now = now or clock.now()
    stmt = select(Team).where(Team.merchant_id == merchant_id, Team.campaign_id == campaign_id,
                              Team.status == T.FORMING.value, Team.expires_at > now, Team.paid_count < Team.size)
    if exclude_customer_id is not None:
        stmt = stmt.where(Team.leader_customer_id != exclude_customer_id)
    return list(session.scalars(stmt.order_by((Team.size - Team.paid_count), Team.expires_at, Team.id).limit(limit)))


def members_of(session: Session, team_ids: list[int], *, statuses: tuple[str, ...] | None = None,
               ) -> dict[int, list[TeamMember]]:
    """team id -> its members (leader first, then by payment)."""
    out: dict[int, list[TeamMember]] = {i: [] for i in team_ids}
    if not team_ids:
        return out
    stmt = select(TeamMember).where(TeamMember.team_id.in_(team_ids))
    if statuses:
        stmt = stmt.where(TeamMember.status.in_(statuses))
    for row in session.scalars(stmt.order_by(TeamMember.is_leader.desc(), TeamMember.paid_at, TeamMember.id)):
        out[row.team_id].append(row)  # type: ignore[index]
    return out


def member_of_order(session: Session, *, merchant_id: int, order_id: int) -> TeamMember | None:
    if not _valid_id(order_id):
        return None
    return session.scalars(select(TeamMember).where(TeamMember.merchant_id == merchant_id,
                                                    TeamMember.order_id == order_id)).first()


def membership(session: Session, *, team_id: int, customer_id: int | None) -> TeamMember | None:
    """The customer's live place in the team (pending or paid), if any."""
    if customer_id is None:
        return None
    return session.scalars(select(TeamMember).where(TeamMember.team_id == team_id,
                                                    TeamMember.customer_id == customer_id,
                                                    TeamMember.status.in_(LIVE_MEMBER))).first()


def teams_joined(session: Session, *, campaign_id: int, customer_id: int) -> int:
    """Live places the customer holds in the campaign (the per-customer limit counts them)."""
    return int(session.scalar(select(func.count()).select_from(TeamMember).where(
        TeamMember.campaign_id == campaign_id, TeamMember.customer_id == customer_id,
        TeamMember.status.in_(LIVE_MEMBER))) or 0)


@dataclasses.dataclass
class PersonView:
    customer_id: int
    nickname: str
    avatar_url: str
    is_leader: bool = False
    paid_at: dt.datetime | None = None
    won: bool | None = None


def people(session: Session, *, merchant_id: int, members: list[TeamMember]) -> list[PersonView]:
    """Who is in the team as the shop shows them (nickname and avatar; no phone)."""
    system = system_principal(merchant_id)
    out = []
    for m in members:
        try:
            c = customers.get_customer(session, m.customer_id, actor=system)
            nickname, avatar = c.nickname or "", c.avatar_url or ""
        except NotFound:
            nickname, avatar = "", ""
        out.append(PersonView(customer_id=m.customer_id, nickname=nickname or _("Customer"), avatar_url=avatar,
                              is_leader=m.is_leader, paid_at=m.paid_at, won=m.won))
    return out


def seconds_left(team: Team, now: dt.datetime | None = None) -> int:
    if team.status != T.FORMING:
        return 0
    return max(0, int((team.expires_at - (now or clock.now())).total_seconds()))


# ================================================================= checkout


class TeamBuyContributor:
    """The team price for the one line of a team-buy checkout: a new team or joining one."""

    name = CONTRIBUTOR
    priority = 21

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        promo = ctx.promotion
        if not promo or promo.get("kind") != "team_buy":
            return
        now = ctx.now or clock.now()
        team_id, campaign_id = promo.get("team_id"), promo.get("campaign_id")
        team = None
        if team_id:
            team = get_team(session, team_id, merchant_id=ctx.merchant_id)
            if campaign_id and campaign_id != team.campaign_id:
                raise TeamNotFound()
            campaign_id = team.campaign_id
        if not campaign_id:
            raise field_error("promotion.campaign_id", "Choose the team-buy campaign.")
        campaign = get_campaign(session, campaign_id, merchant_id=ctx.merchant_id)
        if not is_running(campaign, now):
            raise TeamBuyNotRunning(details={"campaign_id": campaign.id})
        prices = {s.sku_id: s.team_price_cents for s in campaign_skus(session, campaign.id)}
        if len(ctx.lines) != 1 or ctx.lines[0].sku_id not in prices:
            raise TeamBuyItem(details={"campaign_id": campaign.id, "sku_ids": sorted(prices)})
        if team is not None:
            _check_joinable(session, team, ctx.customer_id, now)
        _check_limit(session, campaign, ctx.customer_id)
        line = ctx.lines[0]
        price = prices[line.sku_id]
        diff = (price - line.unit_price_cents) * line.quantity
        if diff:
            ctx.add_adjustment(kind="team_buy", label=_("Team price"), amount_cents=diff, source=self.name,
                               sku_ids=[line.sku_id], details={"campaign_id": campaign.id,
                                                               "team_id": team.id if team else None})
        line.promo = {"kind": "team_buy", "campaign_id": campaign.id, "team_id": team.id if team else None,
                      "coupons": campaign.allow_coupons, "member_discount": campaign.allow_member_discount}
        ctx.extra[EXTRA_KEY] = {"campaign_id": campaign.id, "team_id": team.id if team else None,
                                "sku_id": line.sku_id, "quantity": line.quantity}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        found = ctx.extra.get(EXTRA_KEY)
        if not found or ctx.customer_id is None:
            return
        now = clock.now()
        team_id = found["team_id"]
        if team_id is not None:
            team = session.scalars(select(Team).where(Team.id == team_id)
                                   .execution_options(populate_existing=True)).one()
            _check_joinable(session, team, ctx.customer_id, now)
        campaign = session.get(TeamBuyCampaign, found["campaign_id"])
        assert campaign is not None
        if campaign.per_customer_limit is not None:
            lock_customer(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id)
        _check_limit(session, campaign, ctx.customer_id)
        member = TeamMember(merchant_id=ctx.merchant_id, campaign_id=found["campaign_id"], team_id=team_id,
                            customer_id=ctx.customer_id, order_id=order_id, order_no=order_no,
                            sku_id=found["sku_id"], quantity=found["quantity"], amount_cents=ctx.total_cents,
                            status=M.PENDING.value, is_leader=False, created_at=now)
        try:
            with session.begin_nested():
                session.add(member)
                session.flush()
        except IntegrityError as exc:
            # The partial unique index: a concurrent order of the same customer for the same team.
            raise TeamAlreadyJoined(details={"team_id": team_id}) from exc
        # The goods wait for the team: nothing is shipped or handed over before it is complete.
        orders.hold_fulfilment(session, merchant_id=ctx.merchant_id, order_id=order_id, reason=HOLD_REASON)


def _check_limit(session: Session, campaign: TeamBuyCampaign, customer_id: int | None) -> None:
    limit = campaign.per_customer_limit
    if customer_id is not None and limit is not None and \
            teams_joined(session, campaign_id=campaign.id, customer_id=customer_id) >= limit:
        raise TeamLimitReached(details={"limit": limit}, limit=limit)


def _check_joinable(session: Session, team: Team, customer_id: int | None, now: dt.datetime) -> None:
    if team.status == T.COMPLETE or (team.status == T.FORMING and team.paid_count >= team.size):
        raise TeamFull(details={"team_id": team.id})
    if team.status == T.FAILED or team.expires_at <= now:
        raise TeamExpired(details={"team_id": team.id})
    if membership(session, team_id=team.id, customer_id=customer_id) is not None:
        raise TeamAlreadyJoined(details={"team_id": team.id})


pricing.register_contributor(TeamBuyContributor())


# ================================================================= payment, refunds, expiry


def _lock_member(session: Session, merchant_id: int, order_id: int) -> TeamMember | None:
    return session.scalars(select(TeamMember).where(TeamMember.merchant_id == merchant_id,
                                                    TeamMember.order_id == order_id)
                           .with_for_update().execution_options(populate_existing=True)).first()


def _mark_paid(member: TeamMember, now: dt.datetime) -> None:
    MEMBER_MACHINE.check(member.status, M.PAID.value)
    member.status = M.PAID.value
    member.paid_at = now


def _open_team(session: Session, campaign: TeamBuyCampaign, member: TeamMember, now: dt.datetime) -> Team:
    """The member's payment opens a team of its own: its first seat taken, its clock started."""
    team = Team(merchant_id=member.merchant_id, campaign_id=campaign.id, leader_customer_id=member.customer_id,
                size=campaign.team_size, paid_count=1, status=T.FORMING.value, opened_at=now,
                expires_at=now + dt.timedelta(minutes=campaign.time_limit_minutes))
    session.add(team)
    session.flush()
    member.team_id = team.id
    member.is_leader = True
    _mark_paid(member, now)
    session.flush()
    return team


def _complete(session: Session, team_id: int, now: dt.datetime) -> None:
    """The N-th seat is taken: the team is complete. In a lucky-draw campaign the winners are drawn
    now and the other members refunded."""
    team = session.scalars(select(Team).where(Team.id == team_id).execution_options(populate_existing=True)).one()
    TEAM_MACHINE.check(team.status, T.COMPLETE.value)
    team.status = T.COMPLETE.value
    team.completed_at = now
    session.flush()
    paid = members_of(session, [team.id], statuses=(M.PAID.value,))[team.id]
    campaign = session.get(TeamBuyCampaign, team.campaign_id)
    assert campaign is not None
    winners = paid
    if campaign.lucky_draw and campaign.lucky_winners and campaign.lucky_winners < len(paid):
        chosen = {m.id for m in draw(paid, campaign.lucky_winners)}
        winners = [m for m in paid if m.id in chosen]
        for member in paid:
            member.won = member.id in chosen
            if not member.won:
                _refund_member(session, member, reason="lucky_draw", now=now)
        session.flush()
    for member in winners:
        orders.release_fulfilment(session, merchant_id=team.merchant_id, order_id=member.order_id)
    emit(session, TEAM_COMPLETED, {"team_id": team.id, "campaign_id": team.campaign_id, "size": team.size,
                                   "customer_ids": [m.customer_id for m in paid],
                                   "order_ids": [m.order_id for m in paid],
                                   "winner_order_ids": [m.order_id for m in winners], "completed_at": now},
         merchant_id=team.merchant_id)


def _refund_member(session: Session, member: TeamMember, *, reason: str, now: dt.datetime) -> None:
    """Give the member's money back through the provider that took it (a whole-order refund asked and
    approved by the system, the units back in stock)."""
    MEMBER_MACHINE.check(member.status, M.REFUNDED.value)
    system = system_principal(member.merchant_id)
    try:
        with session.begin_nested():
            refund = orders.request_refund(session, member.order_id, actor=system, reason=_(REFUND_REASONS[reason]),
                                           source="promotion")
            refund = orders.approve_refund(session, refund.id, actor=system, restock=True)
        member.refund_id = refund.id
    except AppError as exc:
        # Already refunded (or asked for) through after-sales: the money is handled there.
        log.warning("team buy: order %s not refunded automatically: %s", member.order_id, exc.code)
    member.status = M.REFUNDED.value
    member.refund_reason = reason
    member.refunded_at = now
    session.flush()


def record_paid(session: Session, *, merchant_id: int, order_id: int, now: dt.datetime | None = None) -> str:
    """order.paid: the member takes its seat (or opens its team). Idempotent. Returns "none" (not a
    team order), "already", "opened", "seated", "completed", "moved" (opened a new team instead of a
    full one) or "refunded"."""
    member = _lock_member(session, merchant_id, order_id)
    if member is None:
        return "none"
    if member.status != M.PENDING:
        return "already"
    now = now or clock.now()
    campaign = session.get(TeamBuyCampaign, member.campaign_id)
    assert campaign is not None
    if member.team_id is None:
        if not is_running(campaign, now):
            _refund_member(session, member, reason="campaign_closed", now=now)
            return "refunded"
        _open_team(session, campaign, member, now)
        return "opened"
    teams = Team.__table__
    took = session.connection().execute(
        update(teams).where(teams.c.id == member.team_id, teams.c.paid_count < teams.c.size,
                            teams.c.status == T.FORMING.value, teams.c.expires_at > now)
        .values(paid_count=teams.c.paid_count + 1).returning(teams.c.paid_count, teams.c.size)).first()
    if took is None:
        if campaign.on_full == "new_team" and is_running(campaign, now):
            member.asked_team_id = member.team_id
            member.team_id = None
            session.flush()
            _open_team(session, campaign, member, now)
            return "moved"
        _refund_member(session, member, reason="team_full", now=now)
        return "refunded"
    _mark_paid(member, now)
    session.flush()
    if took.paid_count >= took.size:
        _complete(session, member.team_id, now)
        return "completed"
    return "seated"


def record_cancelled(session: Session, *, merchant_id: int, order_id: int) -> bool:
    """order.cancelled (cancelled or expired unpaid): the pending place is given up."""
    member = _lock_member(session, merchant_id, order_id)
    if member is None or member.status != M.PENDING:
        return False
    MEMBER_MACHINE.check(member.status, M.CANCELLED.value)
    member.status = M.CANCELLED.value
    member.cancelled_at = clock.now()
    session.flush()
    return True


def record_refunded(session: Session, *, merchant_id: int, order_id: int, fully_refunded: bool) -> bool:
    """order.refunded through after-sales: a paid member wholly refunded leaves; a forming team gives
    its seat back (one conditional UPDATE). Refunds the campaign made itself are already recorded."""
    if not fully_refunded:
        return False
    member = _lock_member(session, merchant_id, order_id)
    if member is None or member.status != M.PAID:
        return False
    teams = Team.__table__
    session.connection().execute(update(teams).where(teams.c.id == member.team_id, teams.c.status == T.FORMING.value,
                                                     teams.c.paid_count > 0)
                                 .values(paid_count=teams.c.paid_count - 1))
    MEMBER_MACHINE.check(member.status, M.REFUNDED.value)
    member.status = M.REFUNDED.value
    member.refund_reason = "after_sales"
    member.refunded_at = clock.now()
    session.flush()
    return True


def expire_due(session: Session, now: dt.datetime, *, limit: int = 200) -> list[int]:
    """Forming teams whose time is up become failed and every paid member is refunded. Each team is
    taken by one conditional UPDATE, so two runs at once never refund twice."""
    ids = list(session.scalars(select(Team.id).where(Team.status == T.FORMING.value, Team.expires_at <= now)
                               .order_by(Team.id).limit(limit)))
    teams = Team.__table__
    failed = []
    for team_id in ids:
        TEAM_MACHINE.check(T.FORMING.value, T.FAILED.value)
        got = session.connection().execute(
            update(teams).where(teams.c.id == team_id, teams.c.status == T.FORMING.value, teams.c.expires_at <= now)
            .values(status=T.FAILED.value, failed_at=now).returning(teams.c.merchant_id, teams.c.campaign_id)).first()
        if got is None:
            continue
        paid = list(session.scalars(select(TeamMember).where(TeamMember.team_id == team_id,
                                                             TeamMember.status == M.PAID.value)
                                    .order_by(TeamMember.id).with_for_update()
                                    .execution_options(populate_existing=True)))
        for member in paid:
            _refund_member(session, member, reason="team_failed", now=now)
        emit(session, TEAM_FAILED, {"team_id": team_id, "campaign_id": got.campaign_id,
                                    "refunded_order_ids": [m.order_id for m in paid], "failed_at": now},
             merchant_id=got.merchant_id)
        failed.append(team_id)
    session.expire_all()
    return failed


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> int:
    """customer.merged: the source's places become the target's, except in a team where the target
    already holds a live place (one place per customer per team)."""
    taken = select(TeamMember.team_id).where(TeamMember.customer_id == target_id, TeamMember.team_id.is_not(None),
                                             TeamMember.status.in_(LIVE_MEMBER)).scalar_subquery()
    rows = list(session.scalars(select(TeamMember).where(
        TeamMember.merchant_id == merchant_id, TeamMember.customer_id == source_id,
        (TeamMember.team_id.is_(None)) | (TeamMember.team_id.not_in(taken)) | TeamMember.status.not_in(LIVE_MEMBER))))
    for row in rows:
        row.customer_id = target_id
    session.execute(update(Team).where(Team.merchant_id == merchant_id, Team.leader_customer_id == source_id)
                    .values(leader_customer_id=target_id))
    session.flush()
    return len(rows)


# ================================================================= pages and shares


@dataclasses.dataclass
class SkuOffer:
    sku_id: int
    title: str
    spec_text: str
    image_url: str
    price_cents: int
    team_price_cents: int
    stock: int
    sellable: bool


def offers(session: Session, *, merchant_id: int, campaign: TeamBuyCampaign) -> list[SkuOffer]:
    """The campaign's SKUs with their normal and team prices and stock."""
    rows = campaign_skus(session, campaign.id)
    infos = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[r.sku_id for r in rows])
    out = []
    for r in rows:
        info = infos.get(r.sku_id)
        if info is None:
            continue
        out.append(SkuOffer(sku_id=r.sku_id, title=info.title, spec_text=info.spec_text, image_url=info.image or "",
                            price_cents=info.price_cents, team_price_cents=r.team_price_cents, stock=info.stock,
                            sellable=info.sellable))
    return out


def checkout_url(slug: str, *, sku_id: int, campaign_id: int, team_id: int | None = None) -> str:
    url = f"/shop/{slug}/checkout?sku_id={sku_id}&quantity=1&promo_kind=team_buy&promo_campaign_id={campaign_id}"
    return url + (f"&promo_team_id={team_id}" if team_id else "")


def _describe_team(session: Session, merchant_id: int, team_id: int) -> shares.TargetInfo:
    team = get_team(session, team_id, merchant_id=merchant_id)
    campaign = get_campaign(session, team.campaign_id, merchant_id=merchant_id)
    found = offers(session, merchant_id=merchant_id, campaign=campaign)
    left = max(0, team.size - team.paid_count)
    return shares.TargetInfo(title=campaign.title, image_url=found[0].image_url if found else None,
                             price_cents=found[0].team_price_cents if found else None,
                             subtitle=_("%(n)s more to complete the team", n=left))


def _describe_campaign(session: Session, merchant_id: int, campaign_id: int) -> shares.TargetInfo:
    campaign = get_campaign(session, campaign_id, merchant_id=merchant_id)
    if campaign.status == C.DRAFT:
        raise TeamBuyNotFound()
    found = offers(session, merchant_id=merchant_id, campaign=campaign)
    return shares.TargetInfo(title=campaign.title, image_url=found[0].image_url if found else None,
                             price_cents=found[0].team_price_cents if found else None,
                             subtitle=_("Team of %(n)s", n=campaign.team_size))


shares.register_target("team", lambda slug, team_id: f"/shop/{slug}/team/{team_id}", describe=_describe_team)
shares.register_target("team_buy", lambda slug, campaign_id: f"/shop/{slug}/team-buy/{campaign_id}",
                       describe=_describe_campaign)


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, TeamBuyCampaign, merchant_id=merchant_id, statuses=(C.SCHEDULED.value, C.ACTIVE.value))
