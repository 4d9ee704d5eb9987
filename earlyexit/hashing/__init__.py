"""The hash functions that assign each token its exit layer, and the fitted-hash files the workflow writes."""
