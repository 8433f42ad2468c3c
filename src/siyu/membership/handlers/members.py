"""membership: members reactions to other domains' events."""
