"""The test world itself: seeded EC2 reachable through aiobotocore, and Nodes
that look like the ones the AWS cloud provider registers.

Later tests build on these facts, so they are checked once here through the
same client library the controller uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import get_session
from kubernetes_asyncio import client

from tests.harness.ec2world import (
    AMBIGUOUS_SG_NAME,
    AMBIGUOUS_SUBNET_NAME,
    AZ_A,
    AZ_B,
    FAKE_CREDENTIALS,
    World,
    create_tagged_eni,
    ec2_client,
)
from tests.harness.invariants import DuplicateWatch
from tests.harness.kube import NodeFactory
from tests.harness.realism.control import RealismControl


@pytest.fixture
async def ec2(ec2_world: World) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        "ec2", region_name=ec2_world.region, endpoint_url=ec2_world.endpoint, **FAKE_CREDENTIALS
    ) as ec2_client:
        yield ec2_client


async def _subnets_named(ec2: Any, world: World, name: str) -> list[dict[str, Any]]:
    response = await ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [world.vpc_id]},
            {"Name": "tag:Name", "Values": [name]},
        ]
    )
    subnets: list[dict[str, Any]] = response["Subnets"]
    return subnets


@pytest.mark.parametrize(("name", "az"), [("multus-a", AZ_A), ("multus-b", AZ_B)])
async def test_seeded_subnet_resolves_by_name(
    ec2: Any, ec2_world: World, name: str, az: str
) -> None:
    (subnet,) = await _subnets_named(ec2, ec2_world, name)
    assert subnet["SubnetId"] == ec2_world.subnet(name).id
    assert subnet["AvailabilityZone"] == az
    assert subnet["CidrBlock"] == ec2_world.subnet(name).cidr


async def test_ambiguous_subnet_name_has_two_matches(ec2: Any, ec2_world: World) -> None:
    matches = await _subnets_named(ec2, ec2_world, AMBIGUOUS_SUBNET_NAME)
    assert len(matches) == 2


async def test_seeded_security_groups_resolve_by_group_name_and_tag(
    ec2: Any, ec2_world: World
) -> None:
    vpc = {"Name": "vpc-id", "Values": [ec2_world.vpc_id]}
    by_group = await ec2.describe_security_groups(
        Filters=[vpc, {"Name": "group-name", "Values": ["multus-sg"]}]
    )
    assert [g["GroupId"] for g in by_group["SecurityGroups"]] == [
        ec2_world.security_group("multus-sg").id
    ]
    by_tag = await ec2.describe_security_groups(
        Filters=[vpc, {"Name": "tag:Name", "Values": ["tagged-sg"]}]
    )
    assert [g["GroupId"] for g in by_tag["SecurityGroups"]] == [
        ec2_world.security_group("sg-by-tag-group").id
    ]
    ambiguous = await ec2.describe_security_groups(
        Filters=[vpc, {"Name": "tag:Name", "Values": [AMBIGUOUS_SG_NAME]}]
    )
    assert len(ambiguous["SecurityGroups"]) == 2


async def test_instances_run_in_both_azs_with_primary_eni(ec2: Any, ec2_world: World) -> None:
    ids = [i.id for i in ec2_world.instances]
    response = await ec2.describe_instances(InstanceIds=ids)
    found = {i["InstanceId"]: i for r in response["Reservations"] for i in r["Instances"]}
    assert set(found) == set(ids)
    assert {found[i]["Placement"]["AvailabilityZone"] for i in ids} == {AZ_A, AZ_B}
    for instance in found.values():
        assert instance["State"]["Name"] == "running"
        indexes = [eni["Attachment"]["DeviceIndex"] for eni in instance["NetworkInterfaces"]]
        assert indexes == [0]


async def test_node_helper_registers_an_ec2_node(
    kube_api: client.ApiClient, nodes: NodeFactory, ec2_world: World, unique: str
) -> None:
    instance = ec2_world.instances_in(AZ_B)[0]
    await nodes.create(name=unique, instance=instance, labels={"ng": "multus"})
    node = await client.CoreV1Api(kube_api).read_node(unique)
    assert node.spec.provider_id == f"aws:///{AZ_B}/{instance.id}"
    assert node.metadata.labels["ng"] == "multus"
    assert node.metadata.labels["topology.kubernetes.io/zone"] == AZ_B


async def test_duplicate_watch_finds_a_duplicate_that_lived_between_two_samples(
    ec2_world: World, realism: RealismControl, unique: str
) -> None:
    """The chaos cases' duplicate check, on the real server: a second ENI made for
    a slot while its first lived is found from the journal though no sample saw
    both; ENIs made in turn are not duplicates, nor is another instance's."""
    uid = f"uid-{unique}"

    def make(instance_id: str = "i-0000000000000001a") -> str:
        return create_tagged_eni(
            ec2_world,
            subnet="multus-a",
            nodeeni=unique,
            uid=uid,
            node=f"{unique}-n1",
            instance_id=instance_id,
        )

    watch = DuplicateWatch(ec2_world, realism, (uid,), every=3600.0)
    await watch.start()  # the one sample before the finish
    ec2 = await asyncio.to_thread(ec2_client, ec2_world.endpoint)  # journaled, unlike watch.ec2
    first = await asyncio.to_thread(make)
    second = await asyncio.to_thread(make)  # the duplicate, gone before the next look
    await asyncio.to_thread(ec2.delete_network_interface, NetworkInterfaceId=second)
    await asyncio.to_thread(ec2.delete_network_interface, NetworkInterfaceId=first)
    third = await asyncio.to_thread(make)  # in turn: not a duplicate
    other = await asyncio.to_thread(make, "i-0000000000000002b")  # another instance's
    await watch.finish()
    assert watch.coexisting == set()  # the samples saw none of it
    assert watch.overlaps == {second}
    assert watch.duplicates == 1, watch.explain()
    assert (watch.made, watch.create_requests) == (4, 4)
    for eni_id in (third, other):
        await asyncio.to_thread(ec2.delete_network_interface, NetworkInterfaceId=eni_id)
