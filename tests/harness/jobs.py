"""An executor Job over the in-memory EC2 (memory_ec2.py), for the executor's unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from eni_controller.aws.resources import Instance, Subnet
from eni_controller.reconcile.executor import Emit, Job
from eni_controller.spec import NodeENISpec
from tests.harness.memory_ec2 import AZ, INSTANCE_TYPE

JOB_SUBNET = Subnet(subnet_id="subnet-1", vpc_id="vpc-1", availability_zone=AZ, cidr="", name=None)


def instance_ids(count: int) -> list[str]:
    """`count` instance ids, `i-` and 17 hex digits, numbered from 0."""
    return [f"i-{n:017x}" for n in range(count)]


def memory_job(*, nodeeni: str, instances: Sequence[str], emit: Emit) -> Job:
    """One subnet (JOB_SUBNET), one security group, running instances with eth0 only."""
    return Job(
        nodeeni=nodeeni,
        uid="uid-1",
        spec=NodeENISpec(node_selector=MappingProxyType({}), subnet_ids=(JOB_SUBNET.subnet_id,)),
        security_group_ids=("sg-1",),
        instances={
            i: Instance(
                instance_id=i,
                availability_zone=AZ,
                state="running",
                instance_type=INSTANCE_TYPE,
                vpc_id="vpc-1",
                occupied_device_indexes=frozenset({0}),
            )
            for i in instances
        },
        emit=emit,
    )
