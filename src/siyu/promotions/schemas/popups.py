"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — request and response models."""
