"""attribution logic, one module per area."""
