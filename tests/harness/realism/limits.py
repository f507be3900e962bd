"""Traffic shaping in front of moto: AWS-style token buckets and seeded fault dice.

EC2 throttles per account with token buckets per action class and answers
`RequestLimitExceeded` when a bucket is empty; networks fail and time out.
Both are modelled here as small, clock-injectable objects so the middleware
only asks "may this request run?" and "which fault, if any?". Not thread-safe:
the caller holds the realism lock.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

from tests.harness.realism.config import (
    BucketSpec,
    FaultConfig,
    ThrottleConfig,
    action_class,
)

Clock = Callable[[], float]


class TokenBucket:
    """Starts full; one token per request; refills continuously up to capacity."""

    def __init__(self, spec: BucketSpec, clock: Clock = time.monotonic) -> None:
        self._spec = spec
        self._clock = clock
        self._tokens = spec.capacity
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(
            self._spec.capacity,
            self._tokens + (now - self._last) * self._spec.refill_per_second,
        )
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Throttle:
    """One bucket per configured action class; an unconfigured class is unlimited."""

    def __init__(self, config: ThrottleConfig, clock: Clock = time.monotonic) -> None:
        self._buckets = {name: TokenBucket(spec, clock) for name, spec in config.buckets.items()}

    def admit(self, action: str) -> bool:
        bucket = self._buckets.get(action_class(action))
        return bucket is None or bucket.take()


class Fault(enum.Enum):
    INTERNAL_ERROR = "InternalError"  # HTTP 500 at once, request not executed
    UNAVAILABLE = "Unavailable"  # HTTP 503 at once, request not executed
    TIMEOUT = "Timeout"  # request executed, answer delayed


class FaultDice:
    """One seeded draw per matching request, so a seed replays the same faults."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def roll(self, action: str) -> Fault | None:
        if not self.config.applies_to(action):
            return None
        draw = self._rng.random()
        if draw < self.config.rate_5xx:
            return Fault.INTERNAL_ERROR
        draw -= self.config.rate_5xx
        if draw < self.config.rate_unavailable:
            return Fault.UNAVAILABLE
        draw -= self.config.rate_unavailable
        if draw < self.config.rate_timeout:
            return Fault.TIMEOUT
        return None
