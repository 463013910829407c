"""Replicator: sends every exported batch to the capture endpoint of another PostHog instance.

A Python port of PostHog/posthog-plugin-replicator at commit 12c4273 (index.ts), the last
version built on exportEvents; later versions use onEvent.
"""

# `fetch` and `RetryError` are sandbox globals the server provides:
# ruff: noqa: F821

import json
import re

# fields the target instance sets itself from the capture request, or must not be given
NOT_SENT = ("team_id", "ip", "person")


def parse_int(value):
    # JavaScript's parseInt: leading digits count, anything unparsable is NaN (None here)
    match = re.match(r"\s*([-+]?\d+)", str(value))
    return int(match.group(1)) if match else None


def ignored_events(config):
    names = config.get("events_to_ignore")
    if not names or names.strip() == "":
        return set()
    return {name.strip() for name in names.split(",")}


def reverse_autocapture_event(autocapture_event):
    # The plugin server turns `properties.$elements` into `elements` (renaming $el_text to
    # text and gathering attr__* into attributes); capture expects the client's shape.
    # Adapted from posthog's plugin-server/src/utils/db/elements-chain.ts.
    event = {k: v for k, v in autocapture_event.items() if k not in ("elements", "properties")}
    elements = autocapture_event.get("elements")
    if elements is None:
        if "properties" in autocapture_event:
            event["properties"] = autocapture_event["properties"]
        return event
    client_elements = []
    for element in elements:
        client = {k: v for k, v in element.items() if k not in ("attributes", "text")}
        # an element without text sends no $el_text (JSON.stringify drops undefined)
        if "text" in element:
            client["$el_text"] = element["text"]
        client.update(element.get("attributes") or {})
        client_elements.append(client)
    event["properties"] = {
        **(autocapture_event.get("properties") or {}),
        "$elements": client_elements,
    }
    return event


def export_events(events, meta):
    config = meta.config
    events_to_ignore = ignored_events(config)
    batch = []
    for event in events:
        if event.get("event") in events_to_ignore:
            continue

        sendable_event = {k: v for k, v in event.items() if k not in NOT_SENT}
        sendable_event["token"] = config["project_api_key"]

        ip = event.get("ip")
        if ip:
            # the instance would otherwise take the exporting server's address as the user's
            sendable_event["properties"] = {**sendable_event["properties"], "$ip": ip}

        if sendable_event.get("event") == "$autocapture":
            final_sendable_event = reverse_autocapture_event(sendable_event)
        else:
            final_sendable_event = sendable_event

        # parseInt(...) || 1: 0 and unparsable values both mean once
        replication = parse_int(config.get("replication")) or 1
        batch.extend([final_sendable_event] * replication)

    if not batch:
        return

    host = config["host"]
    target = host[:-1] if host.endswith("/") else host
    batch_description = str(len(batch)) + " event" + ("s" if len(batch) > 1 else "")
    try:
        # no timeout of our own: fetch's default applies, and a timeout is retried below
        res = fetch(
            "https://" + target + "/e",
            method="POST",
            body=json.dumps(batch, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
    except (ConnectionError, TimeoutError) as err:
        meta.logger.error(
            "Failed to submit " + batch_description + " to " + host + " due to network error",
            err,
        )
        raise RetryError("Target is unreachable: " + str(err)) from err
    except Exception as err:
        # anything else (a bad host, say) is not cured by a retry: stop the export
        meta.logger.error(
            "Failed to submit " + batch_description + " to " + host + " due to unexpected error",
            err,
        )
        raise

    status = str(res.status) + " " + res.status_text
    if res.ok:
        meta.logger.info("Flushed " + batch_description + " to " + host)
    elif res.status >= 500:
        meta.logger.error(
            "Failed to submit "
            + batch_description
            + " to "
            + host
            + " due to server error: "
            + status
        )
        raise RetryError("Server error: " + status)
    else:
        # node-fetch follows redirects, so this is a 4xx. Old events may fail newer, stricter
        # checks of the target; skipping them keeps the rest of the export going.
        meta.logger.warning(
            "Skipping " + batch_description + ", rejected by " + host + ": " + status
        )
