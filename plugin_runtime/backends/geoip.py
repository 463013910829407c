"""The real GeoIPReader: a MaxMind City database through geoip2, one reader per process.

Tests and the embedded mode use the GeoLite2-City file bundled by `maxminddb-geolite2`;
production passes a configured .mmdb path.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

import geoip2.database
import geoip2.errors


def bundled_database_path() -> str:
    """The GeoLite2-City file shipped by the maxminddb-geolite2 package."""
    import _maxminddb_geolite2

    return str(_maxminddb_geolite2.geolite2_database())


class MaxMindGeoIP:
    """City lookups as plain dicts (the MaxMind record shape: city, country, location...)."""

    def __init__(self, path: str) -> None:
        self._reader = geoip2.database.Reader(path)

    def city(self, ip: str) -> dict[str, Any] | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if not address.is_global:
            return None
        try:
            record = self._reader.city(ip)
        except geoip2.errors.AddressNotFoundError:
            return None
        raw: dict[str, Any] = record.to_dict()
        return raw

    def close(self) -> None:
        self._reader.close()


@functools.cache
def shared_geoip(path: str | None = None) -> MaxMindGeoIP:
    """The process's one reader of `path` (default: the bundled database)."""
    return MaxMindGeoIP(path or bundled_database_path())
