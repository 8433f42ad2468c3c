"""membership: stored_value logic."""
