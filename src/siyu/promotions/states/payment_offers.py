"""promotions: payment marketing (支付营销): offers on the payment result page — statuses and transitions.

Rules share the campaign machine of split coupons (draft, scheduled, live, paused, ended)."""

from siyu.promotions.states.split_coupons import CAMPAIGN_LABELS, CAMPAIGN_MACHINE, CampaignStatus

__all__ = ["CAMPAIGN_LABELS", "CAMPAIGN_MACHINE", "CampaignStatus"]
