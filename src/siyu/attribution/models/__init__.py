"""The attribution tables, one module per area."""

from siyu.attribution.models import (
    ownership,  # noqa: F401
    shares,  # noqa: F401
)
