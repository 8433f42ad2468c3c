"""The analytics handlers, one module per area."""

from siyu.analytics.handlers import aggregates  # noqa: F401
