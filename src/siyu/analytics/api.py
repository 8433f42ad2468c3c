"""REST routes of the analytics domain: the overview and every view as JSON, the settings (target channel
mix, RFM method) and saved RFM segments with their members (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from siyu.analytics import service
from siyu.core import clock
from siyu.core.errors import field_error
from siyu.core.web import DbSession
from siyu.merchants.deps import Staff
from siyu.promotions.service import coupons

router = APIRouter(tags=["analytics"])

Day = Annotated[str | None, Query(max_length=10, description="A Shanghai calendar day, YYYY-MM-DD.")]
OptId = Annotated[str | None, Query(max_length=20)]
Text = Annotated[str | None, Query(max_length=60)]


def _filters(start: str | None, end: str | None, store_id: str | None, guide_id: str | None, channel: str | None,
             campaign: str | None) -> service.Filters:
    return service.make_filters(start=start, end=end, store_id=store_id, guide_id=guide_id, channel=channel,
                                campaign=campaign)


@router.get("/api/v1/admin/analytics/overview")
def overview(session: DbSession, principal: Staff) -> dict[str, Any]:
    """Today's figures (Shanghai day) in the caller's scope: new and total customers, products on
    sale, low-stock SKUs, orders and GMV (`orders_available` is false until orders exist), and new
    customers per day for the last 30 days."""
    return service.overview_dict(service.overview(session, actor=principal))


@router.get("/api/v1/admin/analytics/rfm")
def rfm(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
        guide_id: OptId = None, channel: Text = None, campaign: Text = None,
        method: Annotated[Literal["quintiles", "thresholds"] | None, Query()] = None,
        customers: Annotated[bool, Query(description="Include a page of the scored customers, by id.")] = False,
        customers_cursor: OptId = None,
        customers_limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """RFM scores and segments as of the period's last day (default: the last 30 days), with each
    segment's count as of the day before the period; with `customers`, one page of the scored customers
    (`customers_next_cursor` gives the next as `customers_cursor`)."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    after = _cursor(customers_cursor, "customers_cursor")
    r = service.rfm(session, actor=principal, filters=f, method=method, customers_after=after,
                    customers_limit=customers_limit if customers else 0)
    return service.rfm_dict(r, with_customers=customers)


def _cursor(value: str | None, field: str) -> int | None:
    """A page cursor: the last customer id of the previous page."""
    if value in (None, ""):
        return None
    if not value.isdigit() or not 0 < int(value) < 2**62:
        raise field_error(field, "Not a valid cursor.")
    return int(value)


@router.get("/api/v1/admin/analytics/funnel")
def funnel(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
           guide_id: OptId = None, channel: Text = None, campaign: Text = None) -> dict[str, Any]:
    """People at each funnel step and the conversion from the step before, overall, by channel group and
    by store."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    return service.funnel_dict(service.funnel(session, actor=principal, filters=f))


@router.get("/api/v1/admin/analytics/fission")
def fission(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
            guide_id: OptId = None, channel: Text = None, campaign: Text = None) -> dict[str, Any]:
    """Shares, visits per share, K-factor, fission trees and top sharers, by campaign."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    return service.fission_dict(service.fission(session, actor=principal, filters=f))


@router.get("/api/v1/admin/analytics/gmv")
def gmv(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
        guide_id: OptId = None, channel: Text = None, campaign: Text = None, compare_start: Day = None,
        compare_end: Day = None) -> dict[str, Any]:
    """GMV = visitors × conversion × AOV per day, and each factor's share of the change against the
    comparison period (default: the same number of days just before), summing exactly to it."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    base = None
    if compare_start or compare_end:
        b = service.make_filters(start=compare_start, end=compare_end or compare_start)
        base = service.Filters(start=b.start, end=b.end, store_id=f.store_id, guide_id=f.guide_id, channel=f.channel,
                               campaign=f.campaign)
    return service.decomposition_dict(service.decompose(session, actor=principal, filters=f, base=base))


@router.get("/api/v1/admin/analytics/channel-mix")
def channel_mix(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
                guide_id: OptId = None, channel: Text = None, campaign: Text = None) -> dict[str, Any]:
    """Sales (kept, net of refunds) by store / platform / content / social against the target mix."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    return service.channel_mix_dict(service.channel_mix(session, actor=principal, filters=f))


@router.get("/api/v1/admin/analytics/cohorts")
def cohorts(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
            guide_id: OptId = None, channel: Text = None, campaign: Text = None) -> dict[str, Any]:
    """Monthly acquisition cohorts with repeat-purchase retention, overall and by acquisition channel
    group (default period: the last 12 months)."""
    f = service.make_filters(start=start, end=end, store_id=store_id, guide_id=guide_id, channel=channel,
                             campaign=campaign, default_days=365)
    return service.cohorts_dict(service.cohorts(session, actor=principal, filters=f))


@router.get("/api/v1/admin/analytics/leaderboard")
def leaderboard(session: DbSession, principal: Staff, start: Day = None, end: Day = None, store_id: OptId = None,
                guide_id: OptId = None, channel: Text = None, campaign: Text = None) -> dict[str, Any]:
    """Guides by attributed sales: customers owned, new customers, sales, repurchase rate, tasks done
    (null until a tasks domain exists)."""
    f = _filters(start, end, store_id, guide_id, channel, campaign)
    return service.leaderboard_dict(service.leaderboard(session, actor=principal, filters=f), f)


class SettingsIn(BaseModel):
    target_mix_bps: dict[Literal["store", "platform", "content", "social"], int] | None = None
    rfm_method: Literal["quintiles", "thresholds"] | None = None
    rfm_thresholds: dict[Literal["r_days", "f_orders", "m_cents"], list[int]] | None = None


@router.get("/api/v1/admin/analytics/settings")
def get_settings(session: DbSession, principal: Staff) -> dict[str, Any]:
    return service.settings_dict(service.get_settings(session, merchant_id=principal.merchant_id))


@router.put("/api/v1/admin/analytics/settings")
def put_settings(session: DbSession, principal: Staff, body: SettingsIn) -> dict[str, Any]:
    """Set the target channel mix (bps, summing to 10000) and how RFM scores are cut."""
    s = service.update_settings(session, actor=principal, target_mix_bps=body.target_mix_bps,
                                rfm_method=body.rfm_method, rfm_thresholds=body.rfm_thresholds)
    return service.settings_dict(s)


class SegmentIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    segment: Literal["champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost"]
    store_id: int | None = Field(default=None, gt=0, le=2**62)
    guide_id: int | None = Field(default=None, gt=0, le=2**62)


def _segment_dict(s: Any) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "segment": s.segment, "store_id": s.store_id, "guide_id": s.owner_id,
            "created_at": s.created_at}


@router.get("/api/v1/admin/analytics/segments")
def list_segments(session: DbSession, principal: Staff) -> dict[str, Any]:
    return {"items": [_segment_dict(s) for s in service.list_segments(session, actor=principal)]}


@router.post("/api/v1/admin/analytics/segments", status_code=201)
def save_segment(session: DbSession, principal: Staff, body: SegmentIn) -> dict[str, Any]:
    """Save an RFM segment as a customer filter (a guide's is narrowed to their own customers)."""
    s = service.save_segment(session, actor=principal, name=body.name, segment=body.segment, store_id=body.store_id,
                             guide_id=body.guide_id)
    return _segment_dict(s)


@router.delete("/api/v1/admin/analytics/segments/{segment_id}", status_code=204)
def delete_segment(session: DbSession, principal: Staff, segment_id: int) -> None:
    service.delete_segment(session, segment_id, actor=principal)


@router.get("/api/v1/admin/analytics/segments/{segment_id}/members")
def segment_members(session: DbSession, principal: Staff, segment_id: int, cursor: OptId = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    """The segment's members now, with their scores: one page by customer id (`next_cursor` for the next),
    and `total`, the members on all pages."""
    page = service.segment_members(session, segment_id, actor=principal, after=_cursor(cursor, "cursor"), limit=limit)
    return {"segment": _segment_dict(service.get_segment(session, segment_id, actor=principal)),
            "items": [{"customer_id": c.customer_id, "recency_days": c.recency_days, "frequency": c.frequency,
                       "monetary_cents": c.monetary_cents, "r": c.r, "f": c.f, "m": c.m} for c in page.items],
            "next_cursor": None if page.next_cursor is None else str(page.next_cursor), "total": page.total}


@router.get("/api/v1/admin/analytics/segments/{segment_id}/members.csv")
def segment_members_csv(session: DbSession, principal: Staff, segment_id: int) -> StreamingResponse:
    """The members as CSV (phones masked unless the role may export them); audited."""
    text = service.member_csv(session, segment_id, actor=principal)
    name = f"segment-{segment_id}-{clock.today_local():%Y%m%d}.csv"
    return StreamingResponse(text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class SendCouponIn(BaseModel):
    template_id: Annotated[int, Field(gt=0, le=2**53)]


@router.post("/api/v1/admin/analytics/segments/{segment_id}/send-coupon")
def segment_send_coupon(session: DbSession, principal: Staff, segment_id: int, body: SendCouponIn) -> dict[str, Any]:
    """Send one coupon of a template (offered through the `segment` channel) to each member of the saved
    segment now: `{issued, coupon_ids, refused: {code: n}}` (promotions' coupon rules apply: stock, limit)."""
    members = service.segment_member_ids(session, segment_id, actor=principal)
    return coupons.issue_to_customers(session, actor=principal, template_id=body.template_id,
                                      customer_ids=members, channel="segment",
                                      source_ref=f"segment:{segment_id}")
