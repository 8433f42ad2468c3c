"""membership: stored_value tables."""
