"""Budgets: how much of a worker's time one plugin config may take, so that a config that
is slow or keeps failing cannot hold everyone else up.

Each config has a token bucket of plugin time (seconds). Every call takes what it ran
(wall time, measured by the worker: a call waiting on `fetch` holds its thread too),
plus a fixed cost per failed call; the bucket refills at a steady rate. A config whose
bucket is below `degraded_below` (half) is `degraded` (it runs, and says so); an empty
bucket pauses it (`paused`) for a while, after which it runs again on that part of a
bucket; a config paused `pauses_before_disable` times within the window is `disabled`
until an operator enables it again. A paused or disabled config's events pass it
untouched, and are counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

HEALTHY, DEGRADED, PAUSED, DISABLED = "healthy", "degraded", "paused", "disabled"


@dataclass(frozen=True)
class BudgetPolicy:
    seconds: float = 60.0  # the bucket: plugin time a config may spend in a burst
    refill_per_second: float = 0.25  # plugin seconds it earns back per second
    failure_seconds: float = 0.5  # what a failed call costs on top of its time
    pause_seconds: float = 300.0  # how long an empty bucket pauses the config
    pauses_before_disable: int = 3  # pauses within `pause_window_seconds` that disable it
    pause_window_seconds: float = 86_400.0
    degraded_below: float = 0.5  # of the bucket


@dataclass(frozen=True)
class BudgetChange:
    """A config's budget state changed: to `state`, because of `reason`."""

    plugin_config_id: int
    state: str
    reason: str
    until: float | None = None  # time.time() the pause ends, for `paused`


@dataclass
class Budget:
    policy: BudgetPolicy
    tokens: float
    at: float  # monotonic time of the last refill
    state: str = HEALTHY
    paused_until: float | None = None  # monotonic
    pauses: deque[float] = field(default_factory=deque)
    skipped: int = 0  # events that passed the config untouched while it was paused

    def refill(self, now: float) -> None:
        if now > self.at:
            rate = self.policy.refill_per_second
            self.tokens = min(self.policy.seconds, self.tokens + (now - self.at) * rate)
            self.at = now

    def level_state(self) -> str:
        low = self.tokens < self.policy.seconds * self.policy.degraded_below
        return DEGRADED if low else HEALTHY


class Budgets:
    """Every config's budget in this worker. Thread-safe: plugin threads charge it."""

    def __init__(
        self,
        policy: BudgetPolicy | None = None,
        *,
        on_change: Callable[[BudgetChange], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BudgetPolicy()
        self._on_change = on_change
        self._clock = clock
        self._budgets: dict[int, Budget] = {}
        self._lock = threading.Lock()

    def _budget(self, plugin_config_id: int, now: float) -> Budget:
        budget = self._budgets.get(plugin_config_id)
        if budget is None:
            budget = self._budgets[plugin_config_id] = Budget(self.policy, self.policy.seconds, now)
        return budget

    def charge(self, plugin_config_id: int, seconds: float, failures: int = 0) -> None:
        """Take what a call (or a batch of them) cost."""
        cost = max(0.0, seconds) + max(0, failures) * self.policy.failure_seconds
        with self._lock:
            now = self._clock()
            budget = self._budget(plugin_config_id, now)
            if budget.state in (PAUSED, DISABLED):
                return
            budget.refill(now)
            budget.tokens -= cost
            change = self._settle(plugin_config_id, budget, now, seconds, failures)
        if change is not None and self._on_change is not None:
            self._on_change(change)

    def _settle(
        self, plugin_config_id: int, budget: Budget, now: float, seconds: float, failures: int
    ) -> BudgetChange | None:
        if budget.tokens > 0:
            state = budget.level_state()
            if state == budget.state:
                return None
            budget.state = state
            spent = self.policy.seconds - budget.tokens
            return BudgetChange(
                plugin_config_id,
                state,
                f"{spent:.1f} s of its {self.policy.seconds:g} s budget spent"
                if state == DEGRADED
                else "its budget refilled",
            )
        window = self.policy.pause_window_seconds
        while budget.pauses and budget.pauses[0] < now - window:
            budget.pauses.popleft()
        budget.pauses.append(now)
        what = f"the last call took {seconds:.2f} s" + (
            f" with {failures} failure(s)" if failures else ""
        )
        if len(budget.pauses) >= self.policy.pauses_before_disable:
            budget.state = DISABLED
            return BudgetChange(
                plugin_config_id,
                DISABLED,
                f"its budget ran out {len(budget.pauses)} times within "
                f"{window / 3600:g} h ({what}); enable it again with `plugin config --enable`",
            )
        budget.state = PAUSED
        budget.paused_until = now + self.policy.pause_seconds
        return BudgetChange(
            plugin_config_id,
            PAUSED,
            f"its {self.policy.seconds:g} s budget ran out ({what}); paused for "
            f"{self.policy.pause_seconds:g} s",
            until=time.time() + self.policy.pause_seconds,
        )

    def allows(self, plugin_config_id: int) -> bool:
        """Whether the config may run now (a pause that has ended resumes it)."""
        change = None
        with self._lock:
            budget = self._budgets.get(plugin_config_id)
            if budget is None or budget.state in (HEALTHY, DEGRADED):
                return True
            if budget.state == DISABLED:
                return False
            now = self._clock()
            assert budget.paused_until is not None
            if now < budget.paused_until:
                return False
            budget.tokens, budget.at = self.policy.seconds * self.policy.degraded_below, now
            budget.state, budget.paused_until = DEGRADED, None
            skipped, budget.skipped = budget.skipped, 0
            change = BudgetChange(
                plugin_config_id,
                DEGRADED,
                f"the pause ended ({skipped} events passed it untouched meanwhile); "
                f"running again on {self.policy.degraded_below:.0%} of its budget",
            )
        if self._on_change is not None:
            self._on_change(change)
        return True

    def passed(self, plugin_config_id: int, events: int) -> None:
        """Count events that went past the paused or disabled config untouched."""
        with self._lock:
            budget = self._budgets.get(plugin_config_id)
            if budget is not None:
                budget.skipped += events

    def state(self, plugin_config_id: int) -> str:
        with self._lock:
            budget = self._budgets.get(plugin_config_id)
            return budget.state if budget is not None else HEALTHY

    def skipped(self, plugin_config_id: int) -> int:
        with self._lock:
            budget = self._budgets.get(plugin_config_id)
            return budget.skipped if budget is not None else 0

    def reset(self, plugin_config_id: int) -> None:
        """A full budget again (an operator enabled the config, or it was reloaded)."""
        with self._lock:
            self._budgets.pop(plugin_config_id, None)
