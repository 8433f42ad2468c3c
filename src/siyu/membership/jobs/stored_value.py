"""membership: stored value has no time-driven work of its own.

Unpaid orders (goods with a stored-value part, and recharge orders) expire in the orders domain's
tick; its order.cancelled gives the balance back / cancels the recharge (handlers/stored_value.py),
and a handler that failed is retried by the events tick. Stored value does not expire.
"""
