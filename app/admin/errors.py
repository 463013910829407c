"""The error every operator command raises for a request it cannot carry out."""

from __future__ import annotations


class AdminError(Exception):
    """What the operator asked for cannot be done; the message says why."""
