"""The promotions request and response models, one module per area."""
