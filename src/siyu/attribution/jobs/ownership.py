"""attribution: ownership time-driven work."""
