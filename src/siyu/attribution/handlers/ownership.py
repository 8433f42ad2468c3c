"""attribution: ownership reactions to other domains' events."""
