"""Measurements printed as JSON by `siyu bench …`. Tests never assert timings."""
