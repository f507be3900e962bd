"""The EC2 client against a real moto server with the AWS realism layer.

Each AWS behaviour the controller depends on is switched on in the realism
layer and the client must turn it into the right exception class, retry what
is retryable (and nothing else), pace itself under throttling, and trip its
circuit breaker when EC2 keeps failing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from eni_controller.aws import errors
from eni_controller.aws.breaker import BreakerState
from eni_controller.aws.ec2 import EC2Client, connect_ec2
from eni_controller.aws.limits import InstanceTypeLimits
from eni_controller.aws.lookup import LookupFailed, LookupReason, Resolver
from eni_controller.aws.ratelimit import (
    AWS_DEFAULT_LIMITS,
    DEFAULT_LIMITS,
    PACING_HEADROOM,
    BucketSpec,
    RateLimits,
)
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig, Config
from eni_controller.metrics import Metrics
from tests.harness.ec2world import (
    AMBIGUOUS_SUBNET_NAME,
    AZ_A,
    AZ_B,
    World,
    ec2_client,
    launch_instance,
)
from tests.harness.realism.control import AWS_RULES, RealismControl

FAST_RETRY = RetryPolicy(
    max_attempts=8, base_seconds=0.01, max_backoff_seconds=0.2, max_total_seconds=20
)
UNLIMITED = RateLimits(
    describe=BucketSpec(capacity=10_000, refill_per_second=10_000),
    mutating=BucketSpec(capacity=10_000, refill_per_second=10_000),
)


@asynccontextmanager
async def connect(
    world: World,
    *,
    rate_limits: RateLimits = UNLIMITED,
    breaker: CircuitBreakerConfig | None = None,
    retry: RetryPolicy = FAST_RETRY,
    metrics: Metrics | None = None,
    read_timeout_seconds: float = 30.0,
) -> AsyncIterator[EC2Client]:
    config = Config(
        aws_region=world.region,
        aws_endpoint_url=world.endpoint,
        ec2_rate_limits=rate_limits,
        circuit_breaker=breaker or CircuitBreakerConfig(),
    )
    async with connect_ec2(
        config,
        metrics=metrics or Metrics(),
        retry=retry,
        read_timeout_seconds=read_timeout_seconds,
    ) as client:
        yield client


@pytest.fixture
async def ec2(ec2_world: World) -> AsyncIterator[EC2Client]:
    async with connect(ec2_world) as client:
        yield client


@pytest.fixture
def aws_rules(realism: RealismControl) -> RealismControl:
    realism.configure(**AWS_RULES)
    return realism


def _token() -> str:
    return secrets.token_hex(16)


async def _create(ec2: EC2Client, world: World, *, subnet: str = "multus-a", **tags: str) -> str:
    eni = await ec2.create_network_interface(
        subnet_id=world.subnet(subnet).id,
        security_group_ids=[world.security_group("multus-sg").id],
        description="test",
        tags={"Purpose": "test", **tags},
        client_token=_token(),
    )
    return eni.eni_id


async def test_create_tags_at_creation_and_client_token_is_idempotent(
    ec2: EC2Client, ec2_world: World, aws_rules: RealismControl
) -> None:
    token = _token()
    kwargs = {
        "subnet_id": ec2_world.subnet("multus-a").id,
        "security_group_ids": [ec2_world.security_group("multus-sg").id],
        "description": "idempotent",
        "tags": {"NodeENI": "n1", "Node": "node-1"},
        "client_token": token,
    }
    first = await ec2.create_network_interface(**kwargs)  # type: ignore[arg-type]
    second = await ec2.create_network_interface(**kwargs)  # type: ignore[arg-type]
    assert second.eni_id == first.eni_id
    assert first.tags["NodeENI"] == "n1"
    assert first.subnet_id == ec2_world.subnet("multus-a").id
    assert first.availability_zone == AZ_A
    (described,) = await ec2.describe_network_interfaces(filters={"tag:NodeENI": ["n1"]})
    assert described.eni_id == first.eni_id
    assert described.security_group_ids == (ec2_world.security_group("multus-sg").id,)


async def test_attach_describe_and_delete_on_termination(
    ec2: EC2Client, ec2_world: World, aws_rules: RealismControl
) -> None:
    instance = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    eni_id = await _create(ec2, ec2_world)
    attachment_id = await ec2.attach_network_interface(
        eni_id=eni_id, instance_id=instance.id, device_index=1
    )
    await ec2.set_delete_on_termination(
        eni_id=eni_id, attachment_id=attachment_id, delete_on_termination=True
    )
    (eni,) = await ec2.describe_network_interfaces(filters={}, eni_ids=[eni_id])
    assert eni.attachment is not None
    assert eni.attachment.attachment_id == attachment_id
    assert eni.attachment.instance_id == instance.id
    assert eni.attachment.device_index == 1
    assert eni.attachment.delete_on_termination is True
    assert eni.mac_address
    assert eni.private_ip_address
    found = await ec2.describe_instances([instance.id, "i-0000000000000000f"])
    assert set(found) == {instance.id}
    assert found[instance.id].occupied_device_indexes == frozenset({0, 1})
    assert found[instance.id].availability_zone == AZ_A


async def _expect(error: type[errors.EC2Error], call: object) -> errors.EC2Error:
    with pytest.raises(error) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def test_aws_rules_map_to_error_classes(
    ec2: EC2Client, ec2_world: World, aws_rules: RealismControl
) -> None:
    instance = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    first, second, third, wrong_az = (
        await _create(ec2, ec2_world),
        await _create(ec2, ec2_world),
        await _create(ec2, ec2_world),
        await _create(ec2, ec2_world, subnet="multus-b"),
    )
    await ec2.attach_network_interface(eni_id=first, instance_id=instance.id, device_index=1)

    taken = await _expect(
        errors.MaybeIndexConflict,
        ec2.attach_network_interface(eni_id=second, instance_id=instance.id, device_index=1),
    )
    assert taken.code == "InvalidParameterValue"
    await _expect(
        errors.AZMismatch,
        ec2.attach_network_interface(eni_id=wrong_az, instance_id=instance.id, device_index=2),
    )
    await _expect(errors.InUse, ec2.delete_network_interface(eni_id=first))
    await ec2.attach_network_interface(eni_id=second, instance_id=instance.id, device_index=2)
    # m5.large holds 3 ENIs: the primary plus two
    await _expect(
        errors.LimitExceeded,
        ec2.attach_network_interface(eni_id=third, instance_id=instance.id, device_index=3),
    )
    await _expect(errors.ENINotFound, ec2.delete_network_interface(eni_id="eni-0123456789abcdef0"))
    missing_subnet = await _expect(
        errors.NotFound,
        ec2.create_network_interface(
            subnet_id="subnet-0123456789abcdef0",
            security_group_ids=[],
            description="x",
            tags={},
            client_token=_token(),
        ),
    )
    assert missing_subnet.code == "InvalidSubnetID.NotFound"
    ec2_client(ec2_world.endpoint).terminate_instances(InstanceIds=[instance.id])
    await _expect(
        errors.IncorrectState,
        ec2.attach_network_interface(eni_id=third, instance_id=instance.id, device_index=3),
    )
    # each refused attach was made exactly once: client errors are not retried
    assert aws_rules.calls()["AttachNetworkInterface"] == 6


async def test_throttling_is_retried_until_success(
    ec2_world: World, realism: RealismControl
) -> None:
    realism.configure(throttle={"buckets": {"mutating": [2, 20], "describe": [100, 100]}})
    metrics = Metrics()
    patient = RetryPolicy(
        max_attempts=40, base_seconds=0.01, max_backoff_seconds=0.2, max_total_seconds=30
    )
    async with connect(ec2_world, metrics=metrics, retry=patient) as ec2:
        enis = await asyncio.gather(*(_create(ec2, ec2_world) for _ in range(8)))
    assert len(set(enis)) == 8
    throttled = realism.errors().get("RequestLimitExceeded", 0)
    assert throttled > 0
    sample = metrics.registry.get_sample_value
    labels = {"action": "CreateNetworkInterface"}
    assert sample("eni_controller_aws_api_throttles_total", labels) == throttled
    assert sample("eni_controller_aws_api_calls_total", {**labels, "result": "success"}) == 8
    assert sample("eni_controller_aws_api_calls_total", {**labels, "result": "error"}) is None


async def test_client_buckets_pace_calls_so_none_are_throttled(
    ec2_world: World, realism: RealismControl
) -> None:
    # A small AWS-like bucket so the test is quick, the client pacing at the
    # product's headroom below it; the AWS-default run is the slow test below.
    aws = BucketSpec(capacity=10, refill_per_second=10)
    bucket = aws.scaled(PACING_HEADROOM)
    realism.configure(
        throttle={
            "buckets": {"mutating": [aws.capacity, aws.refill_per_second], "describe": [100, 20]}
        }
    )
    async with connect(
        ec2_world,
        rate_limits=RateLimits(describe=DEFAULT_LIMITS.describe, mutating=bucket),
        retry=RetryPolicy(max_attempts=1),
    ) as ec2:
        enis = await asyncio.gather(*(_create(ec2, ec2_world) for _ in range(30)))
    assert len(set(enis)) == 30
    assert realism.errors().get("RequestLimitExceeded", 0) == 0


@pytest.mark.slow
async def test_aws_default_buckets_300_mutating_calls_draw_no_throttles(
    ec2_world: World, realism: RealismControl
) -> None:
    aws = AWS_DEFAULT_LIMITS
    realism.configure(
        throttle={
            "buckets": {
                "mutating": [aws.mutating.capacity, aws.mutating.refill_per_second],
                "describe": [aws.describe.capacity, aws.describe.refill_per_second],
            }
        }
    )
    async with connect(ec2_world, rate_limits=DEFAULT_LIMITS) as ec2:
        enis = await asyncio.gather(*(_create(ec2, ec2_world) for _ in range(300)))
    assert len(set(enis)) == 300
    assert realism.errors().get("RequestLimitExceeded", 0) == 0


async def test_non_idempotent_attach_is_not_repeated_after_a_timeout(
    ec2_world: World, realism: RealismControl
) -> None:
    instance = launch_instance(ec2_world.endpoint, az=AZ_B, instance_type="m5.large")
    async with connect(ec2_world, read_timeout_seconds=0.5) as ec2:
        eni_id = await _create(ec2, ec2_world, subnet="multus-b")
        realism.configure(
            faults={
                "rate_timeout": 1.0,
                "timeout_seconds": 3.0,
                "seed": 1,
                "actions": ["AttachNetworkInterface"],
            }
        )
        await _expect(
            errors.OutcomeUnknown,
            ec2.attach_network_interface(eni_id=eni_id, instance_id=instance.id, device_index=1),
        )
        realism.configure(faults=None)
        (eni,) = await ec2.describe_network_interfaces(filters={}, eni_ids=[eni_id])
    # AWS acted although the caller saw a timeout: that is why we describe first
    assert eni.attachment is not None
    assert eni.attachment.instance_id == instance.id
    assert realism.calls()["AttachNetworkInterface"] == 1


async def test_circuit_breaker_opens_half_opens_and_closes(
    ec2_world: World, realism: RealismControl
) -> None:
    breaker = CircuitBreakerConfig(failure_threshold=3, success_threshold=2, timeout_seconds=0.5)
    async with connect(ec2_world, breaker=breaker, retry=RetryPolicy(max_attempts=1)) as ec2:
        realism.configure(faults={"rate_5xx": 1.0, "seed": 7, "actions": None})
        for _ in range(3):
            await _expect(errors.Transient, ec2.describe_instances([ec2_world.instances[0].id]))
        assert _state(ec2) is BreakerState.OPEN
        sent = sum(realism.calls().values())
        await _expect(errors.CircuitOpen, ec2.describe_instances([ec2_world.instances[0].id]))
        assert sum(realism.calls().values()) == sent  # failed fast, nothing sent
        realism.configure(faults=None)
        await asyncio.sleep(0.6)
        assert _state(ec2) is BreakerState.HALF_OPEN
        await ec2.describe_instances([ec2_world.instances[0].id])
        assert _state(ec2) is BreakerState.HALF_OPEN
        await ec2.describe_instances([ec2_world.instances[0].id])
        assert _state(ec2) is BreakerState.CLOSED


def _state(ec2: EC2Client) -> BreakerState:
    return ec2.breaker.state


async def test_breaker_state_reaches_metrics(ec2_world: World, realism: RealismControl) -> None:
    metrics = Metrics()
    breaker = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout_seconds=60)
    async with connect(
        ec2_world, breaker=breaker, retry=RetryPolicy(max_attempts=1), metrics=metrics
    ) as ec2:
        realism.configure(faults={"rate_5xx": 1.0, "seed": 3, "actions": None})
        await _expect(errors.Transient, ec2.describe_instances([ec2_world.instances[0].id]))
    sample = metrics.registry.get_sample_value
    assert sample("eni_controller_circuit_breaker_state") == BreakerState.OPEN.value
    assert sample("eni_controller_circuit_breaker_transitions_total", {"state": "open"}) == 1


async def test_describe_follows_next_token_pages(
    ec2: EC2Client, ec2_world: World, realism: RealismControl
) -> None:
    marker = secrets.token_hex(4)
    created = {await _create(ec2, ec2_world, Batch=marker) for _ in range(7)}
    realism.configure(page_size=2)
    before = realism.calls().get("DescribeNetworkInterfaces", 0)
    found = await ec2.describe_network_interfaces(filters={"tag:Batch": [marker]})
    assert {e.eni_id for e in found} == created
    assert realism.calls()["DescribeNetworkInterfaces"] - before == 4


async def test_fresh_eni_can_be_invisible(
    ec2: EC2Client, ec2_world: World, realism: RealismControl
) -> None:
    realism.configure(consistency_window=30.0)
    instance = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    eni_id = await _create(ec2, ec2_world)
    assert await ec2.describe_network_interfaces(filters={}, eni_ids=[eni_id]) == []
    await _expect(
        errors.ENINotFound,
        ec2.attach_network_interface(eni_id=eni_id, instance_id=instance.id, device_index=1),
    )


async def test_instance_type_limits_are_read_once(ec2: EC2Client, realism: RealismControl) -> None:
    limits = InstanceTypeLimits(ec2)
    assert await limits.max_enis(["m5.large", "c5.xlarge"]) == {"m5.large": 3, "c5.xlarge": 4}
    assert await limits.max_enis(["m5.large"]) == {"m5.large": 3}
    assert realism.calls()["DescribeInstanceTypes"] == 1


async def test_names_resolve_in_the_vpc_and_ambiguity_is_an_error(
    ec2: EC2Client, ec2_world: World
) -> None:
    resolver = Resolver(ec2, vpc_id=ec2_world.vpc_id)
    subnets = await resolver.subnets(
        ids=[ec2_world.subnet("multus-b").id], names=["multus-a", "multus-b"]
    )
    assert [s.subnet_id for s in subnets] == [
        ec2_world.subnet("multus-b").id,
        ec2_world.subnet("multus-a").id,
    ]
    groups = await resolver.security_groups(ids=[], names=["multus-sg", "tagged-sg"])
    assert [g.group_id for g in groups] == [
        ec2_world.security_group("multus-sg").id,
        ec2_world.security_group("sg-by-tag-group").id,
    ]
    with pytest.raises(LookupFailed) as raised:
        await resolver.subnets(ids=[], names=[AMBIGUOUS_SUBNET_NAME, "no-such-subnet"])
    assert raised.value.reason is LookupReason.AMBIGUOUS_NAME
    assert len(raised.value.problems) == 2


async def test_name_lookup_is_scoped_to_the_cluster_vpc(ec2: EC2Client, ec2_world: World) -> None:
    other = ec2_client(ec2_world.endpoint)
    vpc = other.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    name = f"twin-{secrets.token_hex(3)}"
    for vpc_id, cidr in ((ec2_world.vpc_id, "10.0.200.0/24"), (vpc, "10.1.1.0/24")):
        other.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=AZ_A,
            TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": name}]}
            ],
        )
    (scoped,) = await Resolver(ec2, vpc_id=ec2_world.vpc_id).subnets(ids=[], names=[name])
    assert scoped.vpc_id == ec2_world.vpc_id
    with pytest.raises(LookupFailed) as raised:
        await Resolver(ec2, vpc_id=None).subnets(ids=[], names=[name])
    assert raised.value.reason is LookupReason.AMBIGUOUS_NAME
