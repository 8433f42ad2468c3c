"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — statuses and transitions."""
