"""The streaming graph: topics, agents, tables and timers."""
