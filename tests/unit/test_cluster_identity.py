"""Unit tests for cluster identity discovery (aws/identity.py): one name, none,
two names, and what the controller is left with in each case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.identity import ClusterIdentity, discover
from eni_controller.aws.resources import Instance
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from tests.harness.memory_ec2 import ONE_ATTEMPT, RulesMemoryEC2, instance_record, unpaced_client
from tests.samples import VPC_A as VPC


def _record(
    instance_id: str, instance_tags: Mapping[str, str] | None = None, *, vpc_id: str = VPC
) -> dict[str, Any]:
    return instance_record(instance_id, vpc_id=vpc_id, tags=instance_tags)


def _instance(
    instance_id: str, instance_tags: Mapping[str, str] | None = None, *, vpc_id: str = VPC
) -> Instance:
    return Instance.from_api(_record(instance_id, instance_tags, vpc_id=vpc_id))


def _eks(name: str) -> dict[str, str]:
    """The tags EKS puts on a managed node group's instances."""
    return {"eks:cluster-name": name, f"{tags.CLUSTER_TAG_PREFIX}{name}": "owned"}


def _ec2(*instances: dict[str, Any]) -> tuple[EC2Client, RulesMemoryEC2]:
    """The real client over the in-memory EC2 holding `instances`; `refuse` on the
    second fails DescribeInstances, at the first attempt."""
    memory = RulesMemoryEC2([])
    memory.instances = {i["InstanceId"]: i for i in instances}
    return unpaced_client(memory, metrics=Metrics(), retry=ONE_ATTEMPT), memory


def _known(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("eni_controller_cluster_identity_known")


def test_one_name_among_the_instances_is_the_cluster_name() -> None:
    found = discover(
        [
            _instance("i-1", _eks("prod")),
            _instance("i-2", {f"{tags.CLUSTER_TAG_PREFIX}prod": "owned"}),
            _instance("i-3"),  # self-managed, untagged: does not count against a name
        ]
    )
    assert found.name == "prod"
    assert found.vpc_id == VPC


def test_no_cluster_tag_gives_no_name() -> None:
    found = discover(
        [
            _instance("i-1", {"Name": "worker"}),
            # the managed-by key and a `shared` cluster tag name no owning cluster
            _instance(
                "i-2",
                {
                    tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE,
                    f"{tags.CLUSTER_TAG_PREFIX}x": "shared",
                },
            ),
        ]
    )
    assert found.name is None
    assert found.names_seen == frozenset()


def test_two_names_give_no_name() -> None:
    found = discover([_instance("i-1", _eks("blue")), _instance("i-2", _eks("green"))])
    assert found.name is None
    assert found.names_seen == {"blue", "green"}


def test_two_vpcs_give_no_vpc() -> None:
    found = discover([_instance("i-1", _eks("blue")), _instance("i-2", vpc_id="vpc-0aaaaaaa")])
    assert found.name == "blue"
    assert found.vpc_id is None


async def test_resolve_discovers_the_name_and_vpc_from_the_nodes_instances() -> None:
    ec2, memory = _ec2(_record("i-1", _eks("prod")), _record("i-2", _eks("prod")))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(ec2, instance_ids=["i-1", "i-2"], metrics=metrics)
    assert (identity.resolved, identity.name, identity.vpc_id) == (True, "prod", VPC)
    assert _known(metrics) == 1
    await identity.resolve(ec2, instance_ids=["i-1"], metrics=metrics)
    assert memory.calls["DescribeInstances"] == 1  # once


async def test_resolve_with_two_names_knows_no_name_and_says_why() -> None:
    ec2, _ = _ec2(_record("i-1", _eks("blue")), _record("i-2", _eks("green")))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(ec2, instance_ids=["i-1", "i-2"], metrics=metrics)
    assert identity.resolved
    assert identity.name is None
    assert "blue, green" in identity.reason
    assert _known(metrics) == 0


async def test_resolve_without_tags_knows_no_name() -> None:
    ec2, _ = _ec2(_record("i-1"))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(ec2, instance_ids=["i-1"], metrics=metrics)
    assert identity.resolved
    assert identity.name is None
    assert identity.vpc_id == VPC
    assert _known(metrics) == 0


async def test_configured_values_win_and_need_no_describe() -> None:
    ec2, memory = _ec2(_record("i-1", _eks("other"), vpc_id="vpc-0bbbbbbb"))
    identity, metrics = ClusterIdentity(name="prod", vpc_id=VPC), Metrics()
    await identity.resolve(ec2, instance_ids=["i-1"], metrics=metrics)
    assert (identity.name, identity.vpc_id, memory.calls) == ("prod", VPC, {})
    assert _known(metrics) == 1


@pytest.mark.parametrize("configured", [None, "prod"])
async def test_a_failed_describe_leaves_the_identity_unresolved(configured: str | None) -> None:
    failing, memory = _ec2()
    memory.refuse["DescribeInstances"] = "RequestLimitExceeded"
    identity, metrics = ClusterIdentity(name=configured, vpc_id=None), Metrics()
    await identity.resolve(failing, instance_ids=["i-1"], metrics=metrics)
    assert not identity.resolved
    assert "RequestLimitExceeded" in identity.reason
    ec2, _ = _ec2(_record("i-1", _eks("prod")))
    await identity.resolve(ec2, instance_ids=["i-1"], metrics=metrics)
    assert (identity.resolved, identity.name, identity.vpc_id) == (True, "prod", VPC)
