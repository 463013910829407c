"""Operator commands over the stores: teams (and, to come, plugins)."""
