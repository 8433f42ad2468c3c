"""promotions: interactive pop-ups (互动营销) on the H5 shop — statuses and transitions.

Rules share the campaign machine of split coupons (draft, scheduled, live, paused, ended)."""

from siyu.promotions.states.split_coupons import CAMPAIGN_LABELS, CAMPAIGN_MACHINE, CampaignStatus

__all__ = ["CAMPAIGN_LABELS", "CAMPAIGN_MACHINE", "CampaignStatus"]
