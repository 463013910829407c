import json
from pathlib import Path

from plugin_runtime.testing import PluginHarness, make_event

PLUGIN = Path(__file__).parents[1]

FILTERS = [
    {"property": "$host", "type": "string", "operator": "not_contains", "value": "localhost"},
    {"property": "foo", "type": "number", "operator": "gt", "value": 10},
    {"property": "bar", "type": "boolean", "operator": "is", "value": True},
]

FILTERS_OR = [
    [
        {"property": "$host", "type": "string", "operator": "not_contains", "value": "localhost"},
        {"property": "foo", "type": "number", "operator": "gt", "value": 10},
    ],
    [
        {"property": "bar", "type": "boolean", "operator": "is", "value": True},
    ],
]


def attachment(filters):
    return ("filters.json", "application/json", json.dumps(filters).encode())


def harness(filters, **config):
    """The original hands `processEvent` a hand-made `meta.global`; here the same global
    is built by `setup_plugin` from the attachment and config that produce it."""
    h = PluginHarness.from_path(
        PLUGIN,
        config=config,
        attachments={"filters": None if filters is None else attachment(filters)},
    )
    h.setup()
    return h


def meta():
    return harness(FILTERS, eventsToDrop="to_drop_event")


def meta_no_filters():
    return harness(None, eventsToDrop="to_drop_event")


def meta_or():
    return harness(FILTERS_OR, eventsToDrop="to_drop_event")


def test_event_satisfies_all_conditions_and_passes():
    """Port of "Event satisfies all conditions and passes" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "example.com", "foo": 20, "bar": True},
    )
    processed_event = meta().process_event(event)
    assert processed_event == event


def test_event_does_not_satisfy_one_condition_and_is_dropped():
    """Port of "Event does not satisfy one condition and is dropped" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "localhost:8000", "foo": 20, "bar": True},
    )
    processed_event = meta().process_event(event)
    assert processed_event is None


def test_event_does_not_satisfy_any_condition_and_is_dropped():
    """Port of "Event does not satisfy any condition and is dropped" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "localhost:8000", "foo": 5, "bar": False},
    )
    processed_event = meta().process_event(event)
    assert processed_event is None


def test_event_is_marked_to_be_dropped_is_dropped():
    """Port of "Event is marked to be dropped is dropped" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="to_drop_event",
        properties={"$host": "example.com", "foo": 20, "bar": True},
    )
    processed_event = meta().process_event(event)
    assert processed_event is None


def test_event_is_marked_to_be_dropped_when_a_property_is_undefined():
    """Port of "Event is marked to be dropped when a property is undefined" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    # JSON has no `undefined`: the original's `$host: undefined` is an event without `$host`
    event = make_event(event="test_event", properties={"foo": 20, "bar": True})
    processed_event = meta().process_event(event)
    assert processed_event is None


def test_event_is_marked_to_be_dropped_when_a_property_is_undefined_but_keep_undefined_properties():
    """Port of "Event is marked to be dropped when a property is undefined but keepUndefinedProperties" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    # JSON has no `undefined`: the original's `$host: undefined` is an event without `$host`
    event = make_event(event="test_event", properties={"foo": 20, "bar": True})
    h = harness(FILTERS, eventsToDrop="to_drop_event", keepUndefinedProperties="Yes")
    processed_event = h.process_event(event)
    assert processed_event == event


def setup(config):
    with PluginHarness.from_path(
        PLUGIN, config=config, attachments={"filters": attachment(FILTERS)}
    ) as h:
        h.setup()
        return h.global_


def test_setup_plugin_parsing_events_to_drop():
    """Port of "setupPlugin() parsing eventsToDrop" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    assert setup({"eventsToDrop": "foo, bar  "})["eventsToDrop"] == ["foo", "bar"]
    assert setup({"eventsToDrop": "$foo,$bar"})["eventsToDrop"] == ["$foo", "$bar"]
    assert setup({})["eventsToDrop"] == []


def test_setup_plugin_parsing_keep_undefined_properties():
    """Port of "setupPlugin() parsing keepUndefinedProperties" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    assert setup({"keepUndefinedProperties": "Yes"})["keepUndefinedProperties"] is True
    assert setup({"keepUndefinedProperties": "No"})["keepUndefinedProperties"] is False
    assert setup({})["keepUndefinedProperties"] is False


# describe("empty filters")


def test_empty_filters_event_satisfies_all_conditions_and_passes():
    """Port of "empty filters > Event satisfies all conditions and passes" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "example.com", "foo": 20, "bar": True},
    )
    processed_event = meta_no_filters().process_event(event)
    assert processed_event == event


def test_empty_filters_event_is_marked_to_be_dropped_is_dropped():
    """Port of "empty filters > Event is marked to be dropped is dropped" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="to_drop_event",
        properties={"$host": "example.com", "foo": 20, "bar": True},
    )
    processed_event = meta_no_filters().process_event(event)
    assert processed_event is None


def test_empty_filters_setup_plugin_without_any_config_works():
    """Port of "empty filters > setupPlugin() without any config works" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    with PluginHarness.from_path(PLUGIN, config={}, attachments={"filters": None}) as h:
        h.setup()
        assert h.global_["filters"] == []
        assert h.global_["eventsToDrop"] == []
        assert h.global_["keepUndefinedProperties"] is False


def test_empty_filters_setup_plugin_with_other_config_works():
    """Port of "empty filters > setupPlugin() with other config works" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    with PluginHarness.from_path(
        PLUGIN,
        config={"eventsToDrop": "foo,bar", "keepUndefinedProperties": "Yes"},
        attachments={"filters": None},
    ) as h:
        h.setup()
        assert h.global_["filters"] == []
        assert h.global_["eventsToDrop"] == ["foo", "bar"]
        assert h.global_["keepUndefinedProperties"] is True


def test_event_satisfies_at_least_one_filter_group_and_passes():
    """Port of "Event satisfies at least one filter group and passes" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "example.com", "foo": 5, "bar": True},
    )
    processed_event = meta_or().process_event(event)
    assert processed_event == event


def test_event_satisfies_no_filter_groups_and_is_dropped():
    """Port of "Event satisfies no filter groups and is dropped" (PostHog/posthog-filter-out-plugin, src/main.test.ts)."""  # noqa: E501
    event = make_event(
        event="test event",
        properties={"$host": "localhost:8000", "foo": 5, "bar": False},
    )
    processed_event = meta_or().process_event(event)
    assert processed_event is None
