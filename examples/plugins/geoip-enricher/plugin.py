# Adds $geoip_* properties from meta.geoip, and sets them on the person: the latest
# location with $set, the first one ever seen with $set_once ($initial_geoip_*).


def english_name(record, field):
    names = (record.get(field) or {}).get("names") or {}
    return names.get("en")


def location_properties(record):
    location = record.get("location") or {}
    country = record.get("country") or {}
    continent = record.get("continent") or {}
    subdivisions = record.get("subdivisions") or []
    found = {
        "$geoip_city_name": english_name(record, "city"),
        "$geoip_country_name": english_name(record, "country"),
        "$geoip_country_code": country.get("iso_code"),
        "$geoip_continent_name": english_name(record, "continent"),
        "$geoip_continent_code": continent.get("code"),
        "$geoip_postal_code": (record.get("postal") or {}).get("code"),
        "$geoip_latitude": location.get("latitude"),
        "$geoip_longitude": location.get("longitude"),
        "$geoip_time_zone": location.get("time_zone"),
    }
    if subdivisions:
        found["$geoip_subdivision_1_code"] = subdivisions[0].get("iso_code")
        found["$geoip_subdivision_1_name"] = (subdivisions[0].get("names") or {}).get("en")
    return {key: value for key, value in found.items() if value is not None}


def process_event(event, meta):
    properties = event.get("properties") or {}
    ip = properties.get("$ip") or event.get("ip")
    if not ip or properties.get("$geoip_disable"):
        return event
    try:
        record = meta.geoip.locate(ip)
    except Exception:  # the server has no GeoIP database
        return event
    if record is None:
        return event
    found = location_properties(record)
    properties.update(found)
    set_props = properties.get("$set") or {}
    set_once = properties.get("$set_once") or {}
    for key, value in found.items():
        set_props[key] = value
        set_once["$initial_geoip_" + key[len("$geoip_") :]] = value
    properties["$set"] = set_props
    properties["$set_once"] = set_once
    event["properties"] = properties
    return event
