"""The analytics jobs, one module per area."""

from siyu.analytics.jobs import aggregates, rfm  # noqa: F401
