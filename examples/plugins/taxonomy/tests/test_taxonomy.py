from pathlib import Path

from plugin_runtime.testing import PluginHarness, make_event

PLUGIN = Path(__file__).parents[1]

EVENT_NAMING_OPTIONS = [
    "helloThereWorld",
    "HelloThereWorld",
    "hello_there_world",
    "hello-there-world",
    "hello there world",
]


def process_event_batch(events, config):
    # the original exports processEventBatch; this port defines process_event, which the
    # server calls once per event, so the batch is handed over one event at a time
    h = PluginHarness.from_path(PLUGIN, config=config)
    with h:
        return [h.process_event(event) for event in events]


def test_converts_all_event_names_to_camel_case():
    """Port of "converts all event names to camelCase"
    (PostHog/taxonomy-plugin, __tests__/index.js)."""
    events = [make_event(event=option) for option in EVENT_NAMING_OPTIONS]

    events_output = process_event_batch(
        list(events), config={"defaultNamingConvention": "camelCase"}
    )
    for event in events_output:
        assert event == make_event(event="helloThereWorld")


def test_converts_all_event_names_to_pascal_case():
    """Port of "converts all event names to PascalCase"
    (PostHog/taxonomy-plugin, __tests__/index.js)."""
    events = [make_event(event=option) for option in EVENT_NAMING_OPTIONS]

    events_output = process_event_batch(
        list(events), config={"defaultNamingConvention": "PascalCase"}
    )
    for event in events_output:
        assert event == make_event(event="HelloThereWorld")


def test_converts_all_event_names_to_snake_case():
    """Port of "converts all event names to snake_case"
    (PostHog/taxonomy-plugin, __tests__/index.js)."""
    events = [make_event(event=option) for option in EVENT_NAMING_OPTIONS]

    events_output = process_event_batch(
        list(events), config={"defaultNamingConvention": "snake_case"}
    )
    for event in events_output:
        assert event == make_event(event="hello_there_world")


def test_converts_all_event_names_to_kebab_case():
    """Port of "converts all event names to kebab-case"
    (PostHog/taxonomy-plugin, __tests__/index.js)."""
    events = [make_event(event=option) for option in EVENT_NAMING_OPTIONS]

    events_output = process_event_batch(
        list(events), config={"defaultNamingConvention": "kebab-case"}
    )
    for event in events_output:
        assert event == make_event(event="hello-there-world")


def test_converts_all_event_names_to_spaces_in_between():
    """Port of "converts all event names to spaces in between"
    (PostHog/taxonomy-plugin, __tests__/index.js)."""
    events = [make_event(event=option) for option in EVENT_NAMING_OPTIONS]

    events_output = process_event_batch(
        list(events), config={"defaultNamingConvention": "spaces in between"}
    )
    for event in events_output:
        assert event == make_event(event="hello there world")
