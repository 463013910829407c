"""`meta.global_`: a dict private to one plugin config's instance, from `setup_plugin` on.

It is a plain dict so plugins can keep anything in it; it starts empty on every (re)load,
as in the original, and is never shared between configs.
"""

from __future__ import annotations

from typing import Any


def build_global() -> dict[str, Any]:
    return {}
