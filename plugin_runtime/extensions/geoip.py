"""`meta.geoip`: `locate(ip)` -> the city record as plain dicts, or None.

`meta.geoip` itself is None when the process has no GeoIP database, so a plugin can test
for it instead of catching errors.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from plugin_runtime.backends import GeoIPReader


class GeoIP:
    __slots__ = ("_reader",)

    def __init__(self, reader: GeoIPReader) -> None:
        self._reader = reader

    def locate(self, ip: str) -> dict[str, Any] | None:
        """The MaxMind City record of `ip`; None for an unknown, private or malformed address."""
        if not isinstance(ip, str):
            return None
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        record = self._reader.city(ip.strip())
        # a copy, so one plugin editing its record cannot change what the next one sees
        return copy.deepcopy(record) if record is not None else None


def build_geoip(reader: GeoIPReader | None) -> GeoIP | None:
    return GeoIP(reader) if reader is not None else None
