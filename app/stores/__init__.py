"""Stores the pipeline reads and writes: teams, persons, events, plugin configs."""
