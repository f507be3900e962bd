"""The real EC2Client over a raw client that answers from a script, for the
unit tests of the client's one call path (retries, error classes, the circuit
breaker, pagination) and of what observes it (tests/harness/attempts.py).

Unlike memory_ec2.MemoryEC2, nothing here models EC2: each raw method plays
back the responses and exceptions a test scripted, in order, so a test can
say exactly which attempt fails with which code. Backoff is milliseconds and
the breaker's clock is a ManualClock, so no test waits on real time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from eni_controller.aws.breaker import BreakerState, CircuitBreaker
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.ratelimit import BucketSpec, RateLimiter, RateLimits
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig
from eni_controller.metrics import Metrics
from tests.harness.clock import ManualClock

MAX_ATTEMPTS = 4  # of one logical call
FAILURE_THRESHOLD = 3  # consecutive failed calls that open the breaker
BREAKER_TIMEOUT = 60.0  # seconds the breaker stays open

Step = dict[str, Any] | BaseException


def raw_eni(eni_id: str, **extra: Any) -> dict[str, Any]:
    """An available ENI as DescribeNetworkInterfaces answers it, plus `extra`."""
    return {
        "NetworkInterfaceId": eni_id,
        "SubnetId": "subnet-1",
        "VpcId": "vpc-1",
        "Status": "available",
        **extra,
    }


class ScriptedRaw:
    """Stands in for the aiobotocore client: each scripted method follows its
    script of responses and exceptions; the last step repeats once the script
    runs out."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Step]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def script(self, method: str, *steps: Step) -> None:
        self.scripts[method] = list(steps)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    async def _run(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        index = len(self.calls_to(method))
        self.calls.append((method, params))
        steps = self.scripts[method]
        step = steps[min(index, len(steps) - 1)]
        if isinstance(step, BaseException):
            raise step
        return step

    def __getattr__(self, method: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        """A scripted method (snake_case, as botocore names it); any other is absent."""
        if method not in self.__dict__.get("scripts", {}):
            raise AttributeError(method)

        async def call(**params: Any) -> dict[str, Any]:
            return await self._run(method, params)

        return call


class ScriptedEC2:
    """An EC2Client (`ec2`) over a ScriptedRaw (`raw`), with its metrics and breaker."""

    def __init__(self) -> None:
        self.raw = ScriptedRaw()
        self.metrics = Metrics()
        self.clock = ManualClock()
        big = BucketSpec(capacity=1_000_000, refill_per_second=1_000_000)
        self.breaker = CircuitBreaker(
            CircuitBreakerConfig(
                failure_threshold=FAILURE_THRESHOLD,
                success_threshold=1,
                timeout_seconds=BREAKER_TIMEOUT,
            ),
            clock=self.clock,
        )
        self.ec2 = EC2Client(
            self.raw,
            limiter=RateLimiter(RateLimits(describe=big, mutating=big)),
            breaker=self.breaker,
            retry=RetryPolicy(
                max_attempts=MAX_ATTEMPTS,
                base_seconds=0.001,
                max_backoff_seconds=0.002,
                max_total_seconds=5,
            ),
            metrics=self.metrics,
        )

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(f"eni_controller_{name}", labels)

    def breaker_state(self) -> BreakerState:
        return self.breaker.state
