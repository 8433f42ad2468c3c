"""Keyword-default factories, one module per domain (DESIGN.md: tests/factories/<domain>.py)."""
