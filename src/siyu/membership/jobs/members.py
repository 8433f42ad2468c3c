"""membership: members time-driven work."""
