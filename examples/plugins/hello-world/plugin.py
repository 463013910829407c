# Adds a greeting to every event and counts the day's events in the cache.

COUNTER_TTL_SECONDS = 2 * 24 * 3600  # a day's counter outlives its day by one, then expires


def process_event(event, meta):
    day = (event.get("timestamp") or event.get("now") or "")[:10]
    key = "events:" + day
    count = meta.cache.incr(key)
    if count == 1:
        meta.cache.expire(key, COUNTER_TTL_SECONDS)
    event["properties"]["greeting"] = meta.config.get("greeting") or "hello"
    event["properties"]["events_today"] = count
    return event
