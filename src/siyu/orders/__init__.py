"""Orders: cart, checkout, orders, lifecycle, after-sales and fulfilment."""
