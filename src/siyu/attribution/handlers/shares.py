"""attribution: shares reactions to other domains' events."""
