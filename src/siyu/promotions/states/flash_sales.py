"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — statuses and transitions."""
