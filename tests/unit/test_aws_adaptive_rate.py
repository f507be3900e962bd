"""The EC2 budget share and AIMD pacing (aws/ratelimit.py, aws/ec2.py, config.py):
a throttle lowers a bucket's fill rate by x0.7 (once per round of requests in
flight, never below the floor) and empties the bucket; each answer that was
not throttled wins back 2% of the share, up to the share and no further; the
share scales the configured buckets; a scrape of the client's Metrics shows
each class's fill rate and the share's (no other Metrics object sees them).
Time is a ManualClock that a sleep moves."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eni_controller.aws.breaker import CircuitBreaker
from eni_controller.aws.ec2 import EC2Client, connect_ec2
from eni_controller.aws.errors import ENINotFound, Throttled, Transient
from eni_controller.aws.ratelimit import (
    DECREASE_FACTOR,
    DEFAULT_BUDGET_SHARE,
    DEFAULT_LIMITS,
    FLOOR_FRACTION,
    INCREASE_FRACTION,
    ActionClass,
    BucketSpec,
    RateLimiter,
    RateLimits,
    TokenBucket,
)
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig, Config
from eni_controller.envvars import ConfigError
from eni_controller.metrics import Metrics
from tests.harness.clock import ManualClock

RATE = 10.0


class Sleeper:
    """A sleep that moves `clock` by the time asked, after letting others run."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self.clock.advance(seconds)


def bucket(clock: ManualClock, *, capacity: float = 2, rate: float = RATE) -> TokenBucket:
    return TokenBucket(
        BucketSpec(capacity=capacity, refill_per_second=rate), clock=clock, sleep=Sleeper(clock)
    )


# -- the rule ------------------------------------------------------------------


def test_a_throttle_multiplies_the_rate_and_one_success_adds_a_step() -> None:
    clock = ManualClock()
    b = bucket(clock)
    assert (b.rate, b.ceiling) == (RATE, RATE)
    b.throttled(sent_at=clock())
    assert b.rate == pytest.approx(RATE * DECREASE_FACTOR)
    b.succeeded()
    assert b.rate == pytest.approx(RATE * (DECREASE_FACTOR + INCREASE_FRACTION))


def test_throttles_of_requests_sent_before_the_last_decrease_are_one_signal() -> None:
    clock = ManualClock()
    b = bucket(clock)
    first = clock()
    clock.advance(1.0)
    b.throttled(sent_at=first)  # the decrease is now
    for sent_at in (first - 0.5, first, clock() - 0.1):  # in flight when it came back
        b.throttled(sent_at=sent_at)
        assert b.rate == pytest.approx(RATE * DECREASE_FACTOR)
    b.succeeded()  # a success does not move the last decrease
    b.throttled(sent_at=first)
    raised = RATE * (DECREASE_FACTOR + INCREASE_FRACTION)
    assert b.rate == pytest.approx(raised)
    b.throttled(sent_at=clock())  # sent at the decrease or after: a new signal
    assert b.rate == pytest.approx(raised * DECREASE_FACTOR)


def test_the_rate_never_falls_below_the_floor_nor_rises_above_the_share() -> None:
    clock = ManualClock()
    b = bucket(clock)
    floor = RATE * FLOOR_FRACTION
    for _ in range(100):
        clock.advance(1.0)
        b.throttled(sent_at=clock())
        assert floor <= b.rate <= RATE
    assert b.rate == pytest.approx(floor)
    for _ in range(1000):
        b.succeeded()
        assert floor <= b.rate <= RATE
    assert b.rate == RATE
    b.succeeded()
    assert b.rate == RATE


def test_down_up_down_up() -> None:
    """One decrease takes 15 successes to win back; it can be lost and won again."""
    clock = ManualClock()
    b = bucket(clock)
    for _ in range(3):
        clock.advance(1.0)
        b.throttled(sent_at=clock())
        assert b.rate == pytest.approx(RATE * DECREASE_FACTOR)
        for _ in range(14):
            b.succeeded()
        assert b.rate < RATE
        b.succeeded()
        assert b.rate == pytest.approx(RATE)


# -- the bucket -------------------------------------------------------------------


async def test_a_throttle_empties_the_bucket_and_slows_the_refill() -> None:
    clock = ManualClock()
    b = bucket(clock, capacity=5)
    assert await b.acquire() == 0.0  # 4 tokens left
    b.throttled(sent_at=clock())
    assert b.rate == pytest.approx(RATE * DECREASE_FACTOR)
    waited = await b.acquire()  # no saved token: one at the lowered rate
    assert waited == pytest.approx(1 / (RATE * DECREASE_FACTOR))


async def test_tokens_accrue_at_the_rate_in_force_when_they_accrued() -> None:
    clock = ManualClock()
    b = bucket(clock, capacity=10)
    b.throttled(sent_at=clock())  # empty, 7 per s
    clock.advance(0.5)  # 3.5 tokens
    for _ in range(15):
        b.succeeded()  # back to 10 per s from here on
    assert b.rate == pytest.approx(RATE)
    clock.advance(0.05)  # +0.5 token
    waits = [await b.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 0.0]  # 4 tokens: 3.5 at the old rate, 0.5 at the new
    assert await b.acquire() == pytest.approx(0.1)


async def test_throttles_from_a_round_in_flight_lower_the_rate_once() -> None:
    clock = ManualClock()
    b = bucket(clock, capacity=20)
    sent = [clock() for _ in range(8)]
    for _ in range(8):
        await b.acquire()
    clock.advance(0.2)
    for at in sent:  # all eight come back throttled
        b.throttled(sent_at=at)
    assert b.rate == pytest.approx(RATE * DECREASE_FACTOR)


async def test_successes_at_the_share_cost_nothing_and_change_nothing() -> None:
    clock = ManualClock()
    b = bucket(clock)
    b.succeeded()
    assert b.rate == RATE


# -- the limiter and the client ---------------------------------------------------------


def test_a_throttle_paces_only_its_own_action_class() -> None:
    clock = ManualClock()
    limiter = RateLimiter(
        RateLimits(
            describe=BucketSpec(capacity=10, refill_per_second=20),
            mutating=BucketSpec(capacity=5, refill_per_second=4),
        ),
        clock=clock,
        sleep=Sleeper(clock),
    )
    limiter.throttled("AttachNetworkInterface", sent_at=limiter.now())
    assert limiter.rate(ActionClass.MUTATING) == pytest.approx(4 * DECREASE_FACTOR)
    assert limiter.rate(ActionClass.DESCRIBE) == 20
    limiter.throttled("DescribeInstances", sent_at=limiter.now())
    assert limiter.rate(ActionClass.DESCRIBE) == pytest.approx(20 * DECREASE_FACTOR)
    limiter.succeeded("CreateNetworkInterface")
    assert limiter.rate(ActionClass.MUTATING) == pytest.approx(
        4 * (DECREASE_FACTOR + INCREASE_FRACTION)
    )


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DeleteNetworkInterface",
    )


class ScriptedRaw:
    """An aiobotocore client whose DeleteNetworkInterface follows `answers`."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers)

    async def delete_network_interface(self, **_: Any) -> dict[str, Any]:
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return {}


def client(
    raw: ScriptedRaw, clock: ManualClock, *, metrics: Metrics | None = None, rate: float = RATE
) -> EC2Client:
    spec = BucketSpec(capacity=100, refill_per_second=rate)
    return EC2Client(
        raw,
        limiter=RateLimiter(
            RateLimits(describe=spec, mutating=spec), clock=clock, sleep=Sleeper(clock)
        ),
        breaker=CircuitBreaker(CircuitBreakerConfig(enabled=False)),
        retry=RetryPolicy(max_attempts=1),
        metrics=metrics or Metrics(),
    )


async def test_the_client_paces_by_each_answer_classified_by_code() -> None:
    clock = ManualClock()
    throttles = [client_error(code, 503) for code in ("RequestLimitExceeded", "Throttling")]
    raw = ScriptedRaw(
        throttles[0],
        throttles[1],
        None,
        client_error("InvalidNetworkInterfaceID.NotFound", 400),
        EndpointConnectionError(endpoint_url="http://x"),
        client_error("InternalError", 500),
    )
    ec2 = client(raw, clock)
    mutating = ActionClass.MUTATING

    def rate() -> float:
        return ec2.limiter.rate(mutating)

    expected = RATE
    for error in (Throttled, Throttled):
        with pytest.raises(error):
            await ec2.delete_network_interface(eni_id="eni-1")
        expected *= DECREASE_FACTOR
        assert rate() == pytest.approx(expected)
        clock.advance(1.0)  # the next request is sent after this decrease
    await ec2.delete_network_interface(eni_id="eni-1")  # an answer: one step up
    expected += RATE * INCREASE_FRACTION
    assert rate() == pytest.approx(expected)
    with pytest.raises(ENINotFound):  # EC2 answered "no", not "slow down": a step up
        await ec2.delete_network_interface(eni_id="eni-1")
    expected += RATE * INCREASE_FRACTION
    assert rate() == pytest.approx(expected)
    for _ in range(2):  # no answer from EC2 (network, 5xx): no signal either way
        with pytest.raises(Transient):
            await ec2.delete_network_interface(eni_id="eni-1")
        assert rate() == pytest.approx(expected)


# -- the gauges: the pacing as a scrape sees it -----------------------------------------

FILL_RATE = "eni_controller_aws_rate_limiter_fill_rate"
CEILING = "eni_controller_aws_rate_limiter_fill_rate_ceiling"


async def scrape(metrics: Metrics) -> dict[tuple[str, str], float]:
    """(metric, action class) → value, read on another thread, as a scrape reads it."""
    text = (await asyncio.to_thread(generate_latest, metrics.registry)).decode()
    return {
        (s.name, s.labels["action_class"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in (FILL_RATE, CEILING)
    }


def gauges(rate: float, *, mutating: float, describe: float) -> dict[tuple[str, str], object]:
    return {
        (FILL_RATE, "mutating"): pytest.approx(mutating),
        (FILL_RATE, "describe"): pytest.approx(describe),
        (CEILING, "mutating"): rate,
        (CEILING, "describe"): rate,
    }


async def test_the_fill_rate_gauge_falls_by_throttles_and_climbs_back_to_the_share() -> None:
    clock, metrics = ManualClock(), Metrics()
    throttle = client_error("RequestLimitExceeded", 503)
    steps = math.ceil((1 - DECREASE_FACTOR**2) / INCREASE_FRACTION)  # 26 answers
    raw = ScriptedRaw(throttle, throttle, *[None] * (steps + 2), throttle)
    ec2 = client(raw, clock, metrics=metrics)
    assert await scrape(metrics) == gauges(RATE, mutating=RATE, describe=RATE)
    for n in (1, 2):  # down: x0.7 per throttle
        with pytest.raises(Throttled):
            await ec2.delete_network_interface(eni_id="eni-1")
        clock.advance(1.0)  # the next request is sent after this decrease
        want = RATE * DECREASE_FACTOR**n
        assert await scrape(metrics) == gauges(RATE, mutating=want, describe=RATE)
    for n in range(1, steps + 3):  # up: one step per answer, to the share and no further
        await ec2.delete_network_interface(eni_id="eni-1")
        want = min(RATE, RATE * (DECREASE_FACTOR**2 + n * INCREASE_FRACTION))
        assert await scrape(metrics) == gauges(RATE, mutating=want, describe=RATE)
    assert (await scrape(metrics))[FILL_RATE, "mutating"] == RATE
    with pytest.raises(Throttled):  # and down again
        await ec2.delete_network_interface(eni_id="eni-1")
    assert await scrape(metrics) == gauges(RATE, mutating=RATE * DECREASE_FACTOR, describe=RATE)
    assert raw.answers == []


async def test_two_metrics_objects_show_each_their_own_client() -> None:
    clock = ManualClock()
    throttle = client_error("RequestLimitExceeded", 503)
    first, second = Metrics(), Metrics()
    throttled = client(ScriptedRaw(throttle), clock, metrics=first)
    client(ScriptedRaw(), clock, metrics=second, rate=2 * RATE)
    with pytest.raises(Throttled):
        await throttled.delete_network_interface(eni_id="eni-1")
    assert await scrape(first) == gauges(RATE, mutating=RATE * DECREASE_FACTOR, describe=RATE)
    assert await scrape(second) == gauges(2 * RATE, mutating=2 * RATE, describe=2 * RATE)


# -- the share -------------------------------------------------------------------------


async def test_connect_ec2_scales_the_configured_buckets_to_the_share() -> None:
    config = Config(aws_region="us-east-1", ec2_budget_share=0.25)
    async with connect_ec2(config, metrics=Metrics()) as ec2:
        assert ec2.limiter.rate(ActionClass.MUTATING) == pytest.approx(
            DEFAULT_LIMITS.mutating.refill_per_second * 0.25
        )
        assert ec2.limiter.rate(ActionClass.DESCRIBE) == pytest.approx(
            DEFAULT_LIMITS.describe.refill_per_second * 0.25
        )
    assert Config().ec2_budget_share == DEFAULT_BUDGET_SHARE == 0.5


@pytest.mark.parametrize(("text", "share"), [("0.5", 0.5), ("1", 1.0), (" 0.05 ", 0.05)])
def test_budget_share_is_read(text: str, share: float) -> None:
    assert Config.from_env({"EC2_BUDGET_SHARE": text}).ec2_budget_share == share


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("half", "not a number"),
        ("0", "out of range"),
        ("-0.5", "out of range"),
        ("1.5", "out of range"),
        ("nan", "out of range"),
        ("inf", "out of range"),
        ("50%", "not a number"),
    ],
)
def test_a_bad_budget_share_is_one_clear_error(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"EC2_BUDGET_SHARE": text, "EC2_MUTATING_RATE": "fast"})
    share, rate = sorted(raised.value.problems)  # every problem, not just the first
    assert share.startswith(f'EC2_BUDGET_SHARE="{text}": {why} (expected a fraction')
    assert rate.startswith('EC2_MUTATING_RATE="fast"')
