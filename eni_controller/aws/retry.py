"""Retry policy for EC2 calls: exponential backoff with full jitter (tenacity).

Only throttling, 5xx and network errors are retried; a call that may already
have been executed (OutcomeUnknown) is not: the caller describes first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from eni_controller.aws.errors import OutcomeUnknown, Throttled, Transient


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 0.2
    max_backoff_seconds: float = 10.0
    max_total_seconds: float = 60.0


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, Throttled | Transient) and not isinstance(error, OutcomeUnknown)


def retrying(
    policy: RetryPolicy, *, before_sleep: Callable[[RetryCallState], None]
) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait_random_exponential(
            multiplier=policy.base_seconds, max=policy.max_backoff_seconds
        ),
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_total_seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
