"""Client-side token buckets, one per EC2 action class.

EC2 throttles each account per Region with token buckets; bursting past them
draws RequestLimitExceeded, so we pace with AWS's published buckets at 90% (AWS
counts a token when a request arrives, we when it leaves). The account's
buckets are shared, so the controller takes only a share (EC2_BUDGET_SHARE)
and adapts it like the AWS SDKs' adaptive retry mode (AIMD, `TokenBucket`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum


class ActionClass(StrEnum):
    DESCRIBE = "describe"
    MUTATING = "mutating"

    @classmethod
    def of(cls, action: str) -> ActionClass:
        return cls.DESCRIBE if action.startswith("Describe") else cls.MUTATING


@dataclass(frozen=True, kw_only=True, slots=True)
class BucketSpec:
    capacity: float
    refill_per_second: float

    def scaled(self, factor: float) -> BucketSpec:
        return BucketSpec(
            capacity=max(1, math.floor(self.capacity * factor)),
            refill_per_second=self.refill_per_second * factor,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimits:
    describe: BucketSpec
    mutating: BucketSpec

    def paced(self, headroom: float) -> RateLimits:
        """These buckets scaled down to `headroom` (capacity and refill rate)."""
        return RateLimits(
            describe=self.describe.scaled(headroom), mutating=self.mutating.scaled(headroom)
        )


AWS_DEFAULT_LIMITS = RateLimits(
    describe=BucketSpec(capacity=100, refill_per_second=20),
    mutating=BucketSpec(capacity=50, refill_per_second=5),
)
PACING_HEADROOM = 0.9
DEFAULT_LIMITS = AWS_DEFAULT_LIMITS.paced(PACING_HEADROOM)
DEFAULT_BUDGET_SHARE = 0.5

# AIMD, in fractions of the share's rate: one decrease takes 15 answers to win back,
# and the floor keeps a trickle going whatever the others do.
DECREASE_FACTOR = 0.7
FLOOR_FRACTION = 0.1
INCREASE_FRACTION = 0.02


class TokenBucket:
    """An async token bucket; waiters are served first come, first served.

    Its fill rate follows AIMD, as in the AWS SDKs' adaptive retry mode.
    Invariants: ``ceiling * FLOOR_FRACTION <= rate <= ceiling`` (the share's
    rate, fixed); a throttle lowers the rate only if its request was sent at or
    after the last decrease (the requests in flight when the account's bucket ran
    dry are one signal, not one each), and empties the bucket (a burst of saved
    tokens would draw more throttles); each answer not throttled raises it one step.
    """

    def __init__(
        self,
        spec: BucketSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._sleep = sleep
        self._tokens = spec.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self._queued = 0  # acquires holding or waiting for the lock
        self.ceiling = self.rate = spec.refill_per_second
        self._decreased_at = -math.inf

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.spec.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def throttled(self, *, sent_at: float) -> None:
        """EC2 refused a request sent at `sent_at` (this bucket's clock) for rate."""
        self._refill()  # what accrued so far, at the rate it accrued at
        if sent_at >= self._decreased_at:
            self.rate = max(self.ceiling * FLOOR_FRACTION, self.rate * DECREASE_FACTOR)
            self._decreased_at = self._clock()
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        """EC2 answered a request of this bucket without throttling it."""
        if self.rate < self.ceiling:
            self._refill()
            self.rate = min(self.ceiling, self.rate + self.ceiling * INCREASE_FRACTION)

    async def acquire(self) -> float:
        """Take one token, waiting for it if needed; return the seconds waited."""
        start = self._clock()
        if not self._queued:  # nobody is ahead: a token there is ours without the lock
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return self._clock() - start
        self._queued += 1
        try:
            async with self._lock:
                self._refill()
                if self._tokens < 1:
                    await self._sleep((1 - self._tokens) / self.rate)
                    self._refill()
                self._tokens -= 1
        finally:
            self._queued -= 1
        return self._clock() - start


class RateLimiter:
    """One bucket per action class, each with its own adaptive rate."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._buckets = {
            ActionClass.DESCRIBE: TokenBucket(limits.describe, clock=clock, sleep=sleep),
            ActionClass.MUTATING: TokenBucket(limits.mutating, clock=clock, sleep=sleep),
        }

    async def acquire(self, action: str) -> tuple[ActionClass, float]:
        action_class = ActionClass.of(action)
        return action_class, await self._buckets[action_class].acquire()

    def now(self) -> float:
        """The limiter's clock: what `throttled` expects as `sent_at`."""
        return self._clock()

    def throttled(self, action: str, *, sent_at: float) -> None:
        self._buckets[ActionClass.of(action)].throttled(sent_at=sent_at)

    def succeeded(self, action: str) -> None:
        self._buckets[ActionClass.of(action)].succeeded()

    def rate(self, action_class: ActionClass) -> float:
        """The current fill rate of `action_class`'s bucket (tokens per second)."""
        return self._buckets[action_class].rate

    def ceiling(self, action_class: ActionClass) -> float:
        """The share's fill rate, which `action_class`'s bucket returns to."""
        return self._buckets[action_class].ceiling
