"""Community group buying: leaders, pickup points, waves, cut-off manifests, pickup verification, the community map."""
