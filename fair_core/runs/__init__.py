"""A run's state: its directory, its store and records, its events, its splits, its disk space."""
