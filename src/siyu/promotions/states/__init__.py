"""The promotions statuses and their transition tables, one module per area."""
