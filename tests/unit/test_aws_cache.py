"""Unit tests for eni_controller.aws.cache.TTLCache and aws.limits.InstanceTypeLimits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from eni_controller.aws.cache import TTLCache
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.limits import InstanceTypeLimits
from eni_controller.aws.resources import InstanceTypeInfo
from tests.harness.clock import ManualClock


def test_get_missing_key_is_none(clock: ManualClock) -> None:
    cache: TTLCache[str, int] = TTLCache(ttl_seconds=5, clock=clock)
    assert cache.get("absent") is None


def test_entry_lives_exactly_ttl(clock: ManualClock) -> None:
    cache: TTLCache[str, int] = TTLCache(ttl_seconds=5, clock=clock)
    cache.put("a", 1)
    clock.advance(4.5)
    assert cache.get("a") == 1
    clock.advance(0.5)
    assert cache.get("a") is None
    # expired entries are dropped, not resurrected by a clock going back
    clock.advance(-1)
    assert cache.get("a") is None


def test_put_refreshes_value_and_expiry(clock: ManualClock) -> None:
    cache: TTLCache[str, int] = TTLCache(ttl_seconds=5, clock=clock)
    cache.put("a", 1)
    clock.advance(4)
    cache.put("a", 2)
    clock.advance(4)
    assert cache.get("a") == 2
    clock.advance(1)
    assert cache.get("a") is None


def test_entries_expire_independently(clock: ManualClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl_seconds=10, clock=clock)
    cache.put("old", "x")
    clock.advance(6)
    cache.put("new", "y")
    clock.advance(4)
    assert cache.get("old") is None
    assert cache.get("new") == "y"


MAX_ENIS = {"m5.large": 3, "c5.4xlarge": 8, "t3.micro": 2}


class FakeEC2:
    def __init__(self) -> None:
        self.requests: list[list[str]] = []

    async def describe_instance_types(
        self, instance_types: Sequence[str]
    ) -> dict[str, InstanceTypeInfo]:
        self.requests.append(list(instance_types))
        return {
            t: InstanceTypeInfo(instance_type=t, max_network_interfaces=MAX_ENIS[t])
            for t in instance_types
            if t in MAX_ENIS
        }


async def test_limits_are_cached_per_type() -> None:
    fake = FakeEC2()
    limits = InstanceTypeLimits(cast(EC2Client, fake))
    assert await limits.max_enis(["m5.large", "t3.micro", "m5.large"]) == {
        "m5.large": 3,
        "t3.micro": 2,
    }
    assert fake.requests == [["m5.large", "t3.micro"]]
    assert await limits.max_enis(["t3.micro", "m5.large"]) == {"m5.large": 3, "t3.micro": 2}
    assert fake.requests == [["m5.large", "t3.micro"]]
    # only the type not seen before is asked for
    assert await limits.max_enis(["c5.4xlarge", "m5.large"]) == {"c5.4xlarge": 8, "m5.large": 3}
    assert fake.requests == [["m5.large", "t3.micro"], ["c5.4xlarge"]]


async def test_limits_empty_request_makes_no_call() -> None:
    fake = FakeEC2()
    limits = InstanceTypeLimits(cast(EC2Client, fake))
    assert await limits.max_enis([]) == {}
    assert fake.requests == []


async def test_limits_unknown_types_are_absent() -> None:
    fake = FakeEC2()
    limits = InstanceTypeLimits(cast(EC2Client, fake))
    assert await limits.max_enis(["x9.huge", "m5.large"]) == {"m5.large": 3}
    assert fake.requests == [["m5.large", "x9.huge"]]


async def test_limits_ask_at_most_100_types_per_call() -> None:
    fake = FakeEC2()
    limits = InstanceTypeLimits(cast(EC2Client, fake))
    wanted = [f"z{i:03d}.large" for i in range(250)]
    assert await limits.max_enis(wanted) == {}
    assert [len(r) for r in fake.requests] == [100, 100, 50]
    assert [t for r in fake.requests for t in r] == sorted(wanted)
