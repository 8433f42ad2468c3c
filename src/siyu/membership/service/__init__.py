"""membership logic, one module per area."""
