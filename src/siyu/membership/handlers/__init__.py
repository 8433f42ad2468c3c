"""The membership handlers, one module per area."""

from siyu.membership.handlers import (
    members,  # noqa: F401
    stored_value,  # noqa: F401
)
