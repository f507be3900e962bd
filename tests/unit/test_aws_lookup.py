"""Unit tests for eni_controller.aws.lookup.Resolver over the in-memory EC2."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eni_controller.aws.lookup import DEFAULT_TTL_SECONDS, LookupFailed, LookupReason, Resolver
from eni_controller.metrics import Metrics
from tests.harness.clock import ManualClock
from tests.harness.memory_ec2 import AZ, MemoryEC2, unpaced_client
from tests.harness.recording_ec2 import RecordingRaw

VPC = "vpc-main"
OTHER_VPC = "vpc-other"
TTL = 60.0


def subnet(subnet_id: str, name: str | None, vpc_id: str = VPC) -> dict[str, Any]:
    return {
        "SubnetId": subnet_id,
        "VpcId": vpc_id,
        "AvailabilityZone": AZ,
        "CidrBlock": "",
        "Tags": [] if name is None else [{"Key": "Name", "Value": name}],
    }


def group(
    group_id: str, group_name: str, name_tag: str | None, vpc_id: str = VPC
) -> dict[str, Any]:
    return {
        "GroupId": group_id,
        "GroupName": group_name,
        "VpcId": vpc_id,
        "Tags": [] if name_tag is None else [{"Key": "Name", "Value": name_tag}],
    }


SUBNETS = [
    subnet("subnet-a", "alpha"),
    subnet("subnet-b", "beta"),
    subnet("subnet-c", "gamma"),
    subnet("subnet-d1", "dup"),
    subnet("subnet-d2", "dup"),
    subnet("subnet-x", "alpha", vpc_id=OTHER_VPC),
    subnet("subnet-y", "elsewhere", vpc_id=OTHER_VPC),
    subnet("subnet-n", None),
]

GROUPS = [
    group("sg-web", "web", "frontend"),
    group("sg-db", "db", "web"),  # tag "web" collides with sg-web's group name
    group("sg-tagged", "launch-wizard-7", "cache"),
    group("sg-twin1", "twin", None),
    group("sg-twin2", "twin", None),
    group("sg-t1", "t-one", "tagdup"),
    group("sg-t2", "t-two", "tagdup"),
    group("sg-far", "web", "remote", vpc_id=OTHER_VPC),
]


class Setup:
    """A Resolver over the real client and a MemoryEC2 holding SUBNETS and GROUPS
    (`memory`, to change them); `raw` records what each describe asked."""

    def __init__(self, *, vpc_id: str | None, clock: ManualClock) -> None:
        self.memory = MemoryEC2([])
        self.memory.subnets = list(SUBNETS)
        self.memory.security_groups = list(GROUPS)
        self.raw = RecordingRaw(self.memory)
        self.clock = clock
        self.resolver = Resolver(
            unpaced_client(self.raw, metrics=Metrics()),
            vpc_id=vpc_id,
            ttl_seconds=TTL,
            clock=self.clock,
        )

    @property
    def subnet_filters(self) -> list[dict[str, list[str]]]:
        return self.raw.filters_of("describe_subnets")

    @property
    def group_filters(self) -> list[dict[str, list[str]]]:
        return self.raw.filters_of("describe_security_groups")

    @property
    def describes(self) -> int:
        return len(self.raw.calls)


@pytest.fixture
def scoped(clock: ManualClock) -> Setup:
    return Setup(vpc_id=VPC, clock=clock)


@pytest.fixture
def unscoped(clock: ManualClock) -> Setup:
    return Setup(vpc_id=None, clock=clock)


def test_default_ttl() -> None:
    assert DEFAULT_TTL_SECONDS == 300.0


async def test_subnets_ids_then_names_in_order(unscoped: Setup) -> None:
    found = await unscoped.resolver.subnets(
        ids=["subnet-c", "subnet-a"], names=["beta", "elsewhere"]
    )
    assert [s.subnet_id for s in found] == ["subnet-c", "subnet-a", "subnet-b", "subnet-y"]
    assert unscoped.subnet_filters == [
        {"subnet-id": ["subnet-c", "subnet-a"]},
        {"tag:Name": ["beta", "elsewhere"]},
    ]


async def test_subnet_duplicates_collapse_to_first_position(scoped: Setup) -> None:
    found = await scoped.resolver.subnets(
        ids=["subnet-b", "subnet-a", "subnet-b"], names=["alpha", "gamma", "gamma"]
    )
    # subnet-a was named by id and by name: it stays at its id position
    assert [s.subnet_id for s in found] == ["subnet-b", "subnet-a", "subnet-c"]
    # repeated keys are asked for once
    assert scoped.subnet_filters == [
        {"subnet-id": ["subnet-b", "subnet-a"]},
        {"tag:Name": ["alpha", "gamma"], "vpc-id": [VPC]},
    ]


async def test_empty_request_makes_no_describe(scoped: Setup) -> None:
    assert await scoped.resolver.subnets(ids=[], names=[]) == ()
    assert await scoped.resolver.security_groups(ids=[], names=[]) == ()
    assert scoped.describes == 0


async def test_ambiguous_subnet_name_names_both_ids(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.subnets(ids=[], names=["dup"])
    assert info.value.reason is LookupReason.AMBIGUOUS_NAME
    assert info.value.problems == ("subnet name 'dup' is ambiguous: matches subnet-d1, subnet-d2",)
    assert str(info.value) == "subnet name 'dup' is ambiguous: matches subnet-d1, subnet-d2"


async def test_ambiguity_wins_the_reason_but_all_problems_are_listed(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.subnets(ids=["subnet-zz"], names=["dup", "nope"])
    assert info.value.reason is LookupReason.AMBIGUOUS_NAME
    assert info.value.problems == (
        "subnet name 'dup' is ambiguous: matches subnet-d1, subnet-d2",
        "subnet subnet-zz not found",
        "subnet named 'nope' not found",
    )


async def test_missing_subnets_are_all_listed(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.subnets(
            ids=["subnet-a", "subnet-404", "subnet-405"], names=["beta", "ghost", "phantom"]
        )
    assert info.value.reason is LookupReason.SUBNET_NOT_FOUND
    assert info.value.problems == (
        "subnet subnet-404 not found",
        "subnet subnet-405 not found",
        "subnet named 'ghost' not found",
        "subnet named 'phantom' not found",
    )


async def test_missing_security_groups_are_all_listed(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.security_groups(ids=["sg-404"], names=["web", "ghost"])
    assert info.value.reason is LookupReason.SECURITY_GROUP_NOT_FOUND
    assert info.value.problems == (
        "security group sg-404 not found",
        "security group named 'ghost' not found",
    )


async def test_vpc_scope_on_name_lookups_only(scoped: Setup) -> None:
    found = await scoped.resolver.subnets(ids=["subnet-a"], names=["alpha"])
    # "alpha" also names subnet-x in another VPC: the scope keeps it out
    assert [s.subnet_id for s in found] == ["subnet-a"]
    assert scoped.subnet_filters == [
        {"subnet-id": ["subnet-a"]},
        {"tag:Name": ["alpha"], "vpc-id": [VPC]},
    ]


async def test_without_vpc_scope_a_name_in_two_vpcs_is_ambiguous(unscoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await unscoped.resolver.subnets(ids=[], names=["alpha"])
    assert info.value.reason is LookupReason.AMBIGUOUS_NAME
    assert info.value.problems == ("subnet name 'alpha' is ambiguous: matches subnet-a, subnet-x",)
    assert unscoped.subnet_filters == [{"tag:Name": ["alpha"]}]


async def test_subnet_id_in_another_vpc_is_a_vpc_mismatch(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.subnets(ids=["subnet-a", "subnet-x"], names=[])
    assert info.value.reason is LookupReason.VPC_MISMATCH
    assert info.value.problems == (
        f"subnet subnet-x is in {OTHER_VPC}, not in the cluster VPC {VPC} (VPC_ID)",
    )


async def test_a_missing_id_beside_one_in_another_vpc_reports_both(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.subnets(ids=["subnet-x", "subnet-404"], names=[])
    assert info.value.reason is LookupReason.VPC_MISMATCH
    assert info.value.problems == (
        f"subnet subnet-x is in {OTHER_VPC}, not in the cluster VPC {VPC} (VPC_ID)",
        "subnet subnet-404 not found",
    )


async def test_group_id_in_another_vpc_is_a_vpc_mismatch(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.security_groups(ids=["sg-far"], names=[])
    assert info.value.reason is LookupReason.VPC_MISMATCH
    assert info.value.problems == (
        f"security group sg-far is in {OTHER_VPC}, not in the cluster VPC {VPC} (VPC_ID)",
    )
    assert scoped.group_filters == [{"group-id": ["sg-far"]}]


async def test_group_names_by_group_name_then_leftovers_by_tag(scoped: Setup) -> None:
    found = await scoped.resolver.security_groups(ids=["sg-twin1"], names=["web", "cache"])
    # "web" is sg-web's group name (and sg-db's Name tag): group name wins
    assert [g.group_id for g in found] == ["sg-twin1", "sg-web", "sg-tagged"]
    assert scoped.group_filters == [
        {"group-id": ["sg-twin1"]},
        {"group-name": ["web", "cache"], "vpc-id": [VPC]},
        {"tag:Name": ["cache"], "vpc-id": [VPC]},
    ]


async def test_no_tag_stage_when_group_names_all_resolve(scoped: Setup) -> None:
    found = await scoped.resolver.security_groups(ids=[], names=["db", "web"])
    assert [g.group_id for g in found] == ["sg-db", "sg-web"]
    assert scoped.group_filters == [{"group-name": ["db", "web"], "vpc-id": [VPC]}]


async def test_ambiguous_group_name_is_not_retried_by_tag(scoped: Setup) -> None:
    with pytest.raises(LookupFailed) as info:
        await scoped.resolver.security_groups(ids=[], names=["twin", "tagdup"])
    assert info.value.reason is LookupReason.AMBIGUOUS_NAME
    assert info.value.problems == (
        "security group name 'twin' is ambiguous: matches sg-twin1, sg-twin2",
        "security group name 'tagdup' is ambiguous: matches sg-t1, sg-t2",
    )
    assert scoped.group_filters == [
        {"group-name": ["twin", "tagdup"], "vpc-id": [VPC]},
        {"tag:Name": ["tagdup"], "vpc-id": [VPC]},
    ]


async def test_cache_hit_within_ttl_makes_no_describe(scoped: Setup) -> None:
    first = await scoped.resolver.subnets(ids=["subnet-a"], names=["beta"])
    groups = await scoped.resolver.security_groups(ids=["sg-db"], names=["cache"])
    describes = scoped.describes
    assert describes == 5
    scoped.clock.advance(TTL - 0.001)
    assert await scoped.resolver.subnets(ids=["subnet-a"], names=["beta"]) == first
    assert await scoped.resolver.security_groups(ids=["sg-db"], names=["cache"]) == groups
    assert scoped.describes == describes


async def test_cache_is_per_entry(scoped: Setup) -> None:
    await scoped.resolver.subnets(ids=["subnet-a"], names=["beta"])
    scoped.raw.calls.clear()
    found = await scoped.resolver.subnets(ids=["subnet-a", "subnet-c"], names=["beta", "gamma"])
    assert [s.subnet_id for s in found] == ["subnet-a", "subnet-c", "subnet-b"]
    assert scoped.subnet_filters == [
        {"subnet-id": ["subnet-c"]},
        {"tag:Name": ["gamma"], "vpc-id": [VPC]},
    ]


async def test_each_entry_lives_ttl_from_its_describe(scoped: Setup) -> None:
    await scoped.resolver.subnets(ids=["subnet-a"], names=[])
    scoped.clock.advance(TTL - 24)
    await scoped.resolver.subnets(ids=["subnet-c"], names=[])
    scoped.clock.advance(24)
    scoped.raw.calls.clear()
    await scoped.resolver.subnets(ids=["subnet-a", "subnet-c"], names=[])
    assert scoped.subnet_filters == [{"subnet-id": ["subnet-a"]}]  # only a's TTL is over
    # an expired entry is dropped: a clock going back does not bring it back
    scoped.memory.subnets = [s for s in SUBNETS if s["SubnetId"] != "subnet-c"]
    scoped.clock.advance(TTL - 24)
    for _ in range(2):
        with pytest.raises(LookupFailed):
            await scoped.resolver.subnets(ids=["subnet-c"], names=[])
        scoped.clock.advance(-1)


async def test_after_ttl_describes_again_and_sees_changes(scoped: Setup) -> None:
    await scoped.resolver.subnets(ids=[], names=["beta"])
    assert len(scoped.subnet_filters) == 1
    scoped.memory.subnets = [s for s in SUBNETS if s["SubnetId"] != "subnet-b"] + [
        subnet("subnet-b2", "beta")
    ]
    scoped.clock.advance(TTL)
    found = await scoped.resolver.subnets(ids=[], names=["beta"])
    assert [s.subnet_id for s in found] == ["subnet-b2"]
    assert len(scoped.subnet_filters) == 2


async def test_failures_are_not_cached(scoped: Setup) -> None:
    with pytest.raises(LookupFailed):
        await scoped.resolver.subnets(ids=["subnet-new"], names=["fresh"])
    assert len(scoped.subnet_filters) == 2
    # the operator creates them; no TTL wait is needed to see the fix
    scoped.memory.subnets.append(subnet("subnet-new", None))
    scoped.memory.subnets.append(subnet("subnet-f", "fresh"))
    found = await scoped.resolver.subnets(ids=["subnet-new"], names=["fresh"])
    assert [s.subnet_id for s in found] == ["subnet-new", "subnet-f"]
    assert len(scoped.subnet_filters) == 4


async def test_ambiguity_is_not_cached(scoped: Setup) -> None:
    with pytest.raises(LookupFailed):
        await scoped.resolver.subnets(ids=[], names=["dup"])
    scoped.memory.subnets = [s for s in scoped.memory.subnets if s["SubnetId"] != "subnet-d2"]
    found = await scoped.resolver.subnets(ids=[], names=["dup"])
    assert [s.subnet_id for s in found] == ["subnet-d1"]
    assert len(scoped.subnet_filters) == 2


async def test_subnet_and_group_caches_are_separate(scoped: Setup) -> None:
    await scoped.resolver.subnets(ids=["subnet-a"], names=[])
    await scoped.resolver.security_groups(ids=["sg-web"], names=[])
    assert scoped.subnet_filters == [{"subnet-id": ["subnet-a"]}]
    assert scoped.group_filters == [{"group-id": ["sg-web"]}]


async def test_reconciles_resolving_at_once_share_each_describe(scoped: Setup) -> None:
    found = await asyncio.gather(
        scoped.resolver.subnets(ids=["subnet-a"], names=[]),
        scoped.resolver.subnets(ids=["subnet-c"], names=["beta"]),
        scoped.resolver.security_groups(ids=[], names=["web"]),
        scoped.resolver.security_groups(ids=[], names=["web"]),
    )
    assert [[r.subnet_id for r in found[0]], [r.subnet_id for r in found[1]]] == [
        ["subnet-a"],
        ["subnet-c", "subnet-b"],
    ]
    assert found[2] == found[3]
    assert scoped.subnet_filters == [
        {"subnet-id": ["subnet-a", "subnet-c"]},
        {"tag:Name": ["beta"], "vpc-id": [VPC]},
    ]
    assert scoped.group_filters == [{"group-name": ["web"], "vpc-id": [VPC]}]
