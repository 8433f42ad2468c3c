"""membership: stored_value time-driven work."""
