"""Per-slot memory of what failed, so that nothing repeats on a fixed cadence forever.

The EC2 request budget is per account and region, shared with the VPC CNI and
everyone else; retrying a denied create every few seconds on 200 nodes spends it
on calls that cannot succeed.

- `SlotBackoff`: a failed step of one slot is not tried again before
  ``base * 2**(failures - 1)`` seconds, capped. Success forgets the failures, a
  new generation of the NodeENI (spec edited) starts afresh; nothing else
  bypasses it, and the standing failure stays on the NodeENI's conditions.
- An attribute change that succeeded but does not show is sent at most
  MAX_EFFECT_ATTEMPTS times per `EffectKey` (the executor counts them).

Both forget a NodeENI's entries when it is gone and keep at most MAX_KEPT
entries (oldest dropped first): what is forgotten costs one more try.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")

BACKOFF_BASE_SECONDS: Final = 2.0  # ERROR_BACKOFF_BASE's default
BACKOFF_MAX_SECONDS: Final = 300.0  # ERROR_BACKOFF_MAX's default: "a few minutes"
MAX_EFFECT_ATTEMPTS: Final = 3
MAX_KEPT: Final = 50_000
# 2**40 * any base is past any sane cap; bounding the exponent avoids overflow
_MAX_EXPONENT: Final = 40


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    """The standing failure of one slot's step."""

    reason: str  # a condition reason, from the AWS error code
    message: str
    attempts: int
    retry_at: float  # the clock's time before which the step is not tried again


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotKey:
    uid: str  # the NodeENI's
    node: str
    instance_id: str
    subnet_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StepKey:
    slot: SlotKey
    kind: str  # the action's
    generation: int  # the NodeENI's: a new one (spec edited) is a new step


class SlotBackoff:
    def __init__(
        self,
        *,
        base: float = BACKOFF_BASE_SECONDS,
        cap: float = BACKOFF_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base
        self._cap = cap
        self._clock = clock
        self._failures: dict[StepKey, Failure] = {}

    def standing(self, key: StepKey) -> Failure | None:
        return self._failures.get(key)

    def failed(self, key: StepKey, *, reason: str, message: str) -> Failure:
        before = self._failures.get(key)
        attempts = 1 if before is None else before.attempts + 1
        delay = min(self._cap, self._base * 2 ** min(attempts - 1, _MAX_EXPONENT))
        failure = Failure(
            reason=reason,
            message=message,
            attempts=attempts,
            retry_at=self._clock() + delay,
        )
        return keep_newest(self._failures, key, failure)

    def remaining(self, failure: Failure) -> float:
        """Seconds until `failure`'s step may be tried again (0: now)."""
        return max(0.0, failure.retry_at - self._clock())

    def succeeded(self, key: StepKey) -> None:
        self._failures.pop(key, None)

    def forget(self, uid: str) -> None:
        """The NodeENI `uid` is gone: its steps' failures with it."""
        self._failures = {k: f for k, f in self._failures.items() if k.slot.uid != uid}


@dataclass(frozen=True, kw_only=True, slots=True)
class EffectKey:
    """One attribute change on one attachment, towards one value."""

    uid: str
    target: str  # the attachment id (DeleteOnTermination) or ENI id (security groups)
    attribute: str
    wanted: Hashable


def keep_newest(kept: MutableMapping[K, V], key: K, value: V) -> V:
    """Store `value` under `key` as the newest entry, dropping the oldest past MAX_KEPT."""
    kept.pop(key, None)
    kept[key] = value
    if len(kept) > MAX_KEPT:
        del kept[next(iter(kept))]
    return value
