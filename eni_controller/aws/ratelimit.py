"""Client-side token buckets, one per EC2 action class.

EC2 throttles each account per Region with token buckets; a controller that
bursts past them draws RequestLimitExceeded and then retries into the same
wall. Pacing ourselves with the same buckets keeps every call productive.

Defaults follow AWS's published request-token table ("Request throttling for
the Amazon EC2 API", EC2 Developer Guide): non-mutating Describe* actions
100 tokens, refilled at 20/s; mutating actions 50 tokens, refilled at 5/s
(the table has listed mutating buckets between 50 and 200 tokens over time; we
take the smaller). We pace at 90% of both AWS numbers: AWS counts a token when
a request arrives, we when it leaves, and the first requests of a burst arrive
late (new connections), so equal buckets drift apart and the account's bucket,
saturated near zero, throttles. The 10% keeps a cushion on AWS's side. Accounts
with raised limits configure their own numbers.
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

    def spec(self, action_class: ActionClass) -> BucketSpec:
        return self.describe if action_class is ActionClass.DESCRIBE else self.mutating

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


class TokenBucket:
    """An async token bucket; waiters are served first come, first served."""

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

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(
            self.spec.capacity, self._tokens + (now - self._stamp) * self.spec.refill_per_second
        )
        self._stamp = now

    def acquire_now(self) -> float | None:
        """`acquire()` if it would not wait: the seconds taken, or None (no token
        now, or others waiting for one: await `acquire()`)."""
        if self._queued:
            return None
        # Nobody is ahead of us: a token that is there is ours without the lock
        # (which, free, would not have suspended us either).
        start = self._clock()
        self._refill()
        if self._tokens < 1:
            return None
        self._tokens -= 1
        return self._clock() - start

    async def acquire(self) -> float:
        """Take one token, waiting for it if needed; return the seconds waited
        (queueing behind other waiters included)."""
        waited = self.acquire_now()
        if waited is not None:
            return waited
        start = self._clock()
        self._queued += 1
        try:
            async with self._lock:
                self._refill()
                if self._tokens < 1:
                    await self._sleep((1 - self._tokens) / self.spec.refill_per_second)
                    self._refill()
                self._tokens -= 1
        finally:
            self._queued -= 1
        return self._clock() - start


class RateLimiter:
    """One bucket per action class."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._buckets = {
            action_class: TokenBucket(limits.spec(action_class), clock=clock, sleep=sleep)
            for action_class in ActionClass
        }
        self._by_action: dict[str, tuple[ActionClass, TokenBucket]] = {}  # a handful

    def _bucket(self, action: str) -> tuple[ActionClass, TokenBucket]:
        found = self._by_action.get(action)
        if found is None:
            action_class = ActionClass.of(action)
            found = self._by_action[action] = (action_class, self._buckets[action_class])
        return found

    async def acquire(self, action: str) -> tuple[ActionClass, float]:
        action_class, bucket = self._bucket(action)
        return action_class, await bucket.acquire()
