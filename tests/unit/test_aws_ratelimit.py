"""Unit tests for eni_controller.aws.ratelimit: token buckets on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from eni_controller.aws.ratelimit import (
    AWS_DEFAULT_LIMITS,
    DEFAULT_LIMITS,
    PACING_HEADROOM,
    ActionClass,
    BucketSpec,
    RateLimiter,
    RateLimits,
    TokenBucket,
)
from eni_controller.config import Config
from tests.harness.clock import START, ManualClock


def bucket(capacity: float, rate: float, clock: ManualClock) -> TokenBucket:
    return TokenBucket(
        BucketSpec(capacity=capacity, refill_per_second=rate), clock=clock, sleep=clock.sleep
    )


async def test_full_bucket_serves_capacity_without_waiting(clock: ManualClock) -> None:
    b = bucket(10, 2, clock)
    waits = [await b.acquire() for _ in range(10)]
    assert waits == [0.0] * 10
    assert clock.slept == []
    assert clock() == START


async def test_first_acquire_past_capacity_waits_one_over_rate(clock: ManualClock) -> None:
    b = bucket(10, 4, clock)
    for _ in range(10):
        await b.acquire()
    waited = await b.acquire()
    assert waited == pytest.approx(0.25)
    assert clock.slept == [pytest.approx(0.25)]
    assert clock() - START == pytest.approx(0.25)


@pytest.mark.parametrize(("capacity", "rate", "extra"), [(5, 4, 8), (1, 1, 3), (50, 5, 25)])
async def test_acquires_beyond_capacity_take_theoretical_time(
    clock: ManualClock, capacity: int, rate: float, extra: int
) -> None:
    b = bucket(capacity, rate, clock)
    waits = [await b.acquire() for _ in range(capacity + extra)]
    assert waits[:capacity] == [0.0] * capacity
    assert waits[capacity:] == [pytest.approx(1 / rate)] * extra
    assert clock() - START == pytest.approx(extra / rate)
    assert sum(waits) == pytest.approx(extra / rate)


async def test_partial_refill_waits_only_for_the_missing_fraction(clock: ManualClock) -> None:
    b = bucket(2, 10, clock)
    await b.acquire()
    await b.acquire()
    clock.advance(0.04)  # 0.4 of a token back
    waited = await b.acquire()
    assert waited == pytest.approx(0.06)


async def test_refill_never_exceeds_capacity(clock: ManualClock) -> None:
    b = bucket(3, 2, clock)
    for _ in range(3):
        await b.acquire()
    clock.advance(10_000.0)  # would be 20000 tokens without the cap
    waits = [await b.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.5)]


async def test_idle_full_bucket_does_not_grow(clock: ManualClock) -> None:
    b = bucket(2, 100, clock)
    clock.advance(3600.0)
    waits = [await b.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, pytest.approx(0.01)]


async def test_concurrent_acquires_are_fifo_and_paced(clock: ManualClock) -> None:
    capacity, rate, n = 5, 10.0, 20
    b = bucket(capacity, rate, clock)
    served: list[tuple[int, float]] = []

    async def take(i: int) -> None:
        await b.acquire()
        served.append((i, clock() - START))

    await asyncio.gather(*(take(i) for i in range(n)))
    assert [i for i, _ in served] == list(range(n))
    # the first `capacity` at once, then one every 1/rate seconds
    expected_at = [0.0] * capacity + [k / rate for k in range(1, n - capacity + 1)]
    assert [at for _, at in served] == [pytest.approx(t) for t in expected_at]
    assert clock() - START == pytest.approx((n - capacity) / rate)
    assert len(clock.slept) == n - capacity
    assert clock.slept == [pytest.approx(1 / rate)] * (n - capacity)


async def test_concurrent_acquire_reports_the_whole_wait(clock: ManualClock) -> None:
    capacity, rate, n = 2, 10.0, 6
    b = bucket(capacity, rate, clock)
    # all six ask at t=0: the last is served at 0.4 s, so it waited 0.4 s
    waits = await asyncio.gather(*(b.acquire() for _ in range(n)))
    assert list(waits) == [
        0.0,
        0.0,
        pytest.approx(0.1),
        pytest.approx(0.2),
        pytest.approx(0.3),
        pytest.approx(0.4),
    ]


@pytest.mark.parametrize(
    "action",
    ["DescribeNetworkInterfaces", "DescribeInstances", "DescribeInstanceTypes", "DescribeX"],
)
def test_describe_actions_are_describe_class(action: str) -> None:
    assert ActionClass.of(action) is ActionClass.DESCRIBE


@pytest.mark.parametrize(
    "action",
    [
        "CreateNetworkInterface",
        "AttachNetworkInterface",
        "DetachNetworkInterface",
        "DeleteNetworkInterface",
        "ModifyNetworkInterfaceAttribute",
        "describeLowercase",
    ],
)
def test_other_actions_are_mutating(action: str) -> None:
    assert ActionClass.of(action) is ActionClass.MUTATING


def test_action_class_values() -> None:
    assert ActionClass.DESCRIBE.value == "describe"
    assert ActionClass.MUTATING.value == "mutating"


def test_aws_default_limits() -> None:
    limits = AWS_DEFAULT_LIMITS
    assert limits.describe == BucketSpec(capacity=100, refill_per_second=20)
    assert limits.mutating == BucketSpec(capacity=50, refill_per_second=5)
    limiter = RateLimiter(limits)
    assert limiter.ceiling(ActionClass.DESCRIBE) == limits.describe.refill_per_second
    assert limiter.ceiling(ActionClass.MUTATING) == limits.mutating.refill_per_second


def test_default_limits_are_paced_below_aws() -> None:
    assert PACING_HEADROOM == 0.9
    assert DEFAULT_LIMITS.describe.capacity == 90
    assert DEFAULT_LIMITS.describe.refill_per_second == pytest.approx(18.0)
    assert DEFAULT_LIMITS.mutating.capacity == 45
    assert DEFAULT_LIMITS.mutating.refill_per_second == pytest.approx(4.5)
    assert Config().ec2_rate_limits == DEFAULT_LIMITS


def test_paced_scales_capacity_down_and_the_rate() -> None:
    limits = RateLimits(
        describe=BucketSpec(capacity=7, refill_per_second=4),
        mutating=BucketSpec(capacity=1, refill_per_second=2),
    )
    assert limits.paced(0.5) == RateLimits(
        describe=BucketSpec(capacity=3, refill_per_second=2),
        mutating=BucketSpec(capacity=1, refill_per_second=1),  # never below one token
    )


def _small_limiter(clock: ManualClock) -> RateLimiter:
    """Describe: 1 token, 1 per s; mutating: 2 tokens, 4 per s; on fake time."""
    return RateLimiter(
        RateLimits(
            describe=BucketSpec(capacity=1, refill_per_second=1),
            mutating=BucketSpec(capacity=2, refill_per_second=4),
        ),
        clock=clock,
        sleep=clock.sleep,
    )


async def test_rate_limiter_keeps_buckets_separate(clock: ManualClock) -> None:
    limiter = _small_limiter(clock)
    assert await limiter.acquire("DescribeSubnets") == (ActionClass.DESCRIBE, 0.0)
    # the describe bucket is empty; mutating is untouched
    assert await limiter.acquire("CreateNetworkInterface") == (ActionClass.MUTATING, 0.0)
    assert await limiter.acquire("AttachNetworkInterface") == (ActionClass.MUTATING, 0.0)
    assert clock() - START == 0.0

    action_class, waited = await limiter.acquire("DeleteNetworkInterface")
    assert action_class is ActionClass.MUTATING
    assert waited == pytest.approx(0.25)

    # 0.25 s refilled a quarter of a describe token: 0.75 s more to wait
    action_class, waited = await limiter.acquire("DescribeSecurityGroups")
    assert action_class is ActionClass.DESCRIBE
    assert waited == pytest.approx(0.75)
    assert clock() - START == pytest.approx(1.0)


async def test_a_token_refilled_while_others_wait_is_theirs_not_a_newcomers(
    clock: ManualClock,
) -> None:
    b = bucket(1, 10, clock)
    await b.acquire()
    served: list[str] = []

    async def take(name: str) -> None:
        await b.acquire()
        served.append(name)

    first = asyncio.create_task(take("first"))
    await asyncio.sleep(0)  # first is now waiting for a token
    clock.advance(1.0)  # a token is back before first's wait is over
    await take("newcomer")
    await first
    assert served == ["first", "newcomer"]


async def test_an_uncontended_acquire_never_yields(clock: ManualClock) -> None:
    b = bucket(3, 1, clock)
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    assert [await b.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert ran == []  # no acquire let the loop run another task
    await task


async def test_a_newcomer_leaves_a_refilled_token_to_those_waiting(clock: ManualClock) -> None:
    b = bucket(1, 10, clock)
    await b.acquire()
    waiting = asyncio.create_task(b.acquire())
    await asyncio.sleep(0)
    clock.advance(1.0)
    newcomer = asyncio.create_task(b.acquire())
    await asyncio.sleep(0)
    assert not newcomer.done()  # queued behind, it did not take the refilled token
    assert await waiting == pytest.approx(1.1)  # its 0.1 s sleep ends after our 1.0 s
    assert await newcomer > 0
