"""membership: stored_value reactions to other domains' events."""
