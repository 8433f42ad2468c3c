"""Analytics: the console overview and the figures built on the lower domains' services."""
