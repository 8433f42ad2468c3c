"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — time-driven work."""
