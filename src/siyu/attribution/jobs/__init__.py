"""The attribution jobs, one module per area."""

from siyu.attribution.jobs import (
    ownership,  # noqa: F401
    shares,  # noqa: F401
)
