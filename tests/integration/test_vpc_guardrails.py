"""VPC guardrails and allow-lists end to end: a subnet or security group outside
the node's instance VPC, or without the allow-list tag, is refused on the
NodeENI's condition and costs no EC2 call that mutates.

Each test runs twice (`both_ec2`): with the realism layer's AWS rules and
against plain moto. The refused resources live in a second VPC (or lack a tag)
made here through boto3; the seeded world is left as it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, ec2_client
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec
from tests.harness.realism.control import RealismControl

MUTATING = (
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    "CreateTags",
)
ALLOW_TAG = ("multus-allowed", "true")
SETTLE_SECONDS = 1.0  # a refusal is written after the plan; later reconciles must not act


@dataclass(frozen=True, kw_only=True)
class ForeignVpc:
    vpc_id: str
    subnet_id: str  # in AZ_A, where the tests' nodes are
    group_id: str


def _foreign_vpc(env: AWSEnv) -> ForeignVpc:
    """A second VPC with a subnet in AZ_A and a security group, made for this test."""
    ec2 = ec2_client(env.world.endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.1.1.0/24", AvailabilityZone=AZ_A)[
        "Subnet"
    ]["SubnetId"]
    group_id = ec2.create_security_group(
        GroupName=f"{env.unique}-far", Description="another VPC's group", VpcId=vpc_id
    )["GroupId"]
    return ForeignVpc(vpc_id=vpc_id, subnet_id=subnet_id, group_id=group_id)


def _group(env: AWSEnv, suffix: str, *, tags: dict[str, str]) -> str:
    """A security group of the seeded VPC with `tags`, made for this test."""
    group_id: str = ec2_client(env.world.endpoint).create_security_group(
        GroupName=f"{env.unique}-{suffix}",
        Description="made by a guardrail test",
        VpcId=env.world.vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ]
        if tags
        else [],
    )["GroupId"]
    return group_id


def _spec(env: AWSEnv, *, subnet_ids: list[str], group_ids: list[str]) -> dict[str, Any]:
    spec = nodeeni_spec(env.unique, env.world)
    del spec["securityGroupNames"]
    return {**spec, "subnetIDs": subnet_ids, "securityGroupIDs": group_ids}


def _mutations(realism: RealismControl) -> dict[str, int]:
    calls = realism.calls()
    return {action: calls.get(action, 0) for action in MUTATING}


def _reason_is(reason: str) -> Any:
    return lambda obj: condition(obj, "Ready").get("reason") == reason


async def _refused(
    env: AWSEnv, *, config_changes: dict[str, Any], spec: dict[str, Any], reason: str
) -> tuple[dict[str, Any], dict[str, int], dict[str, int]]:
    """Create `spec` under a running controller; the NodeENI once its Ready condition
    has `reason`, and the mutating calls before and after."""
    async with running_controller(
        env.api, controller_config(env.world, **config_changes)
    ) as controller:
        await quiet(controller, env.unique)
        before = _mutations(env.realism)
        await env.nodeenis.create(env.unique, spec)
        refused = await wait_for_nodeeni(env.api, env.unique, _reason_is(reason))
        await asyncio.sleep(SETTLE_SECONDS)
        after = _mutations(env.realism)
    return refused, before, after


@pytest.mark.parametrize("vpc_id_set", [True, False], ids=["VPC_ID-set", "VPC_ID-unset"])
async def test_subnet_of_another_vpc_is_vpc_mismatch_without_mutation(
    both_ec2: AWSEnv, vpc_id_set: bool
) -> None:
    env = both_ec2
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=1)
    far = _foreign_vpc(env)
    seeded_group = env.world.security_group("multus-sg").id
    refused, before, after = await _refused(
        env,
        config_changes={"vpc_id": env.world.vpc_id if vpc_id_set else None},
        spec=_spec(env, subnet_ids=[far.subnet_id], group_ids=[seeded_group]),
        reason="VPCMismatch",
    )
    ready = condition(refused, "Ready")
    assert ready["status"] == "False"
    # names the subnet, its VPC and the VPC it should be in (VPC_ID, or the instance's)
    assert far.subnet_id in ready["message"]
    assert far.vpc_id in ready["message"]
    assert env.world.vpc_id in ready["message"]
    assert after == before
    assert enis_of(env.world, refused["metadata"]["uid"]) == []


async def test_group_of_another_vpc_is_vpc_mismatch_without_mutation(both_ec2: AWSEnv) -> None:
    # VPC_ID unset (the default): the lookup takes the group, the planner refuses it
    env = both_ec2
    ((name, instance),) = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=1)
    far = _foreign_vpc(env)
    refused, before, after = await _refused(
        env,
        config_changes={"vpc_id": None},
        spec=_spec(env, subnet_ids=[env.world.subnet("multus-a").id], group_ids=[far.group_id]),
        reason="VPCMismatch",
    )
    message = condition(refused, "Ready")["message"]
    assert f"security group {far.group_id} is in {far.vpc_id}" in message
    assert f"node {name}'s instance {instance.id} is in {env.world.vpc_id}" in message
    assert after == before
    assert enis_of(env.world, refused["metadata"]["uid"]) == []


async def test_untagged_group_is_not_allowed_and_a_tagged_one_is_ready(both_ec2: AWSEnv) -> None:
    env = both_ec2
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=1)
    key, value = ALLOW_TAG
    untagged = _group(env, "untagged", tags={"Name": f"{env.unique}-untagged"})
    tagged = _group(env, "tagged", tags={key: value})
    subnet = env.world.subnet("multus-a").id
    config = controller_config(env.world, security_group_allow_tag=ALLOW_TAG)
    async with running_controller(env.api, config) as controller:
        await quiet(controller, env.unique)
        before = _mutations(env.realism)
        await env.nodeenis.create(env.unique, _spec(env, subnet_ids=[subnet], group_ids=[untagged]))
        refused = await wait_for_nodeeni(env.api, env.unique, _reason_is("NotAllowed"))
        await asyncio.sleep(SETTLE_SECONDS)
        assert _mutations(env.realism) == before
        allowed_name = f"{env.unique}-tagged"
        await env.nodeenis.create(allowed_name, _spec(env, subnet_ids=[subnet], group_ids=[tagged]))
        allowed = await wait_for_nodeeni(env.api, allowed_name, is_ready)
    message = condition(refused, "Ready")["message"]
    assert f"security group {untagged}" in message
    assert f"{key}={value}" in message
    assert "SECURITY_GROUP_ALLOW_TAG" in message
    assert enis_of(env.world, refused["metadata"]["uid"]) == []
    assert allowed["status"]["attachedCount"] == 1
    (made,) = enis_of(env.world, allowed["metadata"]["uid"])
    assert [g["GroupId"] for g in made["Groups"]] == [tagged]
