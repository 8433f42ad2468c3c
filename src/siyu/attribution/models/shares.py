"""attribution: shares tables."""
