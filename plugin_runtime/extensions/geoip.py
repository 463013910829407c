"""`meta.geoip`: `locate(ip)` -> the city record as plain dicts, or None.

Without a GeoIP database `locate` raises GeoIPUnavailableError with the original's
message, which plugins catch; `meta.geoip` is always there.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from plugin_runtime.backends import GeoIPReader
from plugin_runtime.errors import GeoIPUnavailableError

UNAVAILABLE = (
    "IP location capabilities are not available in this PostHog instance "
    "(the server has no GeoIP database)"
)


class GeoIP:
    __slots__ = ("_reader",)

    def __init__(self, reader: GeoIPReader | None) -> None:
        self._reader = reader

    def locate(self, ip: str) -> dict[str, Any] | None:
        """The MaxMind City record of `ip`; None for an unknown, private or malformed
        address. Raises GeoIPUnavailableError when the server has no database."""
        if self._reader is None:
            raise GeoIPUnavailableError(UNAVAILABLE)
        if not isinstance(ip, str):
            return None
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        record = self._reader.city(ip.strip())
        # a copy, so one plugin editing its record cannot change what the next one sees
        return copy.deepcopy(record) if record is not None else None


def build_geoip(reader: GeoIPReader | None) -> GeoIP:
    return GeoIP(reader)
