import os
from pathlib import Path

import pytest

from plugin_runtime.testing import PluginHarness, make_event

PLUGIN = Path(__file__).parents[1]


def harness(config):
    return PluginHarness.from_path(PLUGIN, config=config)


@pytest.fixture
def h():
    # the original's beforeEach: resetMeta({config: {percentage: "100"}})
    with harness({"percentage": "100"}) as h:
        yield h


def test_process_event_filters_event(h):
    """Port of "processEvent filters event"
    (PostHog/downsampling-plugin, src/__tests__/index.test.js)."""
    # Setup Plugin
    h.setup()

    for _ in range(100):
        event0 = make_event(distinct_id=os.urandom(10).hex())
        event1 = h.process_event(event0)
        assert event1 == event0


def test_process_event_filters_0_events_at_0_percent():
    """Port of "processEvent filters 0 events at 0 percent"
    (PostHog/downsampling-plugin, src/__tests__/index.test.js)."""
    with harness({"percentage": "0"}) as h:
        # Setup Plugin
        h.setup()

        # create a random event
        event0 = make_event(event="blah")

        for _ in range(100):
            event1 = h.process_event(event0)
            assert event1 is None


def test_process_event_filters_same_events_at_different_increasing_percent():
    """Port of "processEvent filters same events at different increasing percent"
    (PostHog/downsampling-plugin, src/__tests__/index.test.js)."""
    # create an event. Hash generates 0.42
    event0 = make_event(distinct_id="1")

    for i in range(5):
        with harness({"percentage": str(i * 10)}) as h:
            # Setup Plugin
            h.setup()

            event1 = h.process_event(event0)
            assert event1 is None

    for i in range(5, 11):
        with harness({"percentage": str(i * 10)}) as h:
            # Setup Plugin
            h.setup()

            event1 = h.process_event(event0)
            assert event1 == event0
