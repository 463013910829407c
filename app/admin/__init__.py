"""Operator commands over the stores: teams and plugin jobs."""
