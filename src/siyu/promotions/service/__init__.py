"""promotions logic, one module per area."""
