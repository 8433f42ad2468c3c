"""promotions: coupon templates, claiming, my coupons, the coupon contributor and the best-coupon suggestion — request and response models."""
