"""The analytics jobs, one module per area."""

from siyu.analytics.jobs import aggregates  # noqa: F401
