"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — reactions to other domains' events."""
