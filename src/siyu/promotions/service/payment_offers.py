"""promotions: payment marketing (支付营销): what the payment result page offers, claims and click-throughs — logic."""
