"""Payments: a payment per attempt to pay an order, through a provider (sandbox, WeChat Pay, stored
value), its refunds, and a log of every notification a provider sent us."""
