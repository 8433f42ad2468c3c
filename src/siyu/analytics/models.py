"""Analytics: the merchant's analytics settings (target channel mix, RFM thresholds) and saved RFM
segments that guides and campaigns target."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
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

