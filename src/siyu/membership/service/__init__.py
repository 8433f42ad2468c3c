"""membership logic, one module per area. Importing the package registers membership's pricing
contributors (tier discount, free shipping, points, points mall, stored value) with the orders pipeline."""

from siyu.membership.service import (
    members,  # noqa: F401
    points,  # noqa: F401
    points_checkout,  # noqa: F401
    points_mall,  # noqa: F401
    stored_value,  # noqa: F401
    tiers,  # noqa: F401
)
