"""Promotions: the marketing toolkit. Coupons and split coupons, flash sales, team purchase, bargains,
ladder prices, payment marketing and pop-ups; each a campaign set up in the console and played in the H5 shop.
Campaign prices and coupons reach checkout through the orders pricing-contributor protocol."""
