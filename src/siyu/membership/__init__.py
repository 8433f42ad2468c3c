"""Membership economy: member cards, tiers, growth, points, paid membership and stored value."""
