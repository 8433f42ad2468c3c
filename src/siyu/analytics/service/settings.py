"""The merchant's analytics settings: the target channel mix (bps of sales per group, summing to 100%) and
how RFM scores are cut (quintiles of the merchant's own customers, or fixed thresholds)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.models import AnalyticsSettings
from siyu.analytics.service.common import GROUPS
from siyu.core import audit
from siyu.core.auth import Principal
from siyu.core.errors import ValidationFailed
from siyu.core.i18n import gettext as _

DEFAULT_TARGET_MIX = {"store": 4000, "platform": 2000, "content": 2000, "social": 2000}
RFM_METHODS = ("quintiles", "thresholds")
THRESHOLD_KEYS = ("r_days", "f_orders", "m_cents")


@dataclasses.dataclass(frozen=True)
class Settings:
    target_mix_bps: dict[str, int]
    rfm_method: str
    rfm_thresholds: dict[str, list[int]]


def get_settings(session: Session, *, merchant_id: int) -> Settings:
    row = session.scalar(select(AnalyticsSettings).where(AnalyticsSettings.merchant_id == merchant_id))
    if row is None:
        return Settings(dict(DEFAULT_TARGET_MIX), "quintiles", {})
    return Settings({"store": row.target_store_bps, "platform": row.target_platform_bps,
                     "content": row.target_content_bps, "social": row.target_social_bps},
                    row.rfm_method, dict(row.rfm_thresholds or {}))


def _clean_thresholds(value: Any, errors: dict[str, str]) -> dict[str, list[int]]:
    if not value:
        return {}
    out: dict[str, list[int]] = {}
    for key in THRESHOLD_KEYS:
        cuts = value.get(key) if isinstance(value, dict) else None
        if cuts is None:
            continue
        if (not isinstance(cuts, list) or len(cuts) != 4 or not all(isinstance(c, int) and 0 <= c < 2**53 for c in cuts)
                or cuts != sorted(set(cuts))):
            errors[f"rfm_thresholds.{key}"] = _("Four ascending whole numbers.")
            continue
        out[key] = cuts
    return out


def update_settings(session: Session, *, actor: Principal, target_mix_bps: dict[str, int] | None = None,
                    rfm_method: str | None = None, rfm_thresholds: dict[str, list[int]] | None = None) -> Settings:
    """Change the target mix (each group 0..10000 bps, together exactly 10000) and the RFM method."""
    actor.require("merchant.manage")
    errors: dict[str, str] = {}
    current = get_settings(session, merchant_id=actor.merchant_id)
    mix = dict(current.target_mix_bps)
    if target_mix_bps is not None:
        for g in GROUPS:
            v = target_mix_bps.get(g, mix[g])
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 10_000:
                errors[f"target_mix_bps.{g}"] = _("Between 0 and 10000.")
            else:
                mix[g] = v
        if not errors and sum(mix.values()) != 10_000:
            errors["target_mix_bps"] = _("The target mix must add up to 100% (10000 bps).")
    method = current.rfm_method if rfm_method is None else rfm_method
    if method not in RFM_METHODS:
        errors["rfm_method"] = _("Unknown RFM method.")
    thresholds = current.rfm_thresholds if rfm_thresholds is None else _clean_thresholds(rfm_thresholds, errors)
    if errors:
        raise ValidationFailed(details={"fields": errors})
    row = session.scalar(select(AnalyticsSettings).where(AnalyticsSettings.merchant_id == actor.merchant_id))
    if row is None:
        row = AnalyticsSettings(merchant_id=actor.merchant_id)
        session.add(row)
    row.target_store_bps, row.target_platform_bps = mix["store"], mix["platform"]
    row.target_content_bps, row.target_social_bps = mix["content"], mix["social"]
    row.rfm_method, row.rfm_thresholds = method, thresholds
    session.flush()
    audit.record(session, actor=actor, action="analytics.settings_updated", target_type="analytics_settings",
                 details={"target_mix_bps": mix, "rfm_method": method})
    return get_settings(session, merchant_id=actor.merchant_id)


def settings_dict(s: Settings) -> dict[str, Any]:
    return {"target_mix_bps": s.target_mix_bps, "rfm_method": s.rfm_method, "rfm_thresholds": s.rfm_thresholds}
