# Posts each batch of events to the configured webhook. 5xx answers and network failures
# raise RetryError, so the server retries the batch with backoff; 4xx answers are errors
# a retry cannot fix, so they fail the batch.
# `fetch` and `RetryError` are sandbox globals the server provides:
# ruff: noqa: F821

TIMEOUT_SECONDS = 10


def batch_payload(events):
    return {
        "batch": [
            {
                "uuid": e.get("uuid"),
                "event": e.get("event"),
                "distinct_id": e.get("distinct_id"),
                "timestamp": e.get("timestamp"),
                "properties": e.get("properties") or {},
            }
            for e in events
        ]
    }


def export_events(events, meta):
    if not events:
        return
    headers = {"content-type": "application/json"}
    if meta.config.get("authToken"):
        headers["authorization"] = "Bearer " + meta.config["authToken"]
    try:
        response = fetch(
            meta.config["url"],
            method="POST",
            headers=headers,
            body=batch_payload(events),
            timeout=TIMEOUT_SECONDS,
        )
    except (ConnectionError, TimeoutError) as error:
        raise RetryError("webhook unreachable: " + str(error)) from error
    if response.status >= 500:
        raise RetryError("webhook answered " + str(response.status))
    if not response.ok:
        raise ValueError(
            "webhook refused the batch: " + str(response.status) + " " + response.text()
        )
    meta.metrics["batches_sent"].increment(1)
    meta.metrics["largest_batch"].max(len(events))
    meta.logger.info("sent", len(events), "events")
