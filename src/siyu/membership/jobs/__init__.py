"""The membership jobs, one module per area."""

from siyu.membership.jobs import (
    members,  # noqa: F401
    stored_value,  # noqa: F401
)
