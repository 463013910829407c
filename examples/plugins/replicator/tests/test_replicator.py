"""Ports of test/test.ts of PostHog/posthog-plugin-replicator at commit 12c4273, in its order.

msw's capture endpoint becomes an `h.http` fixture and the console spies become `h.logs`.
"""

import json
from pathlib import Path

import pytest

from plugin_runtime.errors import RetryError
from plugin_runtime.testing import PluginHarness

PLUGIN = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"

capture_host = "localhost:8000"
capture_url = f"https://{capture_host}/e"

config = {
    "host": capture_host,
    "project_api_key": "test",
    # a number in the original; plugin.json declares a string field and the server refuses
    # anything else
    "replication": "1",
    "events_to_ignore": "my-event-alpha, my-event-beta, my-event-gamma",
}

mock_event = json.loads((DATA / "event.json").read_text())
mock_autocapture_event = json.loads((DATA / "autocapture-event.json").read_text())
mock_events_to_ignore = json.loads((DATA / "events-to-ignore.json").read_text())


def harness(plugin_config=None):
    return PluginHarness.from_path(PLUGIN, config=plugin_config or config)


# describe("event pre-processing")


def accept_and_capture_request(h):
    """The original's helper: accept one capture request with a 200 and hand back its body.
    Its handler answered 400 to any other content type, so that is asserted here."""
    h.http.add("POST", capture_url, status=200, json={"status": 1})

    def body():
        request = h.requests[0]
        assert request["headers"]["content-type"] == "application/json"
        return json.loads(request["body"])

    return body


def test_should_handle_a_batch_of_events():
    """Port of "should handle a batch of events"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    req = accept_and_capture_request(h)
    h.export_events([mock_event, mock_event, mock_event])
    body = req()

    assert body == [
        {
            "distinct_id": "1234",
            "event": "my-event",
            "properties": {"foo": "bar", "$ip": "127.0.0.1"},
            "token": "test",
        },
        {
            "distinct_id": "1234",
            "event": "my-event",
            "properties": {"foo": "bar", "$ip": "127.0.0.1"},
            "token": "test",
        },
        {
            "distinct_id": "1234",
            "event": "my-event",
            "properties": {"foo": "bar", "$ip": "127.0.0.1"},
            "token": "test",
        },
    ]


def test_should_skip_ignored_events():
    """Port of "should skip ignored events"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    req = accept_and_capture_request(h)
    h.export_events([mock_event, *mock_events_to_ignore, mock_event])
    body = req()

    assert body == [
        {
            "distinct_id": "1234",
            "event": "my-event",
            "properties": {"foo": "bar", "$ip": "127.0.0.1"},
            "token": "test",
        },
        {
            "distinct_id": "1234",
            "event": "my-event",
            "properties": {"foo": "bar", "$ip": "127.0.0.1"},
            "token": "test",
        },
    ]


def test_should_reuse_the_values_for_timestamp_event_uuid():
    """Port of "should reuse the values for timestamp, event, uuid"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    # The deduplicated properties must reach the target unchanged; posthog's functional
    # test plugin-server/functional_tests/exports-v2.test.ts shows these are the values an
    # export receives.
    h = harness()
    req = accept_and_capture_request(h)
    h.export_events(
        [{"distinct_id": "1234", "event": "my-event", "sent_at": "asdf", "uuid": "asdf-zxcv"}]
    )
    body = req()

    assert body == [
        {
            "distinct_id": "1234",
            "event": "my-event",
            "sent_at": "asdf",
            "uuid": "asdf-zxcv",
            "token": "test",
        },
    ]


def test_should_correctly_reverse_the_autocapture_format():
    """Port of "should correctly reverse the autocapture format"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    req = accept_and_capture_request(h)
    h.export_events([mock_autocapture_event])
    body = req()
    assert body == [
        {
            "distinct_id": "12345",
            "event": "$autocapture",
            "timestamp": "2022-12-06T12:54:30.810Z",
            "token": "test",
            "uuid": "0184e780-8f2b-0000-9e00-4cdcba315fe9",
            "properties": {
                "$browser": "Firefox",
                "$os": "Mac OS X",
                "$ip": "127.0.0.1",
                "$elements": [
                    {
                        "order": 0,
                        "tag_name": "div",
                        "attr_class": "view-line",
                        "nth_child": 18,
                        "nth_of_type": 18,
                        "attr__class": "view-line",
                        "attr__style": "top:396px;height:18px;",
                    },
                    {
                        "order": 1,
                        "tag_name": "div",
                        "attr_class": "view-lines monaco-mouse-cursor-text",
                        "nth_child": 4,
                        "nth_of_type": 4,
                        "attr__aria-hidden": "true",
                        "attr__class": "view-lines monaco-mouse-cursor-text",
                        "attr__data-mprt": "7",
                        "attr__role": "presentation",
                        "attr__style": (
                            'position: absolute; font-family: Menlo, Monaco, \\"Courier '
                            'New\\", monospace; font-weight: normal; font-size: 12px; '
                            'font-feature-settings: \\"liga\\" 0, \\"calt\\" 0; line-height: '
                            "18px; letter-spacing: 0px; width: 899px; height: 1438px;"
                        ),
                    },
                    {
                        "order": 2,
                        "tag_name": "div",
                        "attr_class": "lines-content monaco-editor-background",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "lines-content monaco-editor-background",
                        "attr__style": (
                            "position: absolute; overflow: hidden; width: 1000000px; "
                            "height: 1000000px; transform: translate3d(0px, 0px, 0px); "
                            "contain: strict; top: -93px; left: 0px;"
                        ),
                    },
                    {
                        "order": 3,
                        "tag_name": "div",
                        "attr_class": "monaco-scrollable-element editor-scrollable vs-dark mac",
                        "nth_child": 2,
                        "nth_of_type": 2,
                        "attr__class": "monaco-scrollable-element editor-scrollable vs-dark mac",
                        "attr__data-mprt": "5",
                        "attr__role": "presentation",
                        "attr__style": (
                            "position: absolute; overflow: hidden; left: 62px; width: "
                            "899px; height: 700px;"
                        ),
                    },
                    {
                        "order": 4,
                        "tag_name": "div",
                        "attr_class": "overflow-guard",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "overflow-guard",
                        "attr__data-mprt": "3",
                        "attr__style": "width: 961px; height: 700px;",
                    },
                    {
                        "order": 5,
                        "tag_name": "div",
                        "attr_class": (
                            "monaco-editor no-user-select mac  showUnused showDeprecated "
                            "vs-dark focused"
                        ),
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": (
                            "monaco-editor no-user-select mac  showUnused showDeprecated "
                            "vs-dark focused"
                        ),
                        "attr__data-uri": "file:///index.ts",
                        "attr__role": "code",
                        "attr__style": "width: 961px; height: 700px;",
                    },
                    {
                        "order": 6,
                        "tag_name": "div",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__data-keybinding-context": "2",
                        "attr__data-mode-id": "typescript",
                        "attr__style": "width: 100%;",
                    },
                    {
                        "order": 7,
                        "tag_name": "section",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__style": (
                            "display: flex; position: relative; text-align: initial; "
                            "width: 100%; height: 700px;"
                        ),
                    },
                    {
                        "order": 8,
                        "tag_name": "div",
                        "attr_class": "Field flex gap-2 flex-col",
                        "nth_child": 3,
                        "nth_of_type": 2,
                        "attr__class": "Field flex gap-2 flex-col",
                    },
                    {
                        "order": 9,
                        "tag_name": "form",
                        "attr_class": "PluginSource",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "PluginSource",
                    },
                    {
                        "order": 10,
                        "tag_name": "div",
                        "attr_class": "ant-drawer-body",
                        "nth_child": 2,
                        "nth_of_type": 2,
                        "attr__class": "ant-drawer-body",
                    },
                    {
                        "order": 11,
                        "tag_name": "div",
                        "attr_class": "ant-drawer-wrapper-body",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "ant-drawer-wrapper-body",
                    },
                    {
                        "order": 12,
                        "tag_name": "div",
                        "attr_class": "ant-drawer-content",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "ant-drawer-content",
                    },
                    {
                        "order": 13,
                        "tag_name": "div",
                        "attr_class": "ant-drawer-content-wrapper",
                        "nth_child": 2,
                        "nth_of_type": 2,
                        "attr__class": "ant-drawer-content-wrapper",
                        "attr__style": "width: min(90vw, 64rem);",
                    },
                    {
                        "order": 14,
                        "tag_name": "div",
                        "attr_class": "ant-drawer ant-drawer-left ant-drawer-open",
                        "nth_child": 1,
                        "nth_of_type": 1,
                        "attr__class": "ant-drawer ant-drawer-left ant-drawer-open",
                        "attr__style": "z-index: 950;",
                        "attr__tabindex": "-1",
                    },
                    {"order": 15, "tag_name": "div", "nth_child": 12, "nth_of_type": 7},
                    {
                        "order": 16,
                        "tag_name": "body",
                        "attr_class": "ant-scrolling-effect",
                        "nth_child": 7,
                        "nth_of_type": 1,
                        "attr__class": "ant-scrolling-effect",
                        "attr__style": (
                            "touch-action: none; width: calc(100% - 15px); overflow: hidden;"
                        ),
                    },
                ],
            },
        }
    ]


# describe("error management")


def test_succeeds_and_logs_on_200():
    """Port of "succeeds and logs on 200"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    h.http.add("POST", capture_url, status=200)
    h.export_events([mock_event, mock_event])
    assert {"level": "info", "message": "Flushed 2 events to localhost:8000"} in h.logs


def test_skips_and_warns_without_throwing_on_400s():
    """Port of "skips and warns without throwing on 400s"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    h.http.add("POST", capture_url, status=400)
    h.export_events([mock_event, mock_event])
    assert {
        "level": "warning",
        "message": "Skipping 2 events, rejected by localhost:8000: 400 Bad Request",
    } in h.logs


def test_throws_retry_error_on_500s():
    """Port of "throws RetryError on 500s"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    h.http.add("POST", capture_url, status=500)
    with pytest.raises(RetryError):
        h.export_events([mock_event])
    assert {
        "level": "error",
        "message": "Failed to submit 1 event to localhost:8000 due to server error: "
        "500 Internal Server Error",
    } in h.logs


def test_throws_retry_error_on_econnrefused():
    """Port of "throws RetryError on ECONNREFUSED"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    h = harness()
    # the original closes the msw server; a failed connection raises ConnectionError here
    h.http.add("POST", capture_url, error="network")
    with pytest.raises(RetryError):
        h.export_events([mock_event])
    # the spy's expect.any(FetchError) second argument: the logger appends the error to the
    # message as "<Class>: <message>"
    errors = [log["message"] for log in h.logs if log["level"] == "error"]
    assert any(
        message.startswith(
            "Failed to submit 1 event to localhost:8000 due to network error ConnectionError: "
        )
        for message in errors
    )


def test_rethrows_other_fetch_errors_unhandled():
    """Port of "rethrows other fetch errors unhandled"
    (PostHog/posthog-plugin-replicator@12c4273, test/test.ts)."""
    bad_config = {
        "host": "/invalid",
        "project_api_key": "test",
        "replication": "1",
        "events_to_ignore": "",
    }
    h = harness(bad_config)
    # node-fetch's TypeError("Only absolute URLs are supported") for https:///invalid/e is
    # our fetch's ValueError for a URL that is not http(s)
    with pytest.raises(ValueError, match="is not an http\\(s\\) URL"):
        h.export_events([mock_event])
    errors = [log["message"] for log in h.logs if log["level"] == "error"]
    assert len(errors) == 1
