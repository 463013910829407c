# Strips configured properties from every event. The list is parsed once, in setup.


def setup_plugin(meta):
    paths = []
    for item in meta.config["properties"].split(","):
        item = item.strip()
        if item:
            paths.append(item.split("."))
    meta.global_["paths"] = paths


def remove_path(container, path):
    for part in path[:-1]:
        container = container.get(part)
        if not isinstance(container, dict):
            return
    container.pop(path[-1], None)


def process_event(event, meta):
    properties = event.get("properties") or {}
    for path in meta.global_["paths"]:
        remove_path(properties, path)
    event["properties"] = properties
    return event
