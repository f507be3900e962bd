"""Unit tests for cluster identity discovery (aws/identity.py): one name, none,
two names, and what the controller is left with in each case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import cast

import pytest

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.errors import EC2Error, Throttled
from eni_controller.aws.identity import ClusterIdentity, discover
from eni_controller.aws.resources import Instance
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags

VPC = "vpc-0123456789abcdef0"


def _instance(
    instance_id: str, instance_tags: Mapping[str, str] | None = None, *, vpc_id: str = VPC
) -> Instance:
    return Instance(
        instance_id=instance_id,
        availability_zone="us-east-1a",
        state="running",
        instance_type="m5.large",
        vpc_id=vpc_id,
        occupied_device_indexes=frozenset({0}),
        tags=MappingProxyType(dict(instance_tags or {})),
    )


def _eks(name: str) -> dict[str, str]:
    """The tags EKS puts on a managed node group's instances."""
    return {"eks:cluster-name": name, f"{tags.CLUSTER_TAG_PREFIX}{name}": "owned"}


class _Instances:
    """describe_instances over a fixed set; counts calls, or fails with `error`."""

    def __init__(self, *instances: Instance, error: EC2Error | None = None) -> None:
        self._instances = {i.instance_id: i for i in instances}
        self._error = error
        self.calls = 0

    async def describe_instances(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        self.calls += 1
        if self._error is not None:
            raise self._error
        return {i: self._instances[i] for i in instance_ids if i in self._instances}


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
    ec2 = _Instances(_instance("i-1", _eks("prod")), _instance("i-2", _eks("prod")))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1", "i-2"], metrics=metrics)
    assert (identity.resolved, identity.name, identity.vpc_id) == (True, "prod", VPC)
    assert _known(metrics) == 1
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1"], metrics=metrics)
    assert ec2.calls == 1  # once


async def test_resolve_with_two_names_knows_no_name_and_says_why() -> None:
    ec2 = _Instances(_instance("i-1", _eks("blue")), _instance("i-2", _eks("green")))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1", "i-2"], metrics=metrics)
    assert identity.resolved
    assert identity.name is None
    assert "blue, green" in identity.reason
    assert _known(metrics) == 0


async def test_resolve_without_tags_knows_no_name() -> None:
    ec2 = _Instances(_instance("i-1"))
    identity, metrics = ClusterIdentity(name=None, vpc_id=None), Metrics()
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1"], metrics=metrics)
    assert identity.resolved
    assert identity.name is None
    assert identity.vpc_id == VPC
    assert _known(metrics) == 0


async def test_configured_values_win_and_need_no_describe() -> None:
    ec2 = _Instances(_instance("i-1", _eks("other"), vpc_id="vpc-0bbbbbbb"))
    identity, metrics = ClusterIdentity(name="prod", vpc_id=VPC), Metrics()
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1"], metrics=metrics)
    assert (identity.name, identity.vpc_id, ec2.calls) == ("prod", VPC, 0)
    assert _known(metrics) == 1


@pytest.mark.parametrize("configured", [None, "prod"])
async def test_a_failed_describe_leaves_the_identity_unresolved(configured: str | None) -> None:
    failing = _Instances(error=Throttled(action="DescribeInstances", code="RequestLimitExceeded"))
    identity, metrics = ClusterIdentity(name=configured, vpc_id=None), Metrics()
    await identity.resolve(cast(EC2Client, failing), instance_ids=["i-1"], metrics=metrics)
    assert not identity.resolved
    assert "RequestLimitExceeded" in identity.reason
    ec2 = _Instances(_instance("i-1", _eks("prod")))
    await identity.resolve(cast(EC2Client, ec2), instance_ids=["i-1"], metrics=metrics)
    assert (identity.resolved, identity.name, identity.vpc_id) == (True, "prod", VPC)
