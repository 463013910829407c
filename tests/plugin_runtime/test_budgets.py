"""Budgets: a config that is slow or keeps failing is degraded, paused (its events pass
it untouched, counted), resumed on half a budget, and disabled after repeated pauses;
the other configs of its team run on. Costs are the worker's own measure."""

from __future__ import annotations

from plugin_runtime.budgets import (
    DEGRADED,
    DISABLED,
    HEALTHY,
    PAUSED,
    BudgetChange,
    BudgetPolicy,
    Budgets,
)
from plugin_runtime.sandbox.supervisor import _spent
from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

POLICY = BudgetPolicy(
    seconds=10, refill_per_second=1, failure_seconds=1, pause_seconds=30, pauses_before_disable=3
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _budgets() -> tuple[Budgets, Clock, list[BudgetChange]]:
    clock, changes = Clock(), []
    return Budgets(POLICY, on_change=changes.append, clock=clock), clock, changes


def test_a_slow_config_is_degraded_then_paused_then_resumes_on_half_a_budget() -> None:
    budgets, clock, changes = _budgets()
    budgets.charge(7, 4)
    assert budgets.state(7) == HEALTHY
    budgets.charge(7, 2)  # 6 of 10 spent
    assert [c.state for c in changes] == [DEGRADED]
    budgets.charge(7, 5)
    assert budgets.state(7) == PAUSED and not budgets.allows(7)
    assert "ran out" in changes[-1].reason and changes[-1].until is not None
    budgets.passed(7, 12)
    clock.now += 29
    assert not budgets.allows(7)
    clock.now += 1
    assert budgets.allows(7) and budgets.state(7) == DEGRADED
    assert "12 events passed it untouched" in changes[-1].reason
    clock.now += 10  # refills: 5 + 10 -> full
    budgets.charge(7, 0.1)
    assert budgets.state(7) == HEALTHY and changes[-1].reason == "its budget refilled"


def test_failures_cost_and_three_pauses_in_a_day_disable() -> None:
    budgets, clock, changes = _budgets()
    for _pause in range(3):
        while budgets.allows(7) and budgets.state(7) != PAUSED:
            budgets.charge(7, 0.0, failures=1)
        clock.now += POLICY.pause_seconds
    assert budgets.state(7) == DISABLED and not budgets.allows(7)
    assert "enable it again" in changes[-1].reason
    budgets.reset(7)
    assert budgets.state(7) == HEALTHY and budgets.allows(7)


def test_a_sandboxs_claim_of_its_split_is_checked_for_shape() -> None:
    assert _spent({"7": [0.5, 1], "8": [0.25, 0]}) == {7: (0.5, 1), 8: (0.25, 0)}
    for forged in ([], {"7": [-1, 0]}, {"x": [1, 0]}, {"7": [1e9, 0]}, {"7": ["1", 0]}):
        assert _spent(forged) == {}


SLOW = """
def process_event(event, meta):
    n = 0
    while n < 300000:
        n += 1
    event["properties"]["slow"] = True
    return event
"""
FAST = """
def process_event(event, meta):
    event["properties"]["fast"] = True
    return event
"""


async def test_a_paused_config_lets_events_pass_and_the_teams_other_plugin_runs() -> None:
    h = make_runtime()
    h.runtime.budgets = Budgets(
        BudgetPolicy(seconds=0.05, refill_per_second=0.001, pause_seconds=60),
        on_change=h.runtime._budget_changed,
    )
    await h.runtime.load([record(SLOW, id=39), record(FAST, id=40, plugin_id=61, order=1)])
    for _ in range(20):
        if h.runtime.budgets.state(39) == PAUSED:
            break
        await h.runtime.process_events(TEAM, [event() for _ in range(5)])
    assert h.runtime.budgets.state(39) == PAUSED
    (passed,) = await h.runtime.process_events(TEAM, [event()])
    assert passed["properties"].get("slow") is None  # untouched by the paused one
    assert passed["properties"]["fast"] is True
    assert h.runtime.budgets.skipped(39) == 1
    assert h.runtime.budgets.state(40) == HEALTHY
    assert h.errors.budgets[39]["state"] == PAUSED
    assert any(e.message.startswith("budget: paused") for e in h.logs.read_logs(39))


async def test_enabling_it_again_gives_a_paused_config_a_full_budget() -> None:
    h = make_runtime()
    await h.runtime.load([record(FAST, id=40)])
    h.runtime.budgets.charge(40, 1e5)  # far past any budget
    assert h.runtime.budgets.state(40) == PAUSED
    paused = record(FAST, id=40)
    await h.runtime.load([type(paused)(**{**paused.__dict__, "budget_state": PAUSED})])
    assert h.runtime.budgets.state(40) == PAUSED  # a reload alone does not lift it
    await h.runtime.load([record(FAST, id=40)])  # the operator cleared it
    assert h.runtime.budgets.state(40) == HEALTHY
