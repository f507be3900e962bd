"""A circuit breaker around EC2: hammering a failing EC2 from every worker only
deepens the outage. After N consecutive failures calls fail fast with
CircuitOpen; after a timeout it is half-open, where M consecutive successes close
it and any failure re-opens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from eni_controller.aws.errors import CircuitOpen
from eni_controller.config import CircuitBreakerConfig


class BreakerState(IntEnum):
    """Values are what the state gauge reports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        config: CircuitBreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] = lambda _state: None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self._config.timeout_seconds
        ):
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def check(self, action: str) -> None:
        """Raise CircuitOpen unless a call may go out now."""
        if self.state is BreakerState.OPEN:  # never, when disabled
            raise CircuitOpen(action=action, code="CircuitOpen", message="EC2 calls paused")

    def record_success(self) -> None:
        self._failures = 0
        if self.state is BreakerState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self._config.success_threshold:
                self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        if not self._config.enabled:
            return
        state = self.state
        self._failures += 1
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._failures >= self._config.failure_threshold
        ):
            self._opened_at = self._clock()
            self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        self._state = state
        self._failures = 0
        self._successes = 0
        self._on_change(state)
