"""Analytics: the merchant's analytics settings (target channel mix, RFM thresholds) and saved RFM
segments that guides and campaigns target."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class AnalyticsSettings(IdMixin, Base):
    """One row per merchant; absent means the defaults (40/20/20/20 mix, quintile RFM)."""

    __tablename__ = "analytics_settings"

    merchant_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    target_store_bps: Mapped[int] = mapped_column(Integer, default=4000)
    target_platform_bps: Mapped[int] = mapped_column(Integer, default=2000)
    target_content_bps: Mapped[int] = mapped_column(Integer, default=2000)
    target_social_bps: Mapped[int] = mapped_column(Integer, default=2000)
    # "quintiles" (scores from the merchant's own distribution) or "thresholds" (rfm_thresholds).
    rfm_method: Mapped[str] = mapped_column(String(20), default="quintiles")
    # {"r_days": [a, b, c, d], "f_orders": [...], "m_cents": [...]}: four ascending cut points each.
    rfm_thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class SavedSegment(IdMixin, Base):
    """An RFM segment saved as a customer filter: its members are recomputed whenever they are listed."""

    __tablename__ = "analytics_saved_segments"
    __scope__ = {"store": "store_id", "owner": "owner_id"}

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(60))
    segment: Mapped[str] = mapped_column(String(20))
    # Optional narrowing: a store, a guide (owner of the customers).
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)



# ---------------------------------------------------------------- aggregates (maintained on order events)
# Rebuilt from the source tables by `service.aggregates.rebuild`; the views read them once a merchant's
# aggregates have been built (AggregateState), and compute from the source rows before that.


class AggregateState(IdMixin, Base):
    """One row per merchant whose aggregates were built: from then on the order handlers keep them."""

    __tablename__ = "analytics_aggregate_state"

    merchant_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    built_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    # The last Shanghai day counted in analytics_people_days / _counts (later days are read from the
    # events and orders themselves); the job `analytics.daily_people` moves it to yesterday.
    people_through: Mapped[dt.date | None] = mapped_column()
    # The last outbox event the rebuild saw the effects of: the handlers skip events up to it.
    events_through: Mapped[int] = mapped_column(BigInteger, default=0)
    # Today's people so far (`service.people.fold_today`, every job tick): the day of the provisional rows
    # in analytics_people_days (None: none), and when they were last brought up to date.
    today_day: Mapped[dt.date | None] = mapped_column()
    today_walked_at: Mapped[dt.datetime | None] = mapped_column()
    # When a rebuild last filled analytics_customer_dim_stats (None: built before that table existed, so
    # its rows are incomplete and RFM with a channel or campaign reads the orders until the next rebuild).
    dims_built_at: Mapped[dt.datetime | None] = mapped_column()


class CustomerPurchaseStats(IdMixin, Base):
    """A customer's paid goods orders in one row. "Kept" orders are those not refunded whole; first/last
    and the acquisition facts are of kept orders (the first by paid time, then id). `month_bits` has bit k
    set when the customer kept an order in the k-th Shanghai month after the first one (k = 1 .. 62)."""

    __tablename__ = "analytics_customer_stats"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    paid_orders: Mapped[int] = mapped_column(Integer, default=0)
    kept_orders: Mapped[int] = mapped_column(Integer, default=0)
    kept_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    first_paid_at: Mapped[dt.datetime | None] = mapped_column()
    # The second kept order's payment (None with fewer than two): whether the customer had bought again by
    # any past moment (the leaderboard's repurchase "by the end of the period") without reading orders.
    second_paid_at: Mapped[dt.datetime | None] = mapped_column()
    last_paid_at: Mapped[dt.datetime | None] = mapped_column()
    first_month: Mapped[dt.date | None] = mapped_column()
    first_channel: Mapped[str] = mapped_column(String(200), default="")
    first_group: Mapped[str] = mapped_column(String(20), default="")
    first_campaign: Mapped[str] = mapped_column(String(200), default="")
    month_bits: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("merchant_id", "customer_id"),
                      # cohorts: the acquisition months' rows counted per group and months-bought bitmask
                      # from the index alone, narrowed to a first touch channel or campaign too
                      Index("ix_analytics_customer_stats_cohorts", "merchant_id", "first_month", "first_group",
                            "month_bits", "first_channel", "first_campaign"),
                      # RFM: the quintile cut points are read as the n-th value along these; the first
                      # also covers the scoring scan (narrower than the rows)
                      Index("ix_analytics_customer_stats_rfm", "merchant_id", "kept_orders", "kept_cents",
                            "last_paid_at"),
                      Index("ix_analytics_customer_stats_kept_cents", "merchant_id", "kept_cents"),
                      Index("ix_analytics_customer_stats_last_paid", "merchant_id", "last_paid_at"),
                      # the leaderboard's repurchase: owned customers looked up by id, read from the index alone
                      Index("ix_analytics_customer_stats_paid_times", "merchant_id", "customer_id", "first_paid_at",
                            "second_paid_at"))


class CustomerDimStats(IdMixin, Base):
    """A customer's kept goods orders (not refunded whole) of one dimension, in one row: `dim` is
    "g:<channel group>", "c:<touch channel>" or "k:<campaign>" of the order (an order counts in its group,
    and in its channel and campaign when it has them). RFM with a channel or campaign filter is scored
    over these rows as RFM without one is over `CustomerPurchaseStats`. Only dimensions with a kept order
    have a row."""

    __tablename__ = "analytics_customer_dim_stats"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    dim: Mapped[str] = mapped_column(String(210))
    kept_orders: Mapped[int] = mapped_column(Integer, default=0)
    kept_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    last_paid_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("merchant_id", "dim", "customer_id"),
                      # a customer's rows (recomputed on a refund or merge)
                      Index("ix_analytics_customer_dim_stats_customer", "merchant_id", "customer_id"),
                      # RFM: the quintile cut points are read as the n-th value along these; the first
                      # also covers the scoring scan
                      Index("ix_analytics_customer_dim_stats_rfm", "merchant_id", "dim", "kept_orders", "kept_cents",
                            "last_paid_at"),
                      Index("ix_analytics_customer_dim_stats_kept_cents", "merchant_id", "dim", "kept_cents"),
                      Index("ix_analytics_customer_dim_stats_last_paid", "merchant_id", "dim", "last_paid_at"))


class DailySales(IdMixin, Base):
    """Paid goods orders per Shanghai day of payment × store × owner × attributed guide × touch channel ×
    channel group × campaign (0 / "" for none). Refunds are booked to the day of the sale."""

    __tablename__ = "analytics_daily_sales"
    __scope__ = {"store": "store_id", "owner": "owner_id"}

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[dt.date] = mapped_column()
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    owner_id: Mapped[int] = mapped_column(BigInteger, default=0)
    guide_id: Mapped[int] = mapped_column(BigInteger, default=0)
    channel: Mapped[str] = mapped_column(String(200), default="")
    grp: Mapped[str] = mapped_column(String(20), default="")
    campaign: Mapped[str] = mapped_column(String(200), default="")
    orders: Mapped[int] = mapped_column(Integer, default=0)
    gmv_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("merchant_id", "day", "store_id", "owner_id", "guide_id", "channel", "grp",
                                       "campaign", name="uq_analytics_daily_sales_bucket"),)


class PeopleDay(IdMixin, Base):
    """One person's funnel step on one Shanghai day (see `service.people`): the person ("c<customer id>",
    else "v<visitor cookie>"), the step (`people.STEPS` codes: the five funnel events, a GMV visitor, a
    buyer), the touch of the day's first such event (its channel group, its touch channel when a known one,
    the campaign of its share or order), the customer's store and owner when the day was counted, the
    person's previous day with the step (`prev_day`; 1900-01-01 for none), for a pay row the day the person
    reached two paid goods orders (`second_day`: 1900-01-01 when already, 9999-12-31 not yet) and their
    paid goods orders by the day's end (`orders`, capped at 2). The counts in `PeopleCount` are these rows
    summed; a guide's, a touch channel's or a campaign's people are counted from these rows themselves
    (their indexes); a person is re-counted from them when merged or signed in."""

    __tablename__ = "analytics_people_days"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[str] = mapped_column(String(80))
    step: Mapped[int] = mapped_column(SmallInteger)
    day: Mapped[dt.date] = mapped_column()
    grp: Mapped[str] = mapped_column(String(20), default="")
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    prev_day: Mapped[dt.date] = mapped_column()
    second_day: Mapped[dt.date] = mapped_column()
    orders: Mapped[int] = mapped_column(SmallInteger, default=0)
    owner_id: Mapped[int] = mapped_column(BigInteger, default=0)
    channel: Mapped[str] = mapped_column(String(20), default="")
    campaign: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("merchant_id", "person", "step", "day", name="uq_analytics_people_days"),
                      Index("ix_analytics_people_days_owner", "merchant_id", "owner_id", "day"))


class PeopleCount(IdMixin, Base):
    """`PeopleDay` rows counted per Shanghai day × step × touch (channel group, touch channel, campaign) ×
    store × previous day × day of the second paid order: a person is in a period [s, e] once, on the rows
    of its days with `prev_day < s`, so a period's distinct people are a SUM over a few thousand rows a
    day, for the whole merchant, a store, a channel or a campaign (a guide's people are counted from the
    `PeopleDay` rows along their owner index)."""

    __tablename__ = "analytics_people_counts"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[dt.date] = mapped_column()
    step: Mapped[int] = mapped_column(SmallInteger)
    grp: Mapped[str] = mapped_column(String(20), default="")
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    prev_day: Mapped[dt.date] = mapped_column()
    second_day: Mapped[dt.date] = mapped_column()
    channel: Mapped[str] = mapped_column(String(20), default="")
    campaign: Mapped[str] = mapped_column(String(200), default="")
    n: Mapped[int] = mapped_column(Integer, default=0)

    # unique, and on PostgreSQL covering `n` too: a period's counts are read by index alone (a range of
    # (step, day)), which the planner otherwise answered with a scan of the whole table (2.5 s at 20M rows)
    __table_args__ = (Index("uq_analytics_people_counts", "merchant_id", "step", "day", "grp", "store_id", "prev_day",
                            "second_day", "channel", "campaign", unique=True, postgresql_include=["n"]),)


# ---------------------------------------------------------------- RFM snapshots (written by the job analytics.rfm_snapshots)


class RfmSnapshot(IdMixin, Base):
    """RFM segment counts and kept value of one merchant as of the end of one Shanghai day, per scope: the
    whole merchant (store 0, owner 0), one store, one owner (guide), one store × owner. `basis` names the
    scoring ("quintiles", or "thresholds:" and the cut points), since quintile cut points are taken within
    each scope. A row with an empty `segment` of the whole merchant marks the day as written (`customers`:
    the merchant's scored customers); each scope with someone scored has one too (its scored customers, cut
    points and score distribution); a scope without rows had nobody scored. The RFM trend reads the day
    before its period here, and a period ending on a past day its report, instead of recomputing every
    customer's history."""

    __tablename__ = "analytics_rfm_snapshots"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[dt.date] = mapped_column()
    basis: Mapped[str] = mapped_column(String(200))
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    owner_id: Mapped[int] = mapped_column(BigInteger, default=0)
    segment: Mapped[str] = mapped_column(String(20), default="")
    # "" for every kept order; else one dimension's (`CustomerDimStats.dim`: "g:" a channel group, "c:" a
    # touch channel, "k:" a campaign), scored within it, for the whole merchant only (store 0, owner 0)
    dim: Mapped[str] = mapped_column(String(210), default="")
    customers: Mapped[int] = mapped_column(Integer, default=0)
    value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # On a scope's row with an empty `segment` (the scope's scored customers and their value): the rest
    # of that scope's report as of the day, {"cuts": {"r"|"f"|"m": [4 ints]}, "distribution": {"r"|"f"|"m":
    # [customers scoring 1..5]}}, so a period ending that day is read from here. None in snapshots
    # written before it was kept.
    scores: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (UniqueConstraint("merchant_id", "day", "basis", "store_id", "owner_id", "dim", "segment",
                                       name="uq_analytics_rfm_snapshots_row"),)
