"""Keyword-default factories for promotions, one section per area (each area adds below its heading)."""

from __future__ import annotations

# ---------------------------------------------------------------- coupons


def make_coupon_template(session, *, merchant, kind: str = "fixed", name: str | None = None, status: str = "active",
                         amount_cents: int = 1000, threshold_cents: int = 0, percent_bps: int = 0,
                         cap_cents: int | None = None, validity: str = "fixed", days_valid: int = 30,
                         total_stock: int | None = None, per_customer_limit: int = 1,
                         channels: list[str] | None = None, **extra):
    """A coupon template (active by default: valid from a day ago for `days_valid` days), made through
    the service so its fields are checked as the console's are."""
    import datetime as dt

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.promotions.service import coupons as coupon_service

    now = clock.now()
    fields = {"name": name or f"{kind} coupon", "kind": kind, "amount_cents": amount_cents,
              "threshold_cents": threshold_cents, "percent_bps": percent_bps, "cap_cents": cap_cents,
              "validity": validity, "total_stock": total_stock, "per_customer_limit": per_customer_limit,
              "channels": channels or ["centre", "guide", "payment", "campaign", "split", "segment"]}
    if validity == "fixed":
        fields.update(starts_at=now - dt.timedelta(days=1), ends_at=now + dt.timedelta(days=days_valid))
    else:
        fields.update(valid_days=days_valid)
    fields.update(extra)
    template = coupon_service.create_template(session, actor=system_principal(merchant.id),
                                              publish=status != "draft", **fields)
    if status not in ("draft", "active", "scheduled"):
        template.status = status
        session.flush()
    return template


def give_coupon(session, *, template, customer, channel: str = "guide", amount_cents: int | None = None):
    """One coupon of `template` for `customer` through the service (race-safe path)."""
    from siyu.promotions.service import coupons as coupon_service

    return coupon_service.issue_coupon(session, merchant_id=template.merchant_id, template_id=template.id,
                                       customer_id=customer.id, channel=channel, amount_cents=amount_cents)


# ---------------------------------------------------------------- split_coupons


def make_split_campaign(session, *, merchant, template=None, name: str = "好友瓜分券", pool_amount_cents: int = 1000,
                        team_size: int = 3, split_mode: str = "equal", floor_cents: int = 0, fill_minutes: int = 60,
                        max_opens_per_customer: int = 1, max_joins_per_customer: int = 0, publish: bool = True,
                        days: int = 7):
    """A split-coupon campaign through the service (published unless `publish=False`), on a fixed-amount
    template offering the "split" channel (made here when not given, with room for many parts per customer)."""
    import datetime as dt

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.promotions.service import split_coupons

    if template is None:
        template = make_coupon_template(session, merchant=merchant, name="瓜分券", amount_cents=100,
                                        per_customer_limit=100, channels=["split"])
    now = clock.now()
    actor = system_principal(merchant.id)
    campaign = split_coupons.create_campaign(session, actor=actor, data=split_coupons.SplitCampaignIn(
        name=name, template_id=template.id, pool_amount_cents=pool_amount_cents, team_size=team_size,
        split_mode=split_mode, floor_cents=floor_cents, fill_minutes=fill_minutes,
        max_opens_per_customer=max_opens_per_customer, max_joins_per_customer=max_joins_per_customer,
        starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(days=days)))
    if publish:
        split_coupons.change_status(session, campaign.id, actor=actor, action="publish")
    return campaign


# ---------------------------------------------------------------- flash_sales


def make_flash_sale(session, *, merchant, items, starts_at=None, ends_at=None, status: str = "scheduled",
                    title: str = "限时秒杀", allow_coupons: bool = False, allow_member_discount: bool = False):
    """A flash sale through the service: `items` are (sku, flash_price_cents, allocation, per_customer_limit
    or None); by default running for an hour from now (scheduled, so the window decides). `status`
    draft, scheduled, paused or ended."""
    import datetime as _dt

    from siyu.core import clock as _clock
    from siyu.core.auth import system_principal as _system
    from siyu.promotions.service import flash_sales as _fs

    now = _clock.now()
    actor = _system(merchant.id)
    sale = _fs.create_flash_sale(
        session, actor=actor, title=title, starts_at=starts_at or now - _dt.timedelta(minutes=1),
        ends_at=ends_at or now + _dt.timedelta(hours=1), allow_coupons=allow_coupons,
        allow_member_discount=allow_member_discount,
        items=[_fs.FlashItemIn(sku_id=sku.id, flash_price_cents=price, allocation=allocation,
                               per_customer_limit=limit) for sku, price, allocation, limit in items])
    if status != "draft":
        _fs.schedule(session, sale.id, actor=actor)
    if status == "paused":
        _fs.pause(session, sale.id, actor=actor)
    elif status == "ended":
        _fs.end(session, sale.id, actor=actor)
    return sale


def flash_promotion(sale) -> dict:
    """The checkout body's `promotion` for buying through this flash sale."""
    return {"kind": "flash_sale", "campaign_id": sale.id}


# ---------------------------------------------------------------- team_buys

import datetime as _tb_dt  # noqa: E402

from siyu.catalog.models import Sku as _TbSku  # noqa: E402
from siyu.core import clock as _tb_clock  # noqa: E402
from siyu.core.auth import system_principal as _tb_system  # noqa: E402
from siyu.customers.models import Customer as _TbCustomer  # noqa: E402
from siyu.merchants.models import Merchant as _TbMerchant  # noqa: E402
from siyu.orders.models import Order as _TbOrder  # noqa: E402
from siyu.promotions.models.team_buys import Team as _TbTeam  # noqa: E402
from siyu.promotions.models.team_buys import TeamBuyCampaign as _TbCampaign  # noqa: E402
from siyu.promotions.schemas.team_buys import TeamBuyIn as _TbIn  # noqa: E402
from siyu.promotions.service import team_buys as _tb_service  # noqa: E402


def make_team_buy(session, *, merchant: _TbMerchant, sku: _TbSku | None = None, team_price_cents: int = 800,
                  team_size: int = 3, time_limit_minutes: int = 24 * 60, per_customer_limit: int | None = None,
                  on_full: str = "refund", status: str = "scheduled", title: str = "三人拼团",
                  starts_at: _tb_dt.datetime | None = None, ends_at: _tb_dt.datetime | None = None,
                  price_cents: int = 1000, stock: int = 100, lucky_winners: int | None = None) -> _TbCampaign:
    """A team-buy campaign of one SKU (made when not given), scheduled (running in its window: from
    an hour ago to a week ahead) unless `status="draft"`. `lucky_winners` makes it a lucky-draw campaign."""
    from tests.factories.orders import make_sku

    sku = sku or make_sku(session, merchant=merchant, price_cents=price_cents, stock=stock, title="拼团商品")
    now = _tb_clock.now()
    data = _TbIn(title=title, skus=[{"sku_id": sku.id, "team_price_cents": team_price_cents}], team_size=team_size,
                 time_limit_minutes=time_limit_minutes, per_customer_limit=per_customer_limit, on_full=on_full,
                 starts_at=starts_at or now - _tb_dt.timedelta(hours=1), ends_at=ends_at or now + _tb_dt.timedelta(days=7),
                 lucky_draw=lucky_winners is not None, lucky_winners=lucky_winners)
    system = _tb_system(merchant.id)
    campaign = _tb_service.create_campaign(session, actor=system, data=data)
    if status != "draft":
        _tb_service.change_status(session, campaign.id, actor=system, action="schedule")
    return campaign


def team_buy_order(session, *, customer: _TbCustomer, campaign: _TbCampaign, team: _TbTeam | int | None = None,
                   sku_id: int | None = None, quantity: int = 1) -> _TbOrder:
    """A pending order opening a new team (no `team`) or joining `team`."""
    from tests.factories.orders import place_order

    sku_id = sku_id or _tb_service.campaign_skus(session, campaign.id)[0].sku_id
    promotion = {"kind": "team_buy", "campaign_id": campaign.id}
    if team is not None:
        promotion["team_id"] = team if isinstance(team, int) else team.id
    return place_order(session, customer=customer, items=[(sku_id, quantity)], promotion=promotion)

# ---------------------------------------------------------------- bargains


def make_bargain_campaign(session, *, merchant, sku=None, start_price_cents: int = 10000,  # type: ignore[no-untyped-def]
                          floor_price_cents: int = 1000, expected_assists: int = 3, time_limit_minutes: int = 60,
                          max_bargains_per_customer: int = 1, new_customer_weight_bps: int = 10000,
                          allow_buy_at_current: bool = True, status: str = "scheduled", starts_at=None, ends_at=None,
                          title: str = "砍价免费拿"):
    """A bargain campaign on `sku` (a new one at the start price when not given), scheduled and running now."""
    import datetime as _dt

    from siyu.core import clock as _clock
    from siyu.core.auth import system_principal as _system
    from siyu.promotions.service import bargains as _bargains
    from tests.factories.orders import make_sku as _make_sku

    sku = sku or _make_sku(session, merchant=merchant, price_cents=start_price_cents, stock=1000)
    now = _clock.now()
    actor = _system(merchant.id)
    campaign = _bargains.create_campaign(session, actor=actor, data=_bargains.CampaignIn(
        title=title, sku_id=sku.id, start_price_cents=start_price_cents, floor_price_cents=floor_price_cents,
        expected_assists=expected_assists, time_limit_minutes=time_limit_minutes,
        starts_at=starts_at or now - _dt.timedelta(hours=1), ends_at=ends_at or now + _dt.timedelta(days=3),
        max_bargains_per_customer=max_bargains_per_customer, new_customer_weight_bps=new_customer_weight_bps,
        allow_buy_at_current=allow_buy_at_current))
    if status != "draft":
        _bargains.change_campaign_status(session, campaign.id, actor=actor, action="schedule")
    if status in ("paused", "ended"):
        _bargains.change_campaign_status(session, campaign.id, actor=actor, action="pause" if status == "paused" else "end")
    return campaign

# ---------------------------------------------------------------- ladders


def make_ladder(session, *, merchant, sku=None, tiers=((0, 10000), (3, 8000), (5, 6000)),  # type: ignore[no-untyped-def]
                per_customer_limit: int | None = None, status: str = "scheduled", starts_at=None, ends_at=None,
                title: str = "人越多越便宜"):
    """A ladder campaign on `sku` (a new one at the first tier's price when not given), running now."""
    import datetime as _dt

    from siyu.core import clock as _clock
    from siyu.core.auth import system_principal as _system
    from siyu.promotions.service import ladders as _ladders
    from tests.factories.orders import make_sku as _make_sku

    sku = sku or _make_sku(session, merchant=merchant, price_cents=tiers[0][1], stock=1000)
    now = _clock.now()
    actor = _system(merchant.id)
    campaign = _ladders.create_campaign(session, actor=actor, data=_ladders.CampaignIn(
        title=title, sku_id=sku.id, tiers=list(tiers), starts_at=starts_at or now - _dt.timedelta(hours=1),
        ends_at=ends_at or now + _dt.timedelta(days=2), per_customer_limit=per_customer_limit))
    if status != "draft":
        _ladders.change_campaign_status(session, campaign.id, actor=actor, action="schedule")
    return campaign

# ---------------------------------------------------------------- payment_offers


def make_offer_rule(session, *, merchant, offer_kind: str = "coupon", templates=None, name: str = "支付有礼",
                    priority: int = 100, min_paid_cents: int = 0, max_paid_cents: int | None = None,
                    customer_type: str = "any", tier_id: int | None = None, store_id: int | None = None,
                    link_url: str = "", title: str = "", conversion_days: int = 7, publish: bool = True):
    """A payment-offer rule through the service (published unless `publish=False`); a coupon rule gets a coupon
    template offering the "payment" channel when none is given."""
    import datetime as dt

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.promotions.service import payment_offers

    if templates is None and offer_kind != "link":
        templates = [make_coupon_template(session, merchant=merchant, name="支付券", amount_cents=500,
                                          per_customer_limit=100, channels=["payment"])]
    now = clock.now()
    actor = system_principal(merchant.id)
    rule = payment_offers.create_rule(session, actor=actor, data=payment_offers.OfferRuleIn(
        name=name, offer_kind=offer_kind, priority=priority, min_paid_cents=min_paid_cents,
        max_paid_cents=max_paid_cents, customer_type=customer_type, tier_id=tier_id, store_id=store_id,
        template_ids=[t.id for t in templates or []], link_url=link_url, title=title, conversion_days=conversion_days,
        starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(days=30)))
    if publish:
        payment_offers.change_status(session, rule.id, actor=actor, action="publish")
    return rule


# ---------------------------------------------------------------- popups


def make_popup_rule(session, *, merchant, audience: str = "everyone", content_kind: str = "link", template=None,
                    name: str = "弹窗", title: str = "新人礼", link_url: str = "/shop/x/", pages: str = "all",
                    priority: int = 100, cap_per_day: int = 1, cap_total: int = 3, dormant_days: int = 0,
                    tier_id: int | None = None, tag_id: int | None = None, conversion_days: int = 7,
                    publish: bool = True):
    """A pop-up rule through the service (published unless `publish=False`); a coupon pop-up gets a template
    offering the "campaign" channel when none is given."""
    import datetime as dt

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.promotions.service import popups

    if content_kind == "coupon" and template is None:
        template = make_coupon_template(session, merchant=merchant, name="弹窗券", amount_cents=300,
                                        per_customer_limit=1, channels=["campaign"])
    now = clock.now()
    actor = system_principal(merchant.id)
    rule = popups.create_rule(session, actor=actor, data=popups.PopupRuleIn(
        name=name, audience=audience, content_kind=content_kind, title=title, priority=priority,
        dormant_days=dormant_days, tier_id=tier_id, tag_id=tag_id, template_id=template.id if template else None,
        link_url=link_url if content_kind == "link" else "", pages=pages, cap_per_day=cap_per_day,
        cap_total=cap_total, conversion_days=conversion_days, starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=30)))
    if publish:
        popups.change_status(session, rule.id, actor=actor, action="publish")
    return rule
