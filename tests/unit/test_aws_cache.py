"""Unit tests for aws.limits.InstanceTypeLimits, the cache of ENI limits per instance type."""

from __future__ import annotations

from eni_controller.aws.limits import InstanceTypeLimits
from eni_controller.metrics import Metrics
from tests.harness.memory_ec2 import MemoryEC2, unpaced_client
from tests.harness.recording_ec2 import RecordingRaw

MAX_ENIS = {"m5.large": 3, "c5.4xlarge": 8, "t3.micro": 2}


def _limits() -> tuple[InstanceTypeLimits, RecordingRaw]:
    """InstanceTypeLimits over the real client and a MemoryEC2 that knows MAX_ENIS;
    the RecordingRaw notes each request."""
    memory = MemoryEC2([])
    memory.instance_types = dict(MAX_ENIS)
    raw = RecordingRaw(memory)
    return InstanceTypeLimits(unpaced_client(raw, metrics=Metrics())), raw


def _requests(raw: RecordingRaw) -> list[list[str]]:
    return [params["InstanceTypes"] for params in raw.params_of("describe_instance_types")]


async def test_limits_are_cached_per_type() -> None:
    limits, raw = _limits()
    assert await limits.max_enis(["m5.large", "t3.micro", "m5.large"]) == {
        "m5.large": 3,
        "t3.micro": 2,
    }
    assert _requests(raw) == [["m5.large", "t3.micro"]]
    assert await limits.max_enis(["t3.micro", "m5.large"]) == {"m5.large": 3, "t3.micro": 2}
    assert _requests(raw) == [["m5.large", "t3.micro"]]
    # only the type not seen before is asked for
    assert await limits.max_enis(["c5.4xlarge", "m5.large"]) == {"c5.4xlarge": 8, "m5.large": 3}
    assert _requests(raw) == [["m5.large", "t3.micro"], ["c5.4xlarge"]]


async def test_limits_empty_request_makes_no_call() -> None:
    limits, raw = _limits()
    assert await limits.max_enis([]) == {}
    assert _requests(raw) == []


async def test_limits_unknown_types_are_absent() -> None:
    limits, raw = _limits()
    assert await limits.max_enis(["x9.huge", "m5.large"]) == {"m5.large": 3}
    assert _requests(raw) == [["m5.large", "x9.huge"]]


async def test_limits_ask_at_most_100_types_per_call() -> None:
    limits, raw = _limits()
    wanted = [f"z{i:03d}.large" for i in range(250)]
    assert await limits.max_enis(wanted) == {}
    assert [len(r) for r in _requests(raw)] == [100, 100, 50]
    assert [t for r in _requests(raw) for t in r] == sorted(wanted)
