"""One module per `meta` field (and per sandbox global) handed to plugin code.

Every object here is reachable from plugin code, so each keeps its backend and identity
behind underscore names (RestrictedPython refuses `_x` attribute access) and exposes
only the documented methods.
"""
