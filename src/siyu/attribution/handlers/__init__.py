"""The attribution handlers, one module per area."""

from siyu.attribution.handlers import (
    ownership,  # noqa: F401
    shares,  # noqa: F401
)
