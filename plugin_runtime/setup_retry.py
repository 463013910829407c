"""Retrying a failing load (compile + `setup_plugin`), with the original's backoff (spec 4.7).

Attempt n+1 starts 3 x 2^(n-1) seconds after attempt n failed (3, 6, 12, ... 768 s); after
the 10th failure the plugin config is reported as failing and disabled.
"""

from __future__ import annotations

from dataclasses import dataclass

SETUP_ATTEMPTS = 10  # attempts before the config is disabled
SETUP_BASE_DELAY_SECONDS = 3.0  # wait before the first retry; doubles after each


@dataclass(frozen=True)
class SetupRetryPolicy:
    attempts: int = SETUP_ATTEMPTS
    base_delay_seconds: float = SETUP_BASE_DELAY_SECONDS

    def delay_after(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt `attempt` (1-based); None: give up."""
        if attempt >= self.attempts:
            return None
        return float(self.base_delay_seconds * 2 ** (attempt - 1))
