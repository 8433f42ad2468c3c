"""The membership tables, one module per area."""

from siyu.membership.models import (
    members,  # noqa: F401
    points,  # noqa: F401
    stored_value,  # noqa: F401
)
