"""membership: members logic."""
