"""membership: members tables."""
