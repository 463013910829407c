# An example plugin: process_event adds a property, on_event keeps a record per stored event.


def setup_plugin(meta):
    meta.global_["property"] = meta.config.get("property") or "stamped_by"
    meta.global_["value"] = meta.config.get("value") or "event-stamp"


def process_event(event, meta):
    event["properties"][meta.global_["property"]] = meta.global_["value"]
    return event


def on_event(event, meta):
    meta.storage.set(
        "stored:" + event["uuid"],
        {"event": event["event"], "distinct_id": event["distinct_id"]},
    )
