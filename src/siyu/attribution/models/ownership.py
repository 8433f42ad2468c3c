"""attribution: ownership tables."""
