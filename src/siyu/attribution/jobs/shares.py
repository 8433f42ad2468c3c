"""attribution: shares time-driven work."""
